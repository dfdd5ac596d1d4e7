"""PostgreSQL beside SQLite: bulk ingest and a FOLDERS export of the same small-items dataset.

    python -m bench.postgres [--items N] [--repeat R] [--clients C] [--downloads D]
                             [--cache DIR] [--results DIR]

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

* **clients**: ``C`` (default 16) SeeMe SDK clients, each in its own
  thread, making ``D`` (default 64) downloads in all, round robin between
  two ``dsexport serve`` processes on one database holding the demo
  datasets (200 items each); every download is checked byte for byte
  against a serial one. Requests/s and the latency percentiles (p50, p99).

It prints items/s and peak RSS of both and their ratio (PostgreSQL /
SQLite), and writes ``<results>/<date>-postgres.json``. The issue's targets:
the PostgreSQL export at least 0.9x SQLite's items/s with the same peak
RSS; ingest beside SQLite's; every concurrent download valid and identical.
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


def _clients(server, work: Path, clients: int, downloads: int) -> dict:  # noqa: ANN001
    """Two serve processes on one database, ``clients`` SDK clients making ``downloads`` downloads in all."""
    import os
    import subprocess
    import threading

    from seeme import Client

    from engine.demo import create_demo
    from engine.store.address import StoreAddress

    url, blobs = server.new_database("clients"), str(work / "clients-blobs")
    with StoreAddress(url, blobs).open(create=True) as store:
        made = create_demo(store, items=200, seed=0)
        key = store.create_user("bench", "pw")[1]
        store.give_datasets("bench")
    from bench.pg import free_port

    ports = [free_port(), free_port()]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    procs = [
        subprocess.Popen([sys.executable, "-m", "engine", "serve", "--store", url, "--blobs", blobs,
                          "--bind", f"127.0.0.1:{port}", "--worker", "trio"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for port in ports
    ]
    try:
        _wait_for(ports)

        def client(n: int) -> Client:
            base = f"http://127.0.0.1:{ports[n % 2]}/api/v1/"
            return Client(username="bench", apikey=key, backend=base, env_file="/nonexistent/.env")

        def download(sdk: Client, d, target: Path) -> bytes:  # noqa: ANN001
            target.mkdir(parents=True, exist_ok=True)
            sdk.download_dataset(d.dataset_id, d.version_id, extract_to_folder=str(target / "x"),
                                 download_file=str(target / "d.zip"), remove_download_file=False)
            data = (target / "d.zip").read_bytes()
            shutil.rmtree(target, ignore_errors=True)
            return data

        serial = {d.dataset_id: download(client(0), d, work / "serial") for d in made}
        latencies: list[float] = []
        bad: list[str] = []
        lock = threading.Lock()

        def worker(n: int) -> None:
            sdk = client(n)
            for k in range(n, downloads, clients):
                d = made[k % len(made)]
                started = time.perf_counter()
                data = download(sdk, d, work / f"c{n}")
                took = time.perf_counter() - started
                with lock:
                    latencies.append(took)
                    if data != serial[d.dataset_id]:
                        bad.append(f"download {k} of {d.name}")

        started = time.perf_counter()
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - started
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(30)
    latencies.sort()

    def pct(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 1)

    return {"clients": clients, "downloads": len(latencies), "identical": not bad, "mismatches": bad[:10],
            "seconds": round(seconds, 3), "requests_per_second": round(len(latencies) / seconds, 2),
            "p50_ms": pct(0.5), "p99_ms": pct(0.99), "max_ms": round(latencies[-1] * 1000, 1)}


def _wait_for(ports: list[int]) -> None:
    import socket

    deadline = time.monotonic() + 60
    for port in ports:
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"a server on port {port} did not start") from None
                time.sleep(0.1)


def _child(*args: str):  # noqa: ANN202
    from bench.measure import run_child

    return run_child([sys.executable, "-m", "bench.postgres", *args], Path(__file__).resolve().parent.parent)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.postgres", description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000, help="items of 1 KiB (default 1,000,000)")
    parser.add_argument("--repeat", type=int, default=2, help="export rounds (default 2)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent SDK clients (default 16; 0: skip)")
    parser.add_argument("--downloads", type=int, default=64, help="downloads by all clients together (default 64)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()), help="where the stores go (removed after)")
    parser.add_argument("--results", type=Path, default=RESULTS, help=f"results folder (default: {RESULTS})")
    args = parser.parse_args(argv)

    import signal

    from bench.pg import PostgresServer
    from bench.report import machine_facts

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a stopped run still stops its server (finally)

    if args.cache is not None:
        Path(args.cache).mkdir(parents=True, exist_ok=True)
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
        if args.clients:
            record["clients"] = got = _clients(server, work, args.clients, args.downloads)
            print(f"{got['clients']} SDK clients, 2 servers: {got['downloads']} downloads,"
                  f" {got['requests_per_second']} requests/s, p50 {got['p50_ms']} ms, p99 {got['p99_ms']} ms,"
                  f" {'all identical to a serial download' if got['identical'] else 'MISMATCHES: ' + str(got['mismatches'])}")
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
