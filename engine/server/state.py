"""What the app shares between requests: the store, the export turns, sizes being saved.

Archive sizes live in the store's own table (``archive_size`` /
``remember_archive_size``), which survives restarts; there is no cache in
front of it: the lookup is one primary-key read, done inside a thread hop the
export download makes anyway. The only thing held in memory is a size learnt
by an export that has not reached the store yet (its write may queue behind
an import for the write lock), so the next download of the same ETag, which
may start as soon as the last byte left, already knows it.

Store calls run in worker threads (the SQLite back end gives each thread its
own connection, ``engine.store.sqlite.db``): reads run beside writes and never
wait for them; write transactions queue on the store's write lock.
"""

from __future__ import annotations

import os
import anyio.to_thread
from starlette.requests import Request

from engine.store import StoreAddress
from engine.turns import CpuTurns

__all__ = ["EXPORT_TURNS", "AppState", "app_state"]

#: Export batches formatted at once (``DSEXPORT_EXPORT_TURNS``): the interpreter lock runs one
#: thread at a time, so more turns only add contention (16 downloads: 32 s with 1, 45 s with 2).
EXPORT_TURNS = int(os.environ.get("DSEXPORT_EXPORT_TURNS", "1"))


class AppState:
    """The store of the app and what concurrent exports share."""

    def __init__(self, address: StoreAddress) -> None:
        self.address = address
        self.store = address.open(create=True)
        #: Concurrent exports take turns at the interpreter (``engine.turns``).
        self.cpu = CpuTurns(EXPORT_TURNS)
        #: ETag -> size learnt by a finished export, until the store has it (event loop only).
        self._unsaved_sizes: dict[str, int] = {}


    def size_of(self, etag: str) -> int | None:
        """The exact archive size for an export ETag, if known. Call it in a worker thread."""
        size = self._unsaved_sizes.get(etag)
        return size if size is not None else self.store.archive_size(etag)

    def learn_size(self, etag: str, size: int) -> None:
        """Make a size known at once (on the event loop), before :meth:`remember_size` stores it."""
        self._unsaved_sizes[etag] = size

    async def remember_size(self, etag: str, version_id: str, revision: int, size: int) -> None:
        """Store an archive's size (it then survives restarts; older revisions' sizes are dropped).

        Cancelled, the worker thread still finishes the write; the in-memory copy is dropped either way.
        """
        self._unsaved_sizes[etag] = size
        try:
            await anyio.to_thread.run_sync(self.store.remember_archive_size, etag, version_id, revision, size)
        finally:
            self._unsaved_sizes.pop(etag, None)

    def close(self) -> None:
        self.store.close()


def app_state(request: Request) -> AppState:
    """The state of the app serving ``request``."""
    return request.app.state.service

