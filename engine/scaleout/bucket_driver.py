"""The driver of a scale-out export whose parts and output are in a bucket (see ``engine.scaleout.bucket``).

The same steps as ``engine.scaleout.driver``: plan, shards on Ray, claims
settled, stitch; the parts' small files are fetched into a local folder
for the settling and the stitch, their data stays in the bucket, and the
output is assembled there. The run's objects are deleted in every case; the
output appears only when complete (the multipart upload is aborted on any
error).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from engine.errors import InvalidInput, OutputError
from engine.pipeline import ExportOptions, check_options
from engine.scaleout.bucket import fetch_part_files, new_run, remove_run, stitch_to_bucket, upload_seed
from engine.scaleout.parts import PartManifest, PartSpec
from engine.scaleout.shards import cut
from engine.sources import Source
from engine.store.blobs.s3 import S3Location

__all__ = ["run_in_bucket"]


def run_in_bucket(
    source_factory: Callable[[], Source],
    dataset_id: str,
    version_id: str,
    output: str,
    options: ExportOptions,
    *,
    shards: int | None,
    ray_address: str,
    parts_dir: str,
    backend: str,
    max_retries: int,
    num_cpus: int | None,
    started: float,
) -> object:
    from engine.scaleout import ray_sink
    from engine.scaleout.driver import ScaleoutResult, _plan, _settle_claims

    out, parts_at = S3Location.parse(output), S3Location.parse(parts_dir)
    if not out.prefix or output.endswith("/"):
        raise OutputError(f"cannot write {output}: name the object, e.g. s3://{out.bucket}/dataset.zip")
    if out.bucket != parts_at.bucket:
        raise InvalidInput(f"--parts-dir must be in the output's bucket ({out.bucket}) for server-side copies")
    plan = _plan(source_factory, dataset_id, version_id, options, backend)
    format_cls = check_options(plan, options)
    if shards is not None and shards < 1:
        raise InvalidInput(f"shards must be at least 1, got {shards}")
    run_url = new_run(parts_dir)
    run_dir = Path(tempfile.mkdtemp(prefix=".dsexport-parts-"))
    try:
        with ray_sink.ray_session(ray_address, num_cpus):
            specs = [
                PartSpec(shard=shard, dataset_id=dataset_id, version_id=version_id, options=options, plan=plan,
                         run_dir=run_url, backend=backend)
                for shard in cut(plan.total, shards or ray_sink.cluster_cpus())
            ]  # fmt: skip
            parts_started = time.perf_counter()
            parts = [fetch_part_files(run_url, p, run_dir) for p in ray_sink.write_parts(specs, source_factory, max_retries=max_retries)]
            settle_started = time.perf_counter()
            slowest = max(part.seconds for part in parts)

            def rerun(spec: PartSpec) -> PartManifest:
                seeded = msgspec.structs.replace(spec, seed=upload_seed(Path(spec.seed or ""), run_url))
                return fetch_part_files(run_url, ray_sink.rerun_part(seeded, source_factory, max_retries=max_retries), run_dir)

            parts, reruns = _settle_claims(parts, specs, run_dir, rerun)
            settled = time.perf_counter() - settle_started
        stitch_started = time.perf_counter()
        size, entries = stitch_to_bucket(plan, options, parts, run_dir, run_url, output)
        stitched = time.perf_counter() - stitch_started
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
        remove_run(run_url)
    skipped = [item for part in parts for item in part.skipped][:1000]
    return ScaleoutResult(
        dataset_id=dataset_id, version_id=version_id, format=format_cls.name, shards=len(specs),
        items=sum(part.items for part in parts), entries=entries, bytes=size, seconds=time.perf_counter() - started,
        parts_seconds=settle_started - parts_started, slowest_part_seconds=slowest, settle_seconds=settled,
        stitch_seconds=stitched, reruns=reruns, skipped=skipped, skipped_count=sum(p.skipped_count for p in parts),
    )  # fmt: skip
