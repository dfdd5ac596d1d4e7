"""A SQLite store as a stream of records (``engine.store.records``), and loading one with its ids kept.

Most kinds map one table's columns to one record's fields in order; items
carry their blob by hash (the row id is this store's own) and their
splits. Rows come in insertion order (``seq`` or ``rowid``) and are
inserted in it, so orders the store keeps by insertion survive the copy.
Loading is ``INSERT OR IGNORE``: a copy stopped midway resumes where it was.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from engine.errors import InvalidInput
from engine.store.api import BlobRef, PackSlot
from engine.store.records import (
    AnnotationRecord,
    ApiKeyRecord,
    BlobRecord,
    DatasetRecord,
    ItemRecord,
    ItemStateRecord,
    LabelRecord,
    RevisionRecord,
    SplitRecord,
    StoreRecord,
    UserRecord,
    VersionRecord,
)
from engine.store.sqlite.db import SqliteReads, SqliteWrites
from formats.base import Blob

__all__ = ["RecordReads", "RecordWrites"]

# kind -> (table, its columns in the record's field order, the order rows are read in)
_PLAIN: dict[type[StoreRecord], tuple[str, str, str]] = {
    UserRecord: ("users", "id, username, email, name, firstname, password_hash, created_at", "rowid"),
    ApiKeyRecord: ("api_keys", "key_hash, user_id, created_at", "rowid"),
    DatasetRecord: (
        "datasets", "id, name, description, user_id, content_type, multi_label, default_splits, created_at, updated_at",
        "rowid",
    ),
    VersionRecord: ("versions", "id, dataset_id, name, description, config, created_at, updated_at", "seq"),
    LabelRecord: ("labels", "id, version_id, name, description, color, idx, shortcut, created_at, updated_at", "seq"),
    SplitRecord: ("splits", "id, version_id, name, description, created_at, updated_at", "seq"),
    AnnotationRecord: (
        "annotations", "id, version_id, item_id, split_id, label_id, coordinates, created_at, updated_at", "rowid"
    ),
    ItemStateRecord: (
        "item_states", "item_id, version_id, id, name, user_id, state, version, created_at, updated_at", "rowid"
    ),
    RevisionRecord: ("revisions", "version_id, revision", "version_id"),
}
_BEFORE_ITEMS = (UserRecord, ApiKeyRecord, DatasetRecord, VersionRecord, LabelRecord, SplitRecord)
_AFTER_ITEMS = (AnnotationRecord, ItemStateRecord, RevisionRecord)
_PAGE = 1000
# A load transaction's size; with packed blobs also a pack's (`dsexport store compact` merges small ones).
_FLUSH_RECORDS = 20_000
_FLUSH_BYTES = 64 << 20


class RecordReads(SqliteReads):
    """``records()`` and ``open_blob()``: the reading side of a copy."""

    def records(self) -> Iterator[StoreRecord]:
        """Every record of the store, from one snapshot, in an order :meth:`RecordWrites.load_records` follows."""
        with self._snapshot():
            for kind in _BEFORE_ITEMS:
                yield from self._plain(kind)
            yield from self._blob_records()
            yield from self._item_records()
            for kind in _AFTER_ITEMS:
                yield from self._plain(kind)

    def open_blob(self, ref: BlobRef) -> Blob:
        """A large blob's content (a blob record whose ``data`` is None)."""
        return self.blobs.files.open(ref, f"blob {ref.sha256}")

    def _plain(self, kind: type[StoreRecord]) -> Iterator[StoreRecord]:
        table, columns, order = _PLAIN[kind]
        for row in self._db.execute(f"SELECT {columns} FROM {table} ORDER BY {order}"):
            yield kind(*row)

    def _blob_records(self) -> Iterator[BlobRecord]:
        after = 0
        while rows := self._all(
            "SELECT id, sha256, size, crc32, data, pack, pack_offset FROM blobs WHERE id > ? ORDER BY id LIMIT ?",
            (after, _PAGE),
        ):
            packed = [r for r in rows if r[5] is not None]
            datas = dict(zip(
                (r[1] for r in packed),
                self.blobs.files.read_packed([PackSlot(r[5], r[6], r[2]) for r in packed], [f"blob {r[1]}" for r in packed])
                if packed else [],
            ))
            for _, sha, size, crc, data, pack, _ in rows:
                yield BlobRecord(sha, size, crc, datas[sha] if pack is not None else data)
            after = rows[-1][0]

    def _item_records(self) -> Iterator[ItemRecord]:
        after = ""
        while rows := self._all(
            "SELECT i.id, i.version_id, i.name, i.description, i.text, i.extension, b.sha256, i.created_at,"
            " i.updated_at, i.version, i.width, i.height FROM items i LEFT JOIN blobs b ON b.id = i.blob_id"
            " WHERE i.id > ?"
            " ORDER BY i.id LIMIT ?",
            (after, _PAGE),
        ):
            splits: dict[str, list[str]] = {}
            for item_id, split_id in self._all(
                "SELECT s.item_id, s.split_id FROM item_splits s JOIN splits p ON p.id = s.split_id"
                " WHERE s.item_id BETWEEN ? AND ? ORDER BY s.item_id, p.seq",
                (rows[0][0], rows[-1][0]),
            ):
                splits.setdefault(item_id, []).append(split_id)
            for row in rows:
                yield ItemRecord(*row[:10], split_ids=splits.get(row[0], []), width=row[10], height=row[11])
            after = rows[-1][0]


