"""The scale-out scenario: one export as 1 or 2 Ray shards, and the stitch alone.

Contenders (each its own process, like every other):

* ``dsexport-ray-1`` / ``dsexport-ray-2``: ``run_scaleout`` with 1 or 2
  shards on a local Ray cluster of 2 CPUs started by the process itself. The
  wall time includes starting Ray; the child also reports how long Ray took
  to start (``ray_start_seconds``), the export after that
  (``export_seconds``) and the serial stitch alone (``stitch_seconds``).

:func:`report_lines` turns those child figures into lines under the
scenario's table in ``latest.md``.
"""

from __future__ import annotations

import functools
import logging
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.datasets import Dataset

__all__ = ["CONTENDERS", "report_lines"]

ARCHIVE = "archive.zip"


def _ray_export(dataset: Dataset, out: Path, *, shards: int) -> dict:
    import os

    import ray

    from engine.pipeline import ExportOptions
    from engine.scaleout import run_scaleout
    from engine.sources import StoreSource

    started = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    ray_started = time.perf_counter()
    try:
        result = run_scaleout(
            functools.partial(StoreSource, dataset.store, page_process=False),
            dataset.dataset_id,
            dataset.version_id,
            str(out / ARCHIVE),
            ExportOptions(format=dataset.format),
            shards=shards,
        )
    finally:
        ray.shutdown()
    return {
        "archive_bytes": result.bytes,
        "entries": result.entries,
        "shards": result.shards,
        "ray_start_seconds": ray_started - started,
        "export_seconds": result.seconds,
        "parts_seconds": result.parts_seconds,
        "slowest_part_seconds": result.slowest_part_seconds,
        "settle_seconds": result.settle_seconds,
        "stitch_seconds": result.stitch_seconds,
        "reruns": len(result.reruns),
        "load_average": list(os.getloadavg()),
    }


CONTENDERS = {
    "dsexport-ray-1": functools.partial(_ray_export, shards=1),
    "dsexport-ray-2": functools.partial(_ray_export, shards=2),
}


def report_lines(point: dict) -> list[str]:
    """Medians of the child-reported figures of the Ray contenders at one point."""
    lines = []
    for name, entry in point["contenders"].items():
        children = [r["child"] for r in entry["runs"] if not r["warmup"] and r.get("child")]
        children = [c for c in children if "stitch_seconds" in c]
        if not children:
            continue

        def median(field: str) -> float:
            return statistics.median(c[field] for c in children)

        lines.append(
            f"- {name} at {point['n']:,}: Ray start-up {median('ray_start_seconds'):.2f} s, export "
            f"{median('export_seconds'):.2f} s: parts {median('parts_seconds'):.2f} s (slowest shard "
            f"{median('slowest_part_seconds'):.2f} s inside its task), names checked "
            f"{median('settle_seconds'):.2f} s, stitch {median('stitch_seconds'):.2f} s (the last two are "
            f"the serial part); load average at the end "
            f"{', '.join(f'{x:.2f}' for x in children[-1]['load_average'])}"
        )
    return lines + ([""] if lines else [])
