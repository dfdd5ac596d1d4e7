"""A TCP proxy on loopback that impairs a link on purpose, for tests and benchmarks.

* ``latency``: every chunk a client sends is held that many seconds before
  it goes on to the server, so each request pays one extra delay (a
  far-away server, as ``tc netem`` would make it, without needing root);
* ``cuts``: the n-th connection is closed after ``cuts[n]`` bytes of the
  server's answer have passed (headers included): a dropped connection in
  the middle of a download. Connections after the list runs out pass
  everything.

It runs on its own event loop (anyio on asyncio) in a helper thread: one
thread for every connection would queue on the GIL, and the proxy itself
would become the slow link it is meant to imitate.
"""

from __future__ import annotations

import anyio
from anyio.abc import SocketAttribute, SocketStream
from anyio.from_thread import start_blocking_portal

__all__ = ["ImpairedProxy"]

_GONE = (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)


class ImpairedProxy:
    def __init__(self, target_port: int, *, latency: float = 0.0, cuts: list[int] | None = None) -> None:
        self.target_port = target_port
        self.latency = latency
        self.cuts = list(cuts or [])
        self.connections = 0
        self._portal_cm = start_blocking_portal("asyncio")
        portal = self._portal = self._portal_cm.__enter__()
        self._listener = portal.call(lambda: anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0))
        self.port: int = self._listener.extra(SocketAttribute.local_port)
        self._serving = portal.start_task_soon(self._listener.serve, self._handle)

    def base(self, path: str = "/api/v1/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self._serving.cancel()
        self._portal.call(self._listener.aclose)
        self._portal_cm.__exit__(None, None, None)

    def __enter__(self) -> ImpairedProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def _handle(self, client: SocketStream) -> None:
        cut = self.cuts[self.connections] if self.connections < len(self.cuts) else None
        self.connections += 1
        try:
            server = await anyio.connect_tcp("127.0.0.1", self.target_port)
        except OSError:
            await client.aclose()
            return
        async with client, server, anyio.create_task_group() as tg:
            tg.start_soon(self._pump, client, server, self.latency, None, tg.cancel_scope)
            tg.start_soon(self._pump, server, client, 0.0, cut, tg.cancel_scope)

    @staticmethod
    async def _pump(src: SocketStream, dst: SocketStream, delay: float, limit: int | None, scope: anyio.CancelScope) -> None:
        """Copy ``src`` to ``dst``; at EOF, an error or the cut, close the connection both ways."""
        passed = 0
        try:
            async for chunk in src:
                if delay:
                    await anyio.sleep(delay)
                if limit is not None and passed + len(chunk) >= limit:
                    await dst.send(chunk[: limit - passed])
                    break
                await dst.send(chunk)
                passed += len(chunk)
        except _GONE:
            pass
        finally:
            scope.cancel()
