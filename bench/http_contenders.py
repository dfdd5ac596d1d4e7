"""The HTTP contenders: the export endpoint and client-side export, over loopback.

* ``http-download``: one ``GET .../download?format=`` of the version in
  the dataset's format, the body read with the standard library's
  ``http.client`` into one reused buffer and dropped; the client reports
  the time to the first body byte and the archive's bytes.
* ``http-download-x16``: 16 such downloads at once (one client process,
  16 httpx tasks); it reports each download's time to first byte.
* ``remote-w64`` / ``remote-w16`` / ``remote-w1``: ``run_export`` over the
  HTTP source (what ``dsexport export --from`` runs) with a fetch window of
  64, 16 and 1,
  through :class:`bench.proxy.ImpairedProxy` adding 20 ms to every request.

Every run starts its own server (``python -m engine serve --worker uvloop``), forked like
any contender, and stops it with SIGTERM afterwards: its peak RSS comes
from ``os.wait4`` as every other figure does, and is stored beside the
client's in the run's record (``server_peak_rss_kib``). The client process
is what :func:`bench.measure.measure_one` times.

``python -m bench.http_contenders CONTENDER BASE_URL API_KEY DATASET_ID VERSION_ID OUT``
runs the client side and prints its JSON line.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

from bench.datasets import Dataset
from bench.measure import Run, measure_one
from bench.proxy import ImpairedProxy

__all__ = ["HTTP_CONTENDERS", "LATENCY", "measure_http"]

REPO = Path(__file__).resolve().parent.parent
#: Seconds the proxy adds to every request of the remote contenders.
LATENCY = 0.020
#: contender -> fetch window of the client-side export (0: a download contender)
HTTP_CONTENDERS = {"http-download": 0, "http-download-x16": 0, "remote-w64": 64, "remote-w16": 16, "remote-w1": 1}
_USER = "bench"
#: The server's event loop: asyncio on uvloop answers small requests ~1.8x faster than trio here.
WORKER = "uvloop"


def api_key(dataset: Dataset) -> str:
    """A key of the ``bench`` user, who is given the dataset (generated datasets have no owner)."""
    from engine.store import Store

    with Store.open(dataset.store, create=False) as store:
        found = store.login(_USER, _USER)
        key = found[1] if found else store.create_user(_USER, _USER)[1]
        if store.owner_of(dataset.dataset_id) != store.user_for_key(key):
            store.give_datasets(_USER, [dataset.dataset_id])
    return key


class _Server:
    """``python -m engine serve`` on a free port, forked and reaped by this process."""

    def __init__(self, store: Path, log: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        argv = [sys.executable, "-m", "engine", "serve", "--store", str(store), "--bind", f"127.0.0.1:{self.port}",
                "--worker", WORKER]
        with open(log, "wb") as out:
            self.pid = os.fork()
            if self.pid == 0:
                try:
                    os.chdir(REPO)
                    os.dup2(out.fileno(), 1)
                    os.dup2(out.fileno(), 2)
                    os.execvp(argv[0], argv)
                finally:
                    os._exit(127)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the server did not start: {log.read_text()[-2000:]}")

    def stop(self) -> int:
        """SIGTERM, wait; the server's peak RSS in KiB."""
        os.kill(self.pid, signal.SIGTERM)
        _, _, usage = os.wait4(self.pid, 0)
        return usage.ru_maxrss


def measure_http(name: str, dataset: Dataset, out: Path, trash: Path, *, warmup: bool = False) -> Run:
    """One run of an HTTP contender against a server started for it."""
    key = api_key(dataset)
    out.mkdir(parents=True, exist_ok=True)
    server = _Server(dataset.store, out.parent / f"server-{name}.log")
    proxy = ImpairedProxy(server.port, latency=LATENCY) if HTTP_CONTENDERS[name] else None
    try:
        port = proxy.port if proxy else server.port
        run = measure_one(command(name, f"http://127.0.0.1:{port}/api/v1/", key, dataset, out), REPO, out, trash,
                          warmup=warmup)
    finally:
        if proxy:
            proxy.close()
        run_server_rss = server.stop()
    run.child["server_peak_rss_kib"] = run_server_rss
    return run


