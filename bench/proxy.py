"""A TCP proxy on loopback that impairs a link on purpose, for tests and benchmarks.

* ``latency``: every chunk a client sends is held that many seconds before
  it goes on to the server, so each request pays one extra delay (a
  far-away server, as ``tc netem`` would make it, without needing root);
* ``cuts``: the n-th connection is closed after ``cuts[n]`` bytes of the
  server's answer have passed (headers included): a dropped connection in
  the middle of a download. Connections after the list runs out pass
  everything.

Threads, one pair per connection: enough for the few hundred connections a
test or a benchmark opens.
"""

from __future__ import annotations

import socket
import threading
import time

__all__ = ["ImpairedProxy"]


class ImpairedProxy:
    def __init__(self, target_port: int, *, latency: float = 0.0, cuts: list[int] | None = None) -> None:
        self.target_port = target_port
        self.latency = latency
        self.cuts = list(cuts or [])
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def base(self, path: str = "/api/v1/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def __enter__(self) -> ImpairedProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                cut = self.cuts[self.connections] if self.connections < len(self.cuts) else None
                self.connections += 1
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._pump, args=(client, server, self.latency, None), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, 0.0, cut), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket, delay: float, limit: int | None) -> None:
        passed = 0
        try:
            while chunk := src.recv(1 << 16):
                if delay:
                    time.sleep(delay)
                if limit is not None and passed + len(chunk) >= limit:
                    dst.sendall(chunk[: limit - passed])
                    break
                dst.sendall(chunk)
                passed += len(chunk)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
