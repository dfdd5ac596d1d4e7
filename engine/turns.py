"""Turns at the interpreter for the concurrent exports of one process."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["CpuTurns", "in_turn"]


class CpuTurns:
    """Turns at the interpreter for the exports of one process (the server's).

    An export's Python work (reading pages, formatting, zipping) holds the
    interpreter lock, so 16 exports at once gain nothing from 16 threads:
    they fight over the lock and, measured here, take 2.3x longer in all than
    one after another, burning 3x the CPU. With turns, a worker thread
    formats a batch (or reads a page) only while it holds one of ``n`` turns,
    and the exports take turns batch by batch, each still streaming from its
    start. A thread that waits on a client (a sink's write) gives its turn
    away meanwhile (:meth:`paused`), so a stalled client stalls only its own
    export.
    """

    def __init__(self, n: int = 1) -> None:
        self._turns = threading.BoundedSemaphore(n)
        self._held = threading.local()

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold a turn (in a worker thread) for the duration of the block."""
        self._turns.acquire()
        self._held.value = True
        try:
            yield
        finally:
            self._held.value = False
            self._turns.release()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Give this thread's turn away while it blocks on I/O; a no-op if it holds none."""
        if not getattr(self._held, "value", False):
            yield
            return
        self._held.value = False
        self._turns.release()
        try:
            yield
        finally:
            self._turns.acquire()
            self._held.value = True

    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` during a turn (for ``anyio.to_thread.run_sync``)."""
        with self.turn():
            return fn(*args)


def in_turn(cpu: CpuTurns | None, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, during a turn of ``cpu`` if there is one."""
    return fn(*args) if cpu is None else cpu.run(fn, *args)