def command(name: str, base: str, key: str, dataset: Dataset, out: Path) -> list[str]:
    return [sys.executable, "-m", "bench.http_contenders", name, base, key, dataset.dataset_id, dataset.version_id,
            str(out), dataset.format]


# -- the client side (runs in the measured child) ------------------------------------------


async def _download(client, url: str) -> tuple[float, int]:
    """(seconds to the first body byte, bytes) of one GET, the body dropped."""
    started = time.perf_counter()
    first = 0.0
    size = 0
    async with client.stream("GET", url) as response:
        response.raise_for_status()
        async for chunk in response.aiter_raw():
            if not size:
                first = time.perf_counter() - started
            size += len(chunk)
    return first, size


def _download_plain(url: str, key: str) -> dict:
    """One GET read with the standard library into one reused 1 MiB buffer.

    A client that costs next to nothing per byte, so the figure is the
    server's: httpx hands the body over in 64 KiB pieces through its event
    loop, which on two shared cores took more CPU than the server's export.
    """
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    buffer = bytearray(1 << 20)
    started = time.perf_counter()
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    try:
        conn.request("GET", f"{parts.path}?{parts.query}", headers={"Authorization": f"Bearer {key}"})
        response = conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"download answered {response.status}: {response.read()[:500]!r}")
        size = response.readinto(buffer)
        first = time.perf_counter() - started
        while n := response.readinto(buffer):
            size += n
    finally:
        conn.close()
    return {"archive_bytes": size, "downloads": 1, "ttfb_ms": round(first * 1000, 1),
            "ttfb_ms_max": round(first * 1000, 1)}


async def _downloads(base: str, key: str, dataset_id: str, version_id: str, count: int, fmt: str) -> dict:
    import anyio
    import httpx

    url = f"{base}datasets/{dataset_id}/versions/{version_id}/download?format={fmt}"
    results: list[tuple[float, int]] = []
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=120) as client:

        async def one() -> None:
            results.append(await _download(client, url))

        async with anyio.create_task_group() as tg:
            for _ in range(count):
                tg.start_soon(one)
    ttfb = sorted(first * 1000 for first, _ in results)
    return {"archive_bytes": sum(size for _, size in results), "downloads": count,
            "ttfb_ms": round(ttfb[len(ttfb) // 2], 1), "ttfb_ms_max": round(ttfb[-1], 1)}


def _remote_export(base: str, key: str, dataset_id: str, version_id: str, out: Path, window: int) -> dict:
    from engine.client.api import RemoteApi
    from engine.client.source import HttpSource
    from engine.pipeline import ExportOptions, run_export
    from engine.sinks import FileSink

    source = lambda: HttpSource(RemoteApi(base, key, max_connections=window))  # noqa: E731
    result = run_export(source, dataset_id, version_id, FileSink(out / "archive.zip"),
                        ExportOptions(format="folders", concurrency=window))
    return {"archive_bytes": result.bytes, "entries": result.entries, "items": result.items}


def main(argv: list[str]) -> None:
    import anyio

    name, base, key, dataset_id, version_id, out, fmt = argv
    started = time.perf_counter()
    window = HTTP_CONTENDERS[name]
    if window:
        record = _remote_export(base, key, dataset_id, version_id, Path(out), window)
    elif name.endswith("x16"):
        record = anyio.run(_downloads, base, key, dataset_id, version_id, 16, fmt)
    else:
        record = _download_plain(f"{base}datasets/{dataset_id}/versions/{version_id}/download?format={fmt}", key)
    record["inner_seconds"] = round(time.perf_counter() - started, 4)
    print(json.dumps(record))


if __name__ == "__main__":
    main(sys.argv[1:])
