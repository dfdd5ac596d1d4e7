"""The ``blobs`` table: every blob's address, size and CRC-32, and the bytes of the small ones.

Why two places: reading one small file costs 15-20 µs even when warm, which
caps small-item exports near 50 k items/s, while a blob read inline with the
item's row costs next to nothing. So blobs under ``INLINE_LIMIT`` live in the
``blobs.data`` column, and larger ones in the store's blob back end (a
``BlobStore``: files by default), recorded here with ``data`` NULL. The
content is in the blob store before its row is committed, so a row never
names content that was not written.

With a blob back end that packs (``engine.store.api.PackedBlobs``: S3),
small blobs are not inline but appended into pack objects, the row holding
their ``pack`` and ``pack_offset`` (``data`` NULL): a pack is written and
sealed before the rows naming it are committed, and an export reads a
page's packed blobs with one ranged read per pack (:meth:`page_contents`).

Items point at their blob by the row's integer ``id``, not by hash: an
export then reads blobs in row order instead of probing the hash index at
random, which measured 150 k vs 370 k rows/s on a million 1 KiB blobs.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from itertools import chain

from engine.errors import MissingBlob
from engine.store.api import INLINE_LIMIT, BlobRef, BlobStore, PackedBlobs, PackSlot
from formats.base import Blob

__all__ = ["SqliteBlobs"]


class SqliteBlobs:
    """A store's blobs: the ``blobs`` table plus the blob back end holding the large ones.

    ``connection`` gives the calling thread's connection of the store, so an
    existence check sees committed rows (and the caller's own transaction),
    never another thread's uncommitted ones. ``lock`` is the store's write
    lock: a blob row is one autocommit INSERT, taken under the lock so
    writers queue in order. Readers pass no lock.
    """

    def __init__(
        self, files: BlobStore, connection: Callable[[], sqlite3.Connection], lock: threading.RLock | None = None
    ) -> None:
        self.files = files
        self.packed = isinstance(files, PackedBlobs)
        """Whether small blobs go into packs of ``files`` instead of inline."""
        self._connection = connection
        self._lock = lock

    @property
    def _db(self) -> sqlite3.Connection:
        return self._connection()

    def exists(self, sha256: str) -> bool:
        """Whether the blob is recorded (and, for a large blob, its content is there)."""
        row = self._db.execute(
            "SELECT data IS NOT NULL OR pack IS NOT NULL FROM blobs WHERE sha256 = ?", (sha256,)
        ).fetchone()
        return row is not None and (row[0] or self.files.exists(sha256))

    def ids_of(self, shas: Iterable[str]) -> dict[str, int]:
        """Row ids of the recorded blobs among ``shas`` (unknown ones are left out)."""
        found: dict[str, int] = {}
        wanted = list(shas)
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            marks = ",".join("?" * len(part))
            found.update(self._db.execute(f"SELECT sha256, id FROM blobs WHERE sha256 IN ({marks})", part))
        return found

    def stage_small(self, small: dict[str, tuple[str, int, int, bytes]]) -> dict[str, tuple]:
        """Prepare a batch's small blobs for :meth:`insert_many`, before its transaction.

        Inline: the rows as they are. Packed: the blobs not recorded yet are
        written into sealed packs here (the I/O stays out of the transaction)
        and their rows carry the slots instead of the bytes.
        """
        if not self.packed:
            return {sha: (*row, None, None) for sha, row in small.items()}
        known = self.ids_of(small)
        fresh = [row for sha, row in small.items() if sha not in known]
        with self.files.pack_writer() as writer:  # type: ignore[attr-defined]
            slots = [writer.add(row[3]) for row in fresh]
        staged = {sha: (sha, size, crc, None, None, None) for sha, (_, size, crc, _) in small.items()}
        staged.update({row[0]: (*row[:3], None, slot.pack, slot.offset) for row, slot in zip(fresh, slots)})
        return staged

    def insert_many(self, small: dict[str, tuple]) -> dict[str, int]:
        """Record small blobs staged by :meth:`stage_small` and return every one's row id; inside a write transaction.

        New rows get ids after the current maximum, so when nothing was
        stored before (the usual bulk load) no lookup is needed; blobs that
        were already there are looked up.
        """
        base = self._db.execute("SELECT coalesce(max(id), 0) FROM blobs").fetchone()[0]
        ids = {sha: base + n for n, sha in enumerate(small, start=1)}
        before = self._db.total_changes
        self._db.executemany(
            "INSERT OR IGNORE INTO blobs (id, sha256, size, crc32, data, pack, pack_offset) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(ids[sha], *row) for sha, row in small.items()],
        )
        if self._db.total_changes - before != len(small):
            ids.update(self.ids_of(small))  # some were stored already: theirs are the real ids
        return ids

    def put(self, data: bytes) -> BlobRef:
        """Store ``data``, deduplicated by hash (lost content is written again)."""
        ref = BlobRef.of(data)
        if not self.exists(ref.sha256):
            if ref.size >= INLINE_LIMIT:
                self.files.put([data])
                self._record(ref, None)
            elif self.packed:
                with self.files.pack_writer() as writer:  # type: ignore[attr-defined]
                    slot = writer.add(data)  # a pack of its own: `dsexport store compact` merges small packs
                self._record(ref, None, slot)
            else:
                self._record(ref, data)
        return ref

    def put_stream(self, chunks: Iterable[bytes]) -> BlobRef:
        """Store a stream holding at most ``INLINE_LIMIT`` bytes in memory (the rest streams to the blob store)."""
        head, rest = _head(chunks)
        if rest is None:
            return self.put(head)
        ref = self.files.put(chain((head,), rest))
        self._record(ref, None)
        return ref

    def write_file(self, chunks: Iterable[bytes]) -> BlobRef | None:
        """Put a large stream in the blob store without recording its row; None if it was small (nothing kept).

        Why: an import writes its large blobs before its transaction and
        records them inside it (:meth:`record_file`), so the transaction,
        which other writers wait for, does no blob I/O. Content already there
        is written again, which also mends a damaged file.
        """
        head, rest = _head(chunks)
        if rest is None:
            return None
        return self.files.put(chain((head,), rest))

    def record_file(self, ref: BlobRef) -> None:
        """Record a large blob put by :meth:`write_file` (in the caller's transaction, if any)."""
        self._record(ref, None)

    def content(
        self, item_id: str, sha: str | None, size: int, crc: int, data: bytes | None,
        pack: str | None = None, offset: int | None = None,
    ) -> bytes | Blob | None:
        """An export's view of an item's blob, from the ``blobs`` columns of its row (all None: no blob)."""
        if sha is None:
            return None
        if pack is not None:
            data = self.files.read_packed([PackSlot(pack, offset or 0, size)], [item_id])[0]  # type: ignore[attr-defined]
        elif data is None:
            return self.files.open(BlobRef(sha, size, crc), item_id)
        if len(data) != size:
            raise MissingBlob(
                f"item {item_id}: blob {sha} is corrupt ({len(data)} bytes inline, expected {size})", item_id=item_id
            )
        return data

    def page_contents(self, rows: list[tuple], at: int) -> list[bytes | Blob | None]:
        """The contents of a page's rows: item id first, the blob columns of ``content`` from column ``at``.

        The packed ones are read together: one coalesced ranged read per pack.
        """
        sha, size, pack, offset = at, at + 1, at + 4, at + 5  # columns: sha256, size, crc32, data, pack, pack_offset
        packed = [n for n, r in enumerate(rows) if r[pack] is not None]
        got = self.files.read_packed(  # type: ignore[attr-defined]
            [PackSlot(rows[n][pack], rows[n][offset], rows[n][size]) for n in packed], [rows[n][0] for n in packed]
        ) if packed else []
        out = [None if r[pack] is not None else self.content(r[0], *r[sha : sha + 4]) for r in rows]
        for n, data in zip(packed, got):
            out[n] = data
        return out

    def _record(self, ref: BlobRef, data: bytes | None, slot: PackSlot | None = None) -> None:
        assert self._lock is not None, "blobs are written through the Store"
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO blobs (sha256, size, crc32, data, pack, pack_offset) VALUES (?, ?, ?, ?, ?, ?)",
                (ref.sha256, ref.size, ref.crc32, data, slot and slot.pack, slot and slot.offset),
            )


def _head(chunks: Iterable[bytes]) -> tuple[bytes, Iterator[bytes] | None]:
    """The stream's first bytes up to ``INLINE_LIMIT``: (all of it, None) if it is smaller, else (head, the rest)."""
    it = iter(chunks)
    parts: list[bytes] = []
    size = 0
    for chunk in it:
        parts.append(chunk)
        size += len(chunk)
        if size >= INLINE_LIMIT:
            return b"".join(parts), it
    return b"".join(parts), None


