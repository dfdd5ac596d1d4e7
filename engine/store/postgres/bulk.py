"""Bulk load of items into PostgreSQL: the shared validation, then ``COPY`` per table.

Rows are validated batch by batch exactly as in SQLite
(``engine.store.sqlite.bulk``: splits, labels, coordinates, blobs); each
validated batch is written in one transaction with ``COPY ... FROM STDIN``,
which loads rows several times faster than ``INSERT``. PostgreSQL keeps
checking every reference (no process-wide lock can stop a concurrent delete
in another server), so a reference removed meanwhile rejects the batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from engine.store.postgres.db import PgConnection, PgWrites, server_reason
from engine.store.sqlite.bulk import ITEM_ROW, BulkWrites, ItemBatch
from engine.store.sqlite.rows import ANN_COLS

__all__ = ["PgBulkWrites"]


class PgBulkWrites(BulkWrites, PgWrites):
    """:meth:`add_items` by ``COPY``: many items with their splits, content and annotations.

    Each batch is one transaction (inside :meth:`transaction`, the caller's):
    a rejected row rolls back its batch, and the earlier batches stay.
    """

    @contextmanager
    def _bulk_load(self) -> Iterator[None]:
        """Nothing to hold: PostgreSQL checks every reference of each batch itself."""
        yield

    def _write_batch(self, version_id: str, batch: ItemBatch) -> None:
        """One validated batch: blobs by one upsert, then items, memberships and annotations by ``COPY``."""
        with self._tx() as db:
            rows = batch.items_with(self._blob_ids_of(batch))
            try:
                _copy(db, f"items ({ITEM_ROW})", rows)
                _copy(db, "item_splits (split_id, item_id)", batch.members)
                _copy(db, f"annotations (version_id, {ANN_COLS})", batch.anns)
            except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as exc:
                raise batch.rejected(server_reason(exc)) from exc
            self._bump(version_id)


def _copy(db: PgConnection, target: str, rows: list[tuple]) -> None:
    """``COPY target FROM STDIN`` with ``rows`` on the transaction's connection."""
    if not rows:
        return
    assert db.conn is not None, "COPY runs inside a transaction"
    with db.conn.cursor().copy(f"COPY {target} FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
