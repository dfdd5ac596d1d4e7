"""A PostgreSQL store as a stream of records, and loading one: the SQLite back end's copy, run here.

``engine.store.sqlite.dump`` reads and writes records with SQL both back
ends speak; two things differ on PostgreSQL. A table is read through a
server-side cursor (the shared reader's plain cursor would hold a whole
table of annotations in memory here), and a dataset's flags are booleans,
which a record dumped by SQLite carries as 0 and 1.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator

import msgspec

from engine.store.postgres.db import PgConnection, mapped_errors, to_postgres
from engine.store.records import DatasetRecord, StoreRecord
from engine.store.sqlite.dump import _PLAIN, RecordReads, RecordWrites

__all__ = ["PgRecordReads", "PgRecordWrites"]

_CURSOR_NAMES = itertools.count(1)


class PgRecordReads(RecordReads):
    """``records()`` with each table streamed from a server-side cursor inside the reader's snapshot."""

    def _plain(self, kind: type[StoreRecord]) -> Iterator[StoreRecord]:
        table, columns, order = _PLAIN[kind]
        db: PgConnection = self._db  # type: ignore[assignment]
        conn = db.conn
        assert conn is not None, "records are read inside a reader's snapshot"
        with mapped_errors(db.where), conn.cursor(name=f"dsexport_records_{next(_CURSOR_NAMES)}") as cur:
            cur.execute(to_postgres(f"SELECT {columns} FROM {table} ORDER BY {order}"))
            while rows := cur.fetchmany(1000):
                for row in rows:
                    yield kind(*row)


class PgRecordWrites(RecordWrites):
    """``load_records()`` with a dataset's flags made booleans, whichever back end dumped them."""

    def load_records(self, records: Iterable[StoreRecord]) -> int:
        return super().load_records(_typed(r) for r in records)


def _typed(record: StoreRecord) -> StoreRecord:
    if isinstance(record, DatasetRecord):
        return msgspec.structs.replace(
            record, multi_label=bool(record.multi_label), default_splits=bool(record.default_splits)
        )
    return record
