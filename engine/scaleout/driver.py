"""The driver of a scale-out export: plan, shards on Ray, claims settled, stitch."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import msgspec

from engine.errors import InvalidInput, OutputError
from engine.pipeline import BACKENDS, ExportOptions, check_options
from engine.scaleout.claims import ClaimsLedger
from engine.scaleout.parts import PartManifest, PartSpec
from engine.scaleout.shards import cut
from engine.scaleout.stitch import stitch
from engine.sources import ExportPlan, Source

__all__ = ["ScaleoutResult", "run_scaleout"]


class ScaleoutResult(msgspec.Struct, kw_only=True):
    dataset_id: str
    version_id: str
    format: str
    shards: int
    items: int
    entries: int
    bytes: int
    seconds: float
    #: Writing the parts on Ray (first round), wall time, and the slowest shard inside its task.
    parts_seconds: float
    slowest_part_seconds: float
    #: Checking the shards' names in order, re-runs included (serial).
    settle_seconds: float
    #: The serial part: copying parts, relocating records, closing entries, end records.
    stitch_seconds: float
    #: Shards run a second time because an earlier shard had claimed one of their names.
    reruns: list[int]
    skipped: list[str]
    skipped_count: int
    #: Box formats: image-level labels left out and boxes written, all shards together (None: not a box format).
    image_labels_left_out: int = 0
    boxes: int | None = None


def run_scaleout(
    source_factory: Callable[[], Source],
    dataset_id: str,
    version_id: str,
    output: str,
    options: ExportOptions,
    *,
    shards: int | None = None,
    ray_address: str = "local",
    parts_dir: str | None = None,
    backend: str = "trio",
    max_retries: int = 3,
    num_cpus: int | None = None,
) -> ScaleoutResult:
    """Export one version as ``shards`` Ray tasks and stitch their parts into ``output``.

    ``shards`` defaults to the cluster's CPU count. ``ray_address`` is
    ``local`` (start a cluster here), ``auto`` or a Ray address.

    ``source_factory`` is sent to every worker (it must pickle, e.g. a
    ``functools.partial``); ``parts_dir`` must be reachable by every worker
    (default: the output's folder). The archive is byte-identical to
    :func:`engine.pipeline.run_export`'s; ``output`` appears only when it is
    complete, and the parts are removed in every case.
    """
    from engine.scaleout import ray_sink  # Ray is imported only from here on

    started = time.perf_counter()
    if str(output) == "-":
        raise InvalidInput("a scale-out export writes a file: give -o FILE, not -o -")
    in_bucket = str(output).startswith("s3://")
    if in_bucket != str(parts_dir or "").startswith("s3://"):
        raise InvalidInput(
            "a --ray export into a bucket assembles its parts there: give both -o s3://BUCKET/KEY.zip and"
            " --parts-dir s3://BUCKET/PREFIX (the same bucket), or neither"
        )
    if in_bucket:
        from engine.scaleout.bucket_driver import run_in_bucket

        return run_in_bucket(
            source_factory, dataset_id, version_id, str(output), options, shards=shards, ray_address=ray_address,
            parts_dir=str(parts_dir), backend=backend, max_retries=max_retries, num_cpus=num_cpus, started=started,
        )
    if backend not in BACKENDS:
        raise InvalidInput(f"unknown backend {backend!r}")
    target = Path(output)
    if not target.parent.is_dir():
        raise OutputError(f"cannot write {target}: folder {target.parent} does not exist")
    folder = Path(parts_dir) if parts_dir else target.parent
    if not folder.is_dir():
        raise OutputError(f"parts folder {folder} does not exist")
    plan = _plan(source_factory, dataset_id, version_id, options, backend)
    format_cls = check_options(plan, options)
    if shards is not None and shards < 1:
        raise InvalidInput(f"shards must be at least 1, got {shards}")
    run_dir = Path(tempfile.mkdtemp(prefix=".dsexport-parts-", dir=folder))
    try:
        with ray_sink.ray_session(ray_address, num_cpus):
            specs = [
                PartSpec(
                    shard=shard,
                    dataset_id=dataset_id,
                    version_id=version_id,
                    options=options,
                    plan=plan,
                    run_dir=str(run_dir),
                    backend=backend,
                )
                for shard in cut(plan.total, shards or ray_sink.cluster_cpus())
            ]
            parts_started = time.perf_counter()
            parts = ray_sink.write_parts(specs, source_factory, max_retries=max_retries)
            settle_started = time.perf_counter()
            slowest = max(part.seconds for part in parts)
            parts, reruns = _settle_claims(
                parts, specs, run_dir, lambda spec: ray_sink.rerun_part(spec, source_factory, max_retries=max_retries)
            )
            settled = time.perf_counter() - settle_started
        stitch_started = time.perf_counter()
        size, entries = stitch(plan, options, parts, run_dir, output)
        stitched = time.perf_counter() - stitch_started
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    skipped = [item for part in parts for item in part.skipped][:1000]
    return ScaleoutResult(
        dataset_id=dataset_id,
        version_id=version_id,
        format=format_cls.name,
        shards=len(specs),
        items=sum(part.items for part in parts),
        entries=entries,
        bytes=size,
        seconds=time.perf_counter() - started,
        parts_seconds=settle_started - parts_started,
        slowest_part_seconds=slowest,
        settle_seconds=settled,
        stitch_seconds=stitched,
        reruns=reruns,
        skipped=skipped,
        skipped_count=sum(part.skipped_count for part in parts),
        image_labels_left_out=sum(part.image_labels_left_out for part in parts),
        boxes=None if not parts or any(p.boxes is None for p in parts) else sum(p.boxes or 0 for p in parts),
    )


def _plan(
    source_factory: Callable[[], Source], dataset_id: str, version_id: str, options: ExportOptions, backend: str
) -> ExportPlan:
    async def resolve() -> ExportPlan:
        source = source_factory()
        try:
            return await source.plan(dataset_id, version_id, options.split)
        finally:
            await source.aclose()

    return anyio.run(resolve, **BACKENDS[backend])


def _settle_claims(
    parts: list[PartManifest],
    specs: list[PartSpec],
    run_dir: Path,
    rerun: Callable[[PartSpec], PartManifest],
) -> tuple[list[PartManifest], list[int]]:
    """Walk the shards in order; run again, seeded, each one whose names collide
    with an earlier shard's (see :mod:`engine.scaleout.claims`)."""
    ledger = ClaimsLedger(run_dir / "ledger.sqlite3")
    final: list[PartManifest] = []
    reruns: list[int] = []
    try:
        for part, spec in zip(parts, specs, strict=True):
            if ledger.collides(run_dir / part.claims):
                part = rerun(msgspec.structs.replace(spec, seed=str(ledger.path)))
                reruns.append(spec.shard.index)
            ledger.add(run_dir / part.claims)
            final.append(part)
    finally:
        ledger.close()
    return final, reruns
