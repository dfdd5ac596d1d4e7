"""The ``blobs`` table in PostgreSQL: small blobs inline (``bytea``), large ones in the blob store.

The same split as SQLite's (``engine.store.sqlite.blob_index``, whose reads
and streaming puts this reuses): blobs under ``INLINE_LIMIT`` are read with
their item's row, larger ones live in the store's ``BlobStore`` and are
recorded here with ``data`` NULL, after their content is written. Only the
writes differ: PostgreSQL's upsert instead of SQLite's ``INSERT OR IGNORE``
and row-id arithmetic, so concurrent writers in several processes record a
blob once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from engine.store.api import BlobRef, BlobStore, PackSlot
from engine.store.postgres.db import PgConnection
from engine.store.sqlite.blob_index import SqliteBlobs

__all__ = ["PgBlobs"]

#: A blob row as ``stage_small`` stages it: inline ``data``, or a ``pack`` slot.
_COLUMNS = "sha256, size, crc32, data, pack, pack_offset"


class PgBlobs(SqliteBlobs):
    """A PostgreSQL store's blobs: the ``blobs`` table plus the blob back end holding the large ones."""

    def __init__(self, files: BlobStore, connection: Callable[[], PgConnection]) -> None:
        super().__init__(files, connection)  # type: ignore[arg-type]

    def ids_of(self, shas: Iterable[str]) -> dict[str, int]:
        """Row ids of the recorded blobs among ``shas`` (unknown ones are left out)."""
        wanted = list(shas)
        if not wanted:
            return {}
        return dict(self._db.execute("SELECT sha256, id FROM blobs WHERE sha256 = ANY(?)", (wanted,)).fetchall())

    def insert_many(self, small: dict[str, tuple]) -> dict[str, int]:
        """Record small blobs staged by ``stage_small`` (those already there are kept); every one's row id.

        Inside a transaction: the rows are copied (binary ``COPY``) into a
        staging table that empties itself at commit, then moved over with
        one upsert that hands back the new rows' ids.
        """
        from engine.store.postgres.bulk import copy_rows

        db = self._db
        db.execute(
            "CREATE TEMP TABLE IF NOT EXISTS blobs_incoming (sha256 text COLLATE \"C\", size bigint, crc32 bigint,"
            " data bytea, pack text COLLATE \"C\", pack_offset bigint) ON COMMIT DELETE ROWS"
        )
        copy_rows(db, "blobs_incoming", _COLUMNS, list(small.values()))
        ids = dict(
            db.execute(
                f"INSERT INTO blobs ({_COLUMNS}) SELECT {_COLUMNS} FROM blobs_incoming"
                " ON CONFLICT (sha256) DO NOTHING RETURNING sha256, id"
            ).fetchall()
        )
        if len(ids) < len(small):  # some were stored already: look theirs up
            ids.update(self.ids_of([sha for sha in small if sha not in ids]))
        return ids

    def _record(self, ref: BlobRef, data: bytes | None, slot: PackSlot | None = None) -> None:
        self._db.execute(
            f"INSERT INTO blobs ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (sha256) DO NOTHING",
            (ref.sha256, ref.size, ref.crc32, data, slot and slot.pack, slot and slot.offset),
        )
