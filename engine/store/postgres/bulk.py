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

__all__ = ["PgBulkWrites", "copy_rows"]


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
        batch.small = self.blobs.stage_small(batch.small)  # packed small blobs are written here, outside the transaction
        with self._tx() as db:
            rows = batch.items_with(self._blob_ids_of(batch))
            try:
                copy_rows(db, "items", ITEM_ROW, rows)
                copy_rows(db, "item_splits", "split_id, item_id", batch.members)
                copy_rows(db, "annotations", f"version_id, {ANN_COLS}", batch.anns)
            except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as exc:
                raise batch.rejected(server_reason(exc)) from exc
            self._bump(version_id)


def copy_rows(db: PgConnection, table: str, columns: str, rows: list[tuple]) -> None:
    """``COPY table (columns) FROM STDIN`` in binary (no text escaping, ``bytea`` as is), inside a transaction."""
    if not rows:
        return
    conn = db.conn
    assert conn is not None, "COPY runs inside a transaction"
    types = _column_types(conn, table, [c.strip() for c in columns.split(",")])  # not during the COPY: it holds the connection
    with conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(types)
        for row in rows:
            copy.write_row(row)


_TYPES: dict[tuple[str, str], str] = {}


def _column_types(conn: psycopg.Connection, table: str, names: list[str]) -> list[str]:
    """The PostgreSQL types of ``table``'s ``names`` columns (a binary COPY must name them), looked up once."""
    if any((table, name) not in _TYPES for name in names):
        for name, kind in conn.execute(
            "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute"
            " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
            (table,),
        ):
            _TYPES[(table, name)] = kind
    return [_TYPES[(table, name)] for name in names]