class RecordWrites(SqliteWrites):
    """``load_records()``: the writing side of a copy."""

    def load_records(self, records: Iterable[StoreRecord]) -> int:
        """Insert records with their ids kept, skipping those already there; returns how many were read.

        Written in transactions of a few thousand records; the small blobs
        of each are packed (or kept inline) before its transaction. A large
        blob's content must be in this store's blob back end already.
        """
        count, batch, held = 0, [], 0
        for record in records:
            batch.append(record)
            count += 1
            if isinstance(record, BlobRecord) and record.data is not None:
                held += len(record.data)
            if len(batch) >= _FLUSH_RECORDS or held >= _FLUSH_BYTES:
                self._load(batch)
                batch, held = [], 0
        if batch:
            self._load(batch)
        return count

    def _load(self, batch: list[StoreRecord]) -> None:
        small = {
            r.sha256: (r.sha256, r.size, r.crc32, r.data)
            for r in batch if isinstance(r, BlobRecord) and r.data is not None
        }
        staged = self.blobs.stage_small(small)  # packs (or keeps inline) those not there yet
        with self._tx(checked=False) as db:
            if staged:
                self.blobs.insert_many(staged)
            for record in batch:
                if isinstance(record, BlobRecord) and record.data is None:
                    self.blobs.record_file(BlobRef(record.sha256, record.size, record.crc32))
            wanted = {r.blob_sha256 for r in batch if isinstance(r, ItemRecord) and r.blob_sha256 is not None}
            blob_ids = self.blobs.ids_of(wanted) if wanted else {}
            for record in batch:
                if isinstance(record, BlobRecord):
                    continue
                if isinstance(record, ItemRecord):
                    self._load_item(db, record, blob_ids)
                else:
                    table, columns, _ = _PLAIN[type(record)]
                    values = [getattr(record, field) for field in record.__struct_fields__]
                    marks = ",".join("?" * len(values))
                    db.execute(f"INSERT OR IGNORE INTO {table} ({columns}) VALUES ({marks})", values)

    def _load_item(self, db: Any, record: ItemRecord, blob_ids: dict[str, int]) -> None:
        blob_id = None
        if record.blob_sha256 is not None:
            blob_id = blob_ids.get(record.blob_sha256)
            if blob_id is None:
                raise InvalidInput(f"item {record.id}: its blob {record.blob_sha256} was not loaded before it")
        db.execute(
            "INSERT OR IGNORE INTO items (id, version_id, name, description, text, extension, blob_id, created_at,"
            " updated_at, version, width, height) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (record.id, record.version_id, record.name, record.description, record.text, record.extension, blob_id,
             record.created_at, record.updated_at, record.version, record.width, record.height),
        )  # fmt: skip
        db.executemany(
            "INSERT OR IGNORE INTO item_splits (split_id, item_id) VALUES (?, ?)",
            [(split_id, record.id) for split_id in record.split_ids],
        )
