"""One read snapshot per download: its ETag, its size and its bytes all come from it.

The ETag names a revision of the version; a resume (``If-Range``) trusts
that equal ETags mean equal bytes. So the revision must be read in the
same SQLite read transaction as the metadata the archive is sized from and
the pages the archive is written from: a write that commits in between is
then invisible to this download (the next one sees it, under a new ETag),
instead of giving a 206 that splices bytes of two states.

The snapshot is a read-only connection of its own (WAL: it never blocks
the writer) held from the first lookup of the request until the response
has ended. Reading through it is the sources' job
(:class:`engine.sources.ReaderSource` for the bytes,
:func:`engine.sizing.archive_size` for the size); this module only holds
it open and releases it.
"""

from __future__ import annotations

from contextlib import ExitStack

import anyio.to_thread

from engine.sources import ReaderSource
from engine.store import Store, StoreReader
from engine.turns import CpuTurns

__all__ = ["DownloadSnapshot"]


class DownloadSnapshot:
    """A read-only connection holding one read transaction until :meth:`close`.

    Use it from one thread at a time (worker threads take turns, as an export's do).
    """

    def __init__(self, store: Store) -> None:
        self.reader: StoreReader = store.reader()
        self._held = ExitStack()
        try:
            self._held.enter_context(self.reader.snapshot())
        except BaseException:
            self.reader.close()
            raise

    @classmethod
    async def open(cls, store: Store) -> DownloadSnapshot:
        """Open the connection and begin its read transaction (in a worker thread).

        If cancelled, the worker thread still finishes opening and the
        connection is closed when the object is collected.
        """
        return await anyio.to_thread.run_sync(cls, store)

    def close(self) -> None:
        """End the read transaction and close the connection; a second call does nothing."""
        try:
            self._held.close()
        finally:
            self.reader.close()

    async def aclose(self) -> None:
        """:meth:`close` in a worker thread, shielded: a cancelled response still releases the snapshot."""
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self.close)

    def source(self, cpu: CpuTurns) -> ReaderSource:
        """The export's source, reading every page through this snapshot (closing it leaves the snapshot open)."""
        return ReaderSource(self.reader, cpu=cpu)
