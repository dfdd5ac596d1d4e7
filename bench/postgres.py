"""PostgreSQL beside SQLite: bulk ingest and a FOLDERS export of the same small-items dataset.

    python -m bench.postgres [--items N] [--repeat R] [--cache DIR] [--results DIR]

It starts a throwaway PostgreSQL 15 (``bench.pg``, durable: ``fsync`` on,
as in production) on a free loopback port, then for each back end, each in
its own process measured like every contender (wall time and peak RSS,
``bench.measure.run_child``):

* **ingest**: the ``small`` scenario's dataset (``N`` items of 1 KiB in
  three splits and 10 labels, the same seeded bytes) built through the bulk
  path, ``add_items``: SQLite into a fresh folder, PostgreSQL into a fresh
  database (``COPY``). Large-blob content would go to the blob folder; these
  are all inline.
* **export**: ``dsexport``'s FOLDERS export of that dataset into a file
  (``run_export`` with ``StoreSource`` on the store's address), ``R`` rounds,
  the back ends alternating within each round.

It prints items/s and peak RSS of both and their ratio (PostgreSQL /
SQLite), and writes ``<results>/<date>-postgres.json``. The issue's target:
the PostgreSQL export at least 0.9x SQLite's items/s, the same peak RSS.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

__all__ = ["main"]

_SMALL = {"seed": 0, "size": 1024}
RESULTS = Path(__file__).parent / "results"


def _store_address(backend: str, where: str, root: Path):  # noqa: ANN202
    from engine.store.address import StoreAddress

    return StoreAddress(str(root / "store")) if backend == "sqlite" else StoreAddress(where, str(root / "blobs"))


def _ingest(backend: str, where: str, root: Path, items: int) -> dict:
    """Child: build the small dataset in the back end; the Dataset record as JSON."""
    from bench.generate import BUILDERS

    started = time.perf_counter()
    with _store_address(backend, where, root).open(create=True) as store:
        made = BUILDERS["small"](store, {**_SMALL, "n": items}, None)
    return {"dataset_id": made.dataset_id, "version_id": made.version_id, "items": made.items,
            "inner_seconds": round(time.perf_counter() - started, 3)}


def _export(backend: str, where: str, root: Path, dataset_id: str, version_id: str, out: Path) -> dict:
    """Child: one FOLDERS export into ``out/archive.zip``."""
    from engine.pipeline import ExportOptions, run_export
    from engine.sinks import FileSink
    from engine.sources import StoreSource

    address = _store_address(backend, where, root)
    started = time.perf_counter()
    result = run_export(
        lambda: StoreSource(address), dataset_id, version_id, FileSink(out / "archive.zip"),
        ExportOptions(format="folders"),
    )
    return {"archive_bytes": result.bytes, "entries": result.entries, "inner_seconds": round(time.perf_counter() - started, 3)}


def _child(*args: str):  # noqa: ANN202
    from bench.measure import run_child

    return run_child([sys.executable, "-m", "bench.postgres", *args], Path(__file__).resolve().parent.parent)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.postgres", description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000, help="items of 1 KiB (default 1,000,000)")
    parser.add_argument("--repeat", type=int, default=2, help="export rounds (default 2)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()), help="where the stores go (removed after)")
    parser.add_argument("--results", type=Path, default=RESULTS, help=f"results folder (default: {RESULTS})")
    args = parser.parse_args(argv)

    import signal

    from bench.pg import PostgresServer
    from bench.report import machine_facts

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a stopped run still stops its server (finally)

    work = Path(tempfile.mkdtemp(prefix="bench-postgres-", dir=args.cache))
    server = PostgresServer(durable=True)
    record: dict = {"scenario": "postgres", "items": args.items, "machine": machine_facts(),
                    "started_at": datetime.now().isoformat(timespec="seconds"), "backends": {}}
    try:
        url = server.new_database("bench")
        for backend in ("sqlite", "postgresql"):
            (work / backend).mkdir()
            run = _child("ingest", backend, url, str(work / backend), str(args.items))
            if run.exit_code:
                raise SystemExit(f"{backend} ingest failed: {run.error}")
            record["backends"][backend] = {"ingest": {**run.child, "seconds": run.seconds,
                                                      "peak_rss_kib": run.peak_rss_kib}, "exports": []}
            print(f"ingest {backend:10} {args.items / run.child['inner_seconds']:>10,.0f} items/s"
                  f"  {run.peak_rss_kib / 1024:7.1f} MiB", flush=True)
        for round_no in range(args.repeat):
            for backend in ("sqlite", "postgresql"):
                made = record["backends"][backend]["ingest"]
                out = work / "out"
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir()
                run = _child("export", backend, url, str(work / backend), made["dataset_id"], made["version_id"], str(out))
                if run.exit_code:
                    raise SystemExit(f"{backend} export failed: {run.error}")
                record["backends"][backend]["exports"].append({**run.child, "seconds": run.seconds,
                                                               "peak_rss_kib": run.peak_rss_kib})
                print(f"export {backend:10} round {round_no + 1}: {args.items / run.seconds:>10,.0f} items/s"
                      f" ({run.seconds:.2f} s wall)  {run.peak_rss_kib / 1024:7.1f} MiB", flush=True)
        best = {b: min(e["seconds"] for e in r["exports"]) for b, r in record["backends"].items()}
        rss = {b: max(e["peak_rss_kib"] for e in r["exports"]) for b, r in record["backends"].items()}
        record["export_ratio"] = round(best["sqlite"] / best["postgresql"], 3)
        record["ingest_ratio"] = round(
            record["backends"]["sqlite"]["ingest"]["inner_seconds"] / record["backends"]["postgresql"]["ingest"]["inner_seconds"], 3
        )
        print(f"PostgreSQL / SQLite: export items/s x{record['export_ratio']} (best of {args.repeat}),"
              f" peak RSS {rss['postgresql'] / 1024:.0f} vs {rss['sqlite'] / 1024:.0f} MiB;"
              f" ingest items/s x{record['ingest_ratio']}")
        args.results.mkdir(parents=True, exist_ok=True)
        path = args.results / f"{datetime.now():%Y-%m-%d-%H%M}-postgres.json"
        path.write_text(json.dumps(record, indent=1))
        print(f"wrote {path}")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("ingest", "export"):
        job, backend, where, root, *rest = sys.argv[1:]
        if job == "ingest":
            print(json.dumps(_ingest(backend, where, Path(root), int(rest[0]))))
        else:
            print(json.dumps(_export(backend, where, Path(root), rest[0], rest[1], Path(rest[2]))))
    else:
        main()
