"""Bulk load of items into SQLite: validated batches, small blobs inserted with their rows.

The rows are consumed lazily and written ``batch`` at a time, each batch
one transaction with SQLite's foreign-key checks off (every reference was
validated first): that is what makes a million-item load fast.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from engine.errors import InvalidInput, NotFound
from engine.ids import new_id, now_iso
from engine.model import ContentType
from engine.store.api import INLINE_LIMIT, BlobRef, NewItem
from engine.store.rules import check_coordinates
from engine.store.sqlite.catalog import CatalogReads
from engine.store.sqlite.db import SqliteWrites
from engine.store.sqlite.rows import ANN_COLS

__all__ = ["BATCH_BYTES", "ITEM_ROW", "BulkWrites", "ItemBatch"]

#: Text and small blob bytes a batch of :meth:`Store.add_items` holds at most (before its last row):
#: 10,000 rows of 16 MiB texts would otherwise be 160 GiB in memory at once.
BATCH_BYTES = 64 << 20


def _batches(rows: Iterable[NewItem], size: int, max_bytes: int = BATCH_BYTES) -> Iterator[list[NewItem]]:
    """Rows ``size`` at a time, a batch ending early once its texts and small data reach ``max_bytes``."""
    batch: list[NewItem] = []
    held = 0
    for row in rows:
        batch.append(row)
        data = row.data
        held += len(row.text) + (len(data) if data is not None and len(data) < INLINE_LIMIT else 0)
        if len(batch) >= size or held >= max_bytes:
            yield batch
            batch, held = [], 0
    if batch:
        yield batch


#: The columns of an item row of :class:`ItemBatch`, in order (``blob_id`` holds the blob's hash until written).
ITEM_ROW = "id, version_id, name, description, text, extension, blob_id, created_at, updated_at, width, height"
_BLOB_AT = ITEM_ROW.split(", ").index("blob_id")


@dataclass
class ItemBatch:
    """One batch of :meth:`BulkWrites.add_items`, validated: the rows of each table, ready to insert."""

    first: int
    count: int
    items: list[tuple] = field(default_factory=list)
    members: list[tuple[str, str]] = field(default_factory=list)
    anns: list[tuple] = field(default_factory=list)
    small: dict[str, tuple] = field(default_factory=dict)  # (sha256, size, crc32, data), staged: + pack slot
    stored: set[str] = field(default_factory=set)

    def items_with(self, blob_ids: dict[str, int]) -> list[tuple]:
        """The item rows with each blob hash replaced by its row id."""
        if not blob_ids:
            return self.items
        at = _BLOB_AT
        return [(*r[:at], blob_ids.get(r[at]), *r[at + 1 :]) for r in self.items]

    def rejected(self, reason: object) -> InvalidInput:
        """The error of a batch the database refused (a duplicate id, a reference deleted meanwhile)."""
        return InvalidInput(f"rows {self.first}..{self.first + self.count - 1} were rejected: {reason}")


class BulkWrites(CatalogReads, SqliteWrites):
    """:meth:`add_items`: many items with their splits, content and annotations."""

    def add_items(
        self, version_id: str, rows: Iterable[NewItem], batch: int = 10_000, batch_bytes: int = BATCH_BYTES
    ) -> int:
        """Insert many items (with splits, content and annotations); returns how many.

        Rows are validated and written ``batch`` at a time (fewer once their
        texts and small data reach ``batch_bytes``), each batch in one
        transaction: if a row is rejected, its batch is rolled back and the
        earlier batches stay. ``rows`` is consumed lazily; texts and small
        ``data`` are held only for the batch, large ``data`` is stored as a
        file at once.
        """
        with self._bulk_load():
            _, content_type = self._version_row(version_id)
            return self._add_items(version_id, content_type, rows, batch, batch_bytes)

    @contextmanager
    def _bulk_load(self) -> Iterator[None]:
        """What a bulk load holds from its validation to its last batch.

        SQLite: the write lock (the inserts skip its foreign-key checks, so no
        other thread may delete a split or label meanwhile) and a big cache.
        """
        with self._lock, self._bulk_cache():
            yield

    @contextmanager
    def _bulk_cache(self) -> Iterator[None]:
        """The 32 MiB page cache for a bulk load on any thread's connection, given back afterwards.

        Why: connections of further threads keep a small cache (a server has
        many), but a bulk load rewrites index pages all over the file.
        """
        db = self._db
        before = db.execute("PRAGMA cache_size").fetchone()[0]
        db.execute("PRAGMA cache_size=-32768")
        try:
            yield
        finally:
            db.execute(f"PRAGMA cache_size={int(before)}")

    def _add_items(
        self, version_id: str, content_type: str, rows: Iterable[NewItem], batch: int, batch_bytes: int
    ) -> int:
        done = 0
        for chunk in self._validated_batches(version_id, content_type, rows, batch, batch_bytes):
            self._write_batch(version_id, chunk)
            done += chunk.count
        return done

    def _validated_batches(
        self, version_id: str, content_type: str, rows: Iterable[NewItem], batch: int, batch_bytes: int
    ) -> Iterator[ItemBatch]:
        """The rows as batches of validated table rows; a rejected row raises before its batch is written.

        Shared by every SQL back end: only :meth:`_write_batch` differs.
        """
        split_ids = {s.id for s in self.splits(version_id)}
        label_ids = {label.id for label in self.labels(version_id)}
        check_all = content_type == ContentType.NER.value  # spans must be checked against the text
        done = 0
        for chunk in _batches(rows, batch, batch_bytes):
            now = now_iso()
            out = ItemBatch(first=done, count=len(chunk))
            for n, row in enumerate(chunk, start=done):
                item_id = row.id or new_id()
                sha = self._row_blob(row, n, out.small, out.stored)
                for split_id in row.split_ids:
                    if split_id not in split_ids:
                        self._split_in(version_id, split_id)  # raises NotFound listing the splits
                    out.members.append((split_id, item_id))
                for label_id, split_id, coordinates in row.annotations:
                    if label_id not in label_ids:
                        self._label_in(version_id, label_id)
                    if split_id not in row.split_ids:
                        raise InvalidInput(f"row {n}: annotation in split {split_id!r}, which the item is not in")
                    if coordinates or check_all:
                        coordinates = check_coordinates(content_type, coordinates or "", row.text)
                    out.anns.append((version_id, new_id(), item_id, split_id, label_id, coordinates or "", now, now))
                extension = row.extension.lstrip(".") if row.extension else ""
                out.items.append(
                    (item_id, version_id, row.name, row.description, row.text, extension, sha, now, now,
                     row.width, row.height)
                )
            yield out
            done += len(chunk)

    def _write_batch(self, version_id: str, batch: ItemBatch) -> None:
        """Insert one validated batch in one transaction (or the caller's)."""
        batch.small = self.blobs.stage_small(batch.small)  # packed small blobs are written here, outside the transaction
        marks = ", ".join("?" * len(ITEM_ROW.split(", ")))
        try:
            with self._tx(checked=False) as db:  # every reference was validated above
                blob_ids = self._blob_ids_of(batch)
                db.executemany(f"INSERT INTO items ({ITEM_ROW}, version) VALUES ({marks}, 1)", batch.items_with(blob_ids))
                db.executemany("INSERT INTO item_splits (split_id, item_id) VALUES (?, ?)", batch.members)
                db.executemany(
                    f"INSERT INTO annotations (version_id, {ANN_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", batch.anns
                )
                self._bump(version_id)
        except sqlite3.IntegrityError as exc:
            raise batch.rejected(exc) from exc

    def _blob_ids_of(self, batch: ItemBatch) -> dict[str, int]:
        """Row ids of the batch's blobs: the stored ones looked up, the small ones inserted now."""
        blob_ids = self.blobs.ids_of(batch.stored)
        if missing := batch.stored - blob_ids.keys():
            raise NotFound(f"unknown blob {min(missing)!r}; store it with put_blob first")
        if batch.small:
            blob_ids.update(self.blobs.insert_many(batch.small))
        return blob_ids

    def _row_blob(self, row: NewItem, n: int, small: dict[str, tuple], stored: set[str]) -> str | None:
        """The blob hash of a row: small ``data`` is queued for the batch, large data stored now."""
        data = row.data
        if data is None:
            if row.blob is not None:
                stored.add(row.blob.sha256)
                return row.blob.sha256
            return None
        if row.blob is not None:
            raise InvalidInput(f"row {n}: give either data or blob, not both")
        if len(data) >= INLINE_LIMIT:
            sha = self.blobs.put(data).sha256
            stored.add(sha)
            return sha
        info = BlobRef.of(data)
        small[info.sha256] = (info.sha256, info.size, info.crc32, data)
        return info.sha256

