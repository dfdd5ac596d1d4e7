"""The real server, with a write that lands at one chosen point of a download.

Run as ``python tests/write_between_server.py STORE BIND TRIGGER [BLOBS]``. When an
export starts reading its pages (``StoreReader.iter_pages`` for the bytes,
not for sizing, which asks for ``PageContent.SIZES``) and the file ``TRIGGER`` exists, the Store call it names
(JSON ``{"method": ..., "args": [...], "kwargs": {...}}``) is made and
committed through a connection of its own, then ``TRIGGER`` is renamed to
``TRIGGER.done``. So the write commits after the response's status, ETag
and length were decided and before its first byte was read: the race a
concurrent import or edit runs into, made to happen every time.

:class:`WriteBetweenServer` starts it on a free loopback port.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from engine.store.address import StoreAddress

ROOT = Path(__file__).resolve().parent.parent


def _install_hook(address: StoreAddress, trigger: Path) -> None:
    from engine.store import PageContent, StoreReader

    def hooked(reader_cls: type) -> None:
        real_iter_pages = reader_cls.iter_pages

        def iter_pages(self: Any, *args: Any, **kwargs: Any):
            if kwargs.get("content") is not PageContent.SIZES and trigger.exists():
                call = json.loads(trigger.read_text())
                with address.open(create=False) as writer:
                    getattr(writer, call["method"])(*call.get("args", []), **call.get("kwargs", {}))
                trigger.rename(trigger.with_name(trigger.name + ".done"))
            return real_iter_pages(self, *args, **kwargs)

        reader_cls.iter_pages = iter_pages

    hooked(StoreReader)
    if address.metadata.startswith("postgres"):
        from engine.store.postgres import PostgresReader

        hooked(PostgresReader)


class WriteBetweenServer:
    """This module as a server subprocess on 127.0.0.1; :meth:`arm` schedules the write."""

    def __init__(self, store: Path | str, *, blobs: str | None = None, workdir: Path | None = None) -> None:
        """``store``: a folder, or a metadata URL with ``blobs`` and ``workdir`` (for the trigger and the log)."""
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.store, self.blobs = store, blobs
        self.address = StoreAddress(str(store), blobs)
        self.base = f"http://127.0.0.1:{self.port}/api/v1/"
        workdir = workdir if workdir is not None else Path(store).parent
        self.trigger = workdir / f"write-{self.port}.json"
        self.log = workdir / f"server-{self.port}.log"
        self._log_file = open(self.log, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, __file__, str(store), f"127.0.0.1:{self.port}", str(self.trigger),
             *([blobs] if blobs is not None else [])],
            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=self._log_file, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server did not start: {self.log.read_text()}")

    def arm(self, method: str, *args: Any, **kwargs: Any) -> None:
        """Make ``Store.method(*args, **kwargs)`` land as the next export starts reading pages."""
        self.trigger.with_name(self.trigger.name + ".done").unlink(missing_ok=True)
        self.trigger.write_text(json.dumps({"method": method, "args": list(args), "kwargs": kwargs}))

    @property
    def write_landed(self) -> bool:
        return self.trigger.with_name(self.trigger.name + ".done").exists()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log_file.close()


if __name__ == "__main__":
    store_arg, bind, trigger_arg = sys.argv[1:4]
    served = StoreAddress(store_arg, sys.argv[4] if len(sys.argv) > 4 else None)
    _install_hook(served, Path(trigger_arg))
    from engine.server.serve import serve

    serve(served, bind)
