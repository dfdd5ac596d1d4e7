"""The embedded store: SQLite (WAL) for metadata plus a content-addressed blob folder.

A store is a folder holding ``store.sqlite3`` and ``blobs/`` (see
``engine.blobs`` for where blob bytes live). :class:`Store` is the one
writer; :meth:`Store.reader` opens a :class:`StoreReader` on a second
connection, so an export can page through a consistent snapshot while
another thread keeps writing.

The export read path is :meth:`StoreReader.iter_pages`: keyset pagination
over ``item_splits`` (split, then item id), so 5 M items stream in pages of
a thousand with flat memory. Item ids are time-ordered (``engine.ids``), so
"by item id" is also "by creation" for items the store made.

Everything that is written is validated first: an unknown id is a
``NotFound`` that lists the valid choices, a bad value an ``InvalidInput``
that names it. Each creation call is one transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Any

import msgspec

from engine.blobs import INLINE_LIMIT, BlobFile, BlobInfo, BlobStore, SizedBlob
from engine.connections import ThreadConnections
from engine.errors import InvalidInput, NotFound, choices_hint
from engine.ids import new_id, now_iso
from engine.model import (
    Annotation,
    ContentType,
    Dataset,
    DatasetItem,
    DatasetSplit,
    DatasetVersion,
    Label,
)
from formats.base import ExportAnnotation, ExportItem
from formats.coordinates import format_span, parse_box, parse_span

__all__ = [
    "DB_NAME", "SCHEMA_VERSION", "BlobFile", "BlobInfo", "NewItem", "PageContent", "SizedBlob", "Store", "StoreReader", "VersionConflict",
    "MAX_DESCRIPTION_LENGTH", "MAX_LABEL_INDEX", "MAX_NAME_LENGTH",
]

DB_NAME = "store.sqlite3"
SCHEMA_VERSION = 1


class PageContent(Enum):
    """What :meth:`StoreReader.iter_pages` puts in an item's ``content``."""

    #: Nothing: the format needs only the metadata (``text``).
    NONE = "none"
    #: The blob's recorded size and CRC-32 (a :class:`SizedBlob`): enough to size an archive.
    SIZES = "sizes"
    #: The bytes (inline blobs) or a re-readable file blob.
    BYTES = "bytes"

#: Label colours, assigned by a label's creation position in its version (matplotlib's tab20,
#: strong shades first, so the first ten labels are easy to tell apart).
PALETTE = tuple(
    "#1f77b4 #ff7f0e #2ca02c #d62728 #9467bd #8c564b #e377c2 #7f7f7f #bcbd22 #17becf"
    " #aec7e8 #ffbb78 #98df8a #ff9896 #c5b0d5 #c49c94 #f7b6d2 #c7c7c7 #dbdb8d #9edae5".split()
)
_COLOR = re.compile(r"#[0-9a-fA-F]{6}")

# Export order lives in the keys: labels (idx, seq), splits seq, items by id within
# item_splits' primary key, annotations by rowid (creation) under (split_id, item_id).
# Items point at blobs by the blob row's integer id (see engine.blobs for why);
# sha256 stays the blob's unique content address.
_SCHEMA = """
CREATE TABLE datasets (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT NOT NULL, user_id TEXT,
    content_type TEXT NOT NULL, multi_label INTEGER NOT NULL, default_splits INTEGER NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE versions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
    dataset_id TEXT NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    name TEXT NOT NULL, description TEXT NOT NULL, config TEXT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE INDEX versions_dataset ON versions(dataset_id);
CREATE TABLE labels (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
    version_id TEXT NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
    name TEXT NOT NULL, description TEXT NOT NULL, color TEXT NOT NULL, idx INTEGER NOT NULL,
    shortcut TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    UNIQUE (version_id, name));
CREATE TABLE splits (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
    version_id TEXT NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
    name TEXT NOT NULL, description TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    UNIQUE (version_id, name));
CREATE TABLE blobs (
    id INTEGER PRIMARY KEY, sha256 TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL, crc32 INTEGER NOT NULL, data BLOB);
CREATE TABLE items (
    id TEXT PRIMARY KEY, version_id TEXT NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
    name TEXT, description TEXT NOT NULL, text TEXT, extension TEXT,
    blob_id INTEGER REFERENCES blobs(id),
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, version INTEGER NOT NULL);
CREATE INDEX items_version ON items(version_id, id);
CREATE TABLE item_splits (
    split_id TEXT NOT NULL REFERENCES splits(id) ON DELETE CASCADE,
    item_id TEXT NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    PRIMARY KEY (split_id, item_id)) WITHOUT ROWID;
CREATE INDEX item_splits_item ON item_splits(item_id);
CREATE TABLE annotations (
    id TEXT PRIMARY KEY, version_id TEXT NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
    item_id TEXT NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    split_id TEXT NOT NULL REFERENCES splits(id) ON DELETE CASCADE,
    label_id TEXT NOT NULL REFERENCES labels(id) ON DELETE CASCADE,
    coordinates TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE INDEX annotations_split_item ON annotations(split_id, item_id);
CREATE INDEX annotations_item ON annotations(item_id);
"""

# Tables added after schema version 1 (the HTTP service): created if absent on every
# open, so older stores gain them without a version bump.
_EXTRA_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE, email TEXT NOT NULL, name TEXT NOT NULL,
    firstname TEXT NOT NULL, password_hash TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS api_keys (
    key_hash TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS revisions (
    version_id TEXT PRIMARY KEY, revision INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS item_states (
    item_id TEXT NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    version_id TEXT NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
    id TEXT NOT NULL, name TEXT, user_id TEXT NOT NULL, state TEXT NOT NULL, version INTEGER NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (item_id, version_id));
CREATE INDEX IF NOT EXISTS datasets_user ON datasets(user_id);
CREATE TABLE IF NOT EXISTS archive_sizes (
    etag TEXT PRIMARY KEY, version_id TEXT NOT NULL, revision INTEGER NOT NULL, size INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS archive_sizes_version ON archive_sizes(version_id);
"""

_DATASET_COLS = "id, name, description, user_id, content_type, multi_label, default_splits, created_at, updated_at"
_VERSION_COLS = "id, dataset_id, name, description, config, created_at, updated_at"
_LABEL_COLS = "id, version_id, name, description, color, idx, shortcut, created_at, updated_at"
_SPLIT_COLS = "id, version_id, name, description, created_at, updated_at"
_ITEM_COLS = "id, name, description, text, extension, version, created_at, updated_at"
_ANN_COLS = "id, item_id, split_id, label_id, coordinates, created_at, updated_at"

# The hot queries of the export read path; ``x.id > ?`` is the keyset cursor.
_ROW = "coalesce(i.name, ''), coalesce(i.extension, ''), coalesce(i.text, '')"
_PAGE = (
    f"SELECT s.item_id, {_ROW} {{extra}} FROM item_splits s JOIN items i ON i.id = s.item_id {{join}}"
    " WHERE s.split_id = ? AND s.item_id > ? ORDER BY s.item_id LIMIT ?"
)
_UNSPLIT = (
    f"SELECT i.id, {_ROW} {{extra}} FROM items i {{join}} WHERE i.version_id = ? AND i.id > ?"
    " AND NOT EXISTS (SELECT 1 FROM item_splits s WHERE s.item_id = i.id) ORDER BY i.id LIMIT ?"
)
_UNSPLIT_COUNT = (
    "SELECT count(*) FROM items i WHERE i.version_id = ?"
    " AND NOT EXISTS (SELECT 1 FROM item_splits s WHERE s.item_id = i.id)"
)
# The id of the n-th occurrence (0-based) of a split, or of the unsplit items:
# an OFFSET walk of an index inside SQLite, no rows brought into Python.
_SPLIT_SEEK = "SELECT item_id FROM item_splits WHERE split_id = ? ORDER BY item_id LIMIT 1 OFFSET ?"
_UNSPLIT_SEEK = (
    "SELECT i.id FROM items i WHERE i.version_id = ?"
    " AND NOT EXISTS (SELECT 1 FROM item_splits s WHERE s.item_id = i.id) ORDER BY i.id LIMIT 1 OFFSET ?"
)
_CONTENT = {"extra": ", b.sha256, b.size, b.crc32, b.data", "join": "LEFT JOIN blobs b ON b.id = i.blob_id"}
_NO_CONTENT = {"extra": "", "join": ""}
_SIZES = {"extra": ", b.sha256, b.size, b.crc32", "join": "LEFT JOIN blobs b ON b.id = i.blob_id"}


class NewItem(msgspec.Struct, kw_only=True):
    """One row for :meth:`Store.add_items`.

    Content is either an already stored ``blob`` or raw ``data`` to ingest.
    ``annotations`` are ``(label_id, split_id, coordinates)`` triples; each
    split must be one of ``split_ids``.
    """

    id: str | None = None
    name: str | None = None
    extension: str = ""
    text: str = ""
    description: str = ""
    split_ids: list[str] = msgspec.field(default_factory=list)
    blob: BlobInfo | None = None
    data: bytes | None = None
    annotations: list[tuple[str, str, str]] = msgspec.field(default_factory=list)


def _label(r: tuple) -> Label:
    return Label(
        id=r[0],
        version_id=r[1],
        name=r[2],
        description=r[3],
        color=r[4],
        index=r[5],
        shortcut=r[6],
        created_at=r[7],
        updated_at=r[8],
    )


def _split(r: tuple) -> DatasetSplit:
    return DatasetSplit(id=r[0], version_id=r[1], name=r[2], description=r[3], created_at=r[4], updated_at=r[5])


def _annotation(r: tuple) -> Annotation:
    return Annotation(
        id=r[0], item_id=r[1], split_id=r[2], label_id=r[3], coordinates=r[4], created_at=r[5], updated_at=r[6]
    )


#: Page cache of the connections a store opens for further threads (the first one, which bulk
#: loads from the CLI use, keeps 32 MiB): a server has dozens of worker threads.
_THREAD_CACHE_KIB = 8192


def _connect(path: Path, *, read_only: bool, cache_kib: int | None = None) -> sqlite3.Connection:
    """A connection in autocommit mode; transactions are explicit (``BEGIN``).

    A new database gets 16 KiB pages (set before WAL fixes the page size):
    fewer, larger WAL frames made bulk loads of 1 KiB blobs ~20 % faster.
    """
    try:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        if not read_only:
            db.execute("PRAGMA page_size=16384")  # a no-op once the database has pages
            db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        # Writers: 32 MiB keeps hot index pages of bulk loads. Readers scan
        # forward (an export reads each page once), so 4 MiB is plenty and an
        # export's memory does not grow with the store it reads.
        db.execute(f"PRAGMA cache_size=-{cache_kib or (4096 if read_only else 32768)}")
        # Checkpoint per ~160 MB of WAL, not the default ~16 MB: each bulk batch
        # rewrites pages all over the (random-order) sha256 index, and fewer
        # checkpoints copy each such page fewer times (-15 % on a 1 M load).
        db.execute("PRAGMA wal_autocheckpoint=10000")
        db.execute("PRAGMA journal_size_limit=67108864")  # then shrink the WAL file back to 64 MiB
        if read_only:
            db.execute("PRAGMA query_only=ON")
    except sqlite3.DatabaseError as exc:
        raise InvalidInput(f"{path} is not a usable dsexport store: {exc}") from exc
    return db


class StoreReader:
    """Read access to a store: lookups, counts and the export's page iterator.

    Safe to hand between threads as long as one thread uses it at a time.
    """

    def __init__(
        self, db: sqlite3.Connection, root: Path, *, snapshots: bool, lock: threading.RLock | None = None
    ) -> None:
        self._reader_db = db
        self.root = root
        self.blobs = BlobStore(root / "blobs", lambda: self._db, lock)
        self._snapshots = snapshots  # hold one read transaction per iter_pages
        self._snapshot_depth = 0

    @property
    def _db(self) -> sqlite3.Connection:
        return self._reader_db

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> StoreReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- small query helpers -------------------------------------------------

    def _one(self, sql: str, args: tuple = ()) -> Any:
        return self._db.execute(sql, args).fetchone()

    def _all(self, sql: str, args: tuple = ()) -> list[Any]:
        return self._db.execute(sql, args).fetchall()

    def _version_row(self, version_id: str) -> tuple[str, str]:
        """(dataset_id, content_type) of a version, or NotFound listing the versions."""
        row = self._one(
            "SELECT v.dataset_id, d.content_type FROM versions v JOIN datasets d ON d.id = v.dataset_id WHERE v.id = ?",
            (version_id,),
        )
        if row is None:
            known = [r[0] for r in self._all("SELECT id FROM versions ORDER BY seq")]
            raise NotFound(f"unknown version {version_id!r}; known versions: {choices_hint(known)}")
        return row

    def _split_in(self, version_id: str, split_id: str) -> DatasetSplit:
        """A split of the version by id, or NotFound listing the version's splits."""
        splits = self.splits(version_id)
        for split in splits:
            if split.id == split_id:
                return split
        names = [f"{s.name} ({s.id})" for s in splits]
        raise NotFound(f"unknown split {split_id!r} in version {version_id}; valid splits: {choices_hint(names)}")

    # -- datasets and versions -----------------------------------------------

    def list_datasets(self) -> list[Dataset]:
        """Every dataset with its versions (labels and splits included), oldest first."""
        rows = self._all(f"SELECT {_DATASET_COLS} FROM datasets ORDER BY created_at, id")
        return [self._dataset(r) for r in rows]

    def get_dataset(self, dataset_id: str) -> Dataset:
        row = self._one(f"SELECT {_DATASET_COLS} FROM datasets WHERE id = ?", (dataset_id,))
        if row is None:
            known = [r[0] for r in self._all("SELECT id FROM datasets ORDER BY created_at, id")]
            raise NotFound(f"unknown dataset {dataset_id!r}; known datasets: {choices_hint(known)}")
        return self._dataset(row)

    def _dataset(self, r: tuple) -> Dataset:
        rows = self._all(f"SELECT {_VERSION_COLS} FROM versions WHERE dataset_id = ? ORDER BY seq", (r[0],))
        return Dataset(
            id=r[0],
            name=r[1],
            description=r[2],
            user_id=r[3],
            content_type=r[4],
            multi_label=bool(r[5]),
            default_splits=bool(r[6]),
            created_at=r[7],
            updated_at=r[8],
            versions=[self._version(v) for v in rows],
        )

    def _version(self, r: tuple) -> DatasetVersion:
        return DatasetVersion(
            id=r[0],
            dataset_id=r[1],
            name=r[2],
            description=r[3],
            config=r[4],
            created_at=r[5],
            updated_at=r[6],
            labels=self.labels(r[0]),
            splits=self.splits(r[0]),
        )

    def get_version(self, dataset_id: str, version_id: str) -> DatasetVersion:
        """A version of a dataset; NotFound lists the dataset's versions (or the datasets)."""
        dataset = self.get_dataset(dataset_id)
        for version in dataset.versions:
            if version.id == version_id:
                return version
        known = [f"{v.name} ({v.id})" for v in dataset.versions]
        raise NotFound(f"dataset {dataset.name!r} has no version {version_id!r}; its versions: {choices_hint(known)}")

    def labels(self, version_id: str) -> list[Label]:
        """The version's labels in export order: ``index``, then creation."""
        rows = self._all(f"SELECT {_LABEL_COLS} FROM labels WHERE version_id = ? ORDER BY idx, seq", (version_id,))
        return [_label(r) for r in rows]

    def splits(self, version_id: str) -> list[DatasetSplit]:
        """The version's splits in creation order."""
        rows = self._all(f"SELECT {_SPLIT_COLS} FROM splits WHERE version_id = ? ORDER BY seq", (version_id,))
        return [_split(r) for r in rows]

    def resolve_split(self, version_id: str, name_or_id: str) -> DatasetSplit:
        """A split by id or name (exact, else case-insensitive if unambiguous)."""
        self._version_row(version_id)
        splits = self.splits(version_id)
        for split in splits:
            if name_or_id in (split.id, split.name):
                return split
        folded = [s for s in splits if s.name.casefold() == name_or_id.casefold()]
        if len(folded) == 1:
            return folded[0]
        names = [s.name for s in splits]
        raise NotFound(f"unknown split {name_or_id!r}; valid splits: {choices_hint(names)}")

    # -- items ---------------------------------------------------------------

    def count_items(self, version_id: str, split_id: str | None = None) -> int:
        """Distinct items of the version, or of one of its splits."""
        self._version_row(version_id)
        if split_id is None:
            return self._one("SELECT count(*) FROM items WHERE version_id = ?", (version_id,))[0]
        self._split_in(version_id, split_id)
        return self._one("SELECT count(*) FROM item_splits WHERE split_id = ?", (split_id,))[0]

    def count_items_up_to(self, version_id: str, split_id: str | None, limit: int) -> int:
        """Items of the version (or of the split), counted up to ``limit``: a bound, cheap at any size."""
        if split_id is None:
            sql, key = "SELECT count(*) FROM (SELECT 1 FROM items WHERE version_id = ? LIMIT ?)", version_id
        else:
            sql, key = "SELECT count(*) FROM (SELECT 1 FROM item_splits WHERE split_id = ? LIMIT ?)", split_id
        return self._one(sql, (key, limit))[0]

    def revision(self, version_id: str) -> int:
        """How many changes the version has seen; any change to its content raises it."""
        row = self._one("SELECT revision FROM revisions WHERE version_id = ?", (version_id,))
        return row[0] if row else 0

    def has_boxes(self, version_id: str) -> bool:
        """Whether any annotation of the version is a box (an object detection dataset)."""
        self._version_row(version_id)
        row = self._one(
            "SELECT 1 FROM annotations WHERE version_id = ? AND coordinates != '' LIMIT 1", (version_id,)
        )
        return row is not None

    def count_occurrences(
        self, version_id: str, split_ids: list[str] | None = None, *, include_unsplit: bool | None = None
    ) -> int:
        """How many ExportItems :meth:`iter_pages` yields for the same arguments."""
        splits = self._export_splits(version_id, split_ids)
        total = sum(self._one("SELECT count(*) FROM item_splits WHERE split_id = ?", (s.id,))[0] for s in splits)
        if _with_unsplit(split_ids, include_unsplit):
            total += self._one(
                "SELECT count(*) FROM items i WHERE i.version_id = ?"
                " AND NOT EXISTS (SELECT 1 FROM item_splits s WHERE s.item_id = i.id)",
                (version_id,),
            )[0]
        return total

    def get_item(self, item_id: str) -> DatasetItem:
        """An item with its splits (creation order) and annotations (creation order)."""
        found = self._items_by_id([item_id])
        if not found:
            raise NotFound(f"unknown item {item_id!r}")
        return found[0]

    def _items_by_id(self, item_ids: list[str]) -> list[DatasetItem]:
        """Items in the order of ``item_ids`` (unknown ids dropped), in three queries whatever their number."""
        if not item_ids:
            return []
        marks = ",".join("?" * len(item_ids))
        rows = {r[0]: r for r in self._all(f"SELECT {_ITEM_COLS} FROM items WHERE id IN ({marks})", tuple(item_ids))}
        splits: dict[str, list[DatasetSplit]] = {}
        for r in self._all(
            "SELECT s.item_id, p.id, p.version_id, p.name, p.description, p.created_at, p.updated_at"
            f" FROM item_splits s JOIN splits p ON p.id = s.split_id WHERE s.item_id IN ({marks}) ORDER BY p.seq",
            tuple(item_ids),
        ):
            splits.setdefault(r[0], []).append(_split(r[1:]))
        anns: dict[str, list[Annotation]] = {}
        for a in self._all(
            f"SELECT {_ANN_COLS} FROM annotations WHERE item_id IN ({marks}) ORDER BY rowid", tuple(item_ids)
        ):
            anns.setdefault(a[1], []).append(_annotation(a))
        return [
            DatasetItem(
                id=r[0],
                name=r[1],
                description=r[2],
                text=r[3],
                extension=r[4],
                version=r[5],
                created_at=r[6],
                updated_at=r[7],
                splits=splits.get(r[0], []),
                annotations=anns.get(r[0], []),
            )
            for item_id in item_ids
            if (r := rows.get(item_id)) is not None
        ]

    # -- the export read path ------------------------------------------------

    def _export_splits(self, version_id: str, split_ids: list[str] | None) -> list[DatasetSplit]:
        self._version_row(version_id)
        if split_ids is None:
            return self.splits(version_id)
        return [self._split_in(version_id, s) for s in split_ids]

    def iter_pages(
        self,
        version_id: str,
        split_ids: list[str] | None = None,
        *,
        with_content: bool = False,
        include_unsplit: bool | None = None,
        page_size: int = 1000,
        sizes_only: bool = False,
        start: int = 0,
        stop: int | None = None,
        content: PageContent | None = None,
    ) -> Iterator[list[ExportItem]]:
        """Item occurrences in export order, ``page_size`` at a time.

        ``start``/``stop`` limit the iteration to occurrences ``start`` to
        ``stop - 1`` of that order (a shard of a scale-out export). The
        prefix is skipped inside SQLite: whole splits by their counts, then
        one ``OFFSET`` walk of the split's index to find the first item id,
        from which keyset paging goes on as usual.

        Order: each split of ``split_ids`` in turn (None: all the version's
        splits, in creation order), its items by id, each with that split's
        annotations; then, if ``include_unsplit``, items in no split
        (``split=None``). ``include_unsplit=None`` means "when exporting the
        whole version", i.e. when ``split_ids`` is None; a split export
        leaves them out. Unknown ids raise NotFound here, before the first
        page. On a :class:`StoreReader` the whole iteration reads one
        snapshot (a read transaction, ended when the iterator is exhausted
        or closed).

        ``content`` (a :class:`PageContent`) says what items carry, in place of
        ``with_content``/``sizes_only``.
        """
        if content is not None:
            with_content, sizes_only = content is not PageContent.NONE, content is PageContent.SIZES
        if page_size < 1:
            raise InvalidInput(f"page_size must be at least 1, got {page_size}")
        if start < 0 or (stop is not None and stop < start):
            raise InvalidInput(f"invalid occurrence range {start}..{stop}")
        splits = self._export_splits(version_id, split_ids)
        unsplit = _with_unsplit(split_ids, include_unsplit)
        mode = "sizes" if sizes_only and with_content else with_content
        return self._pages(version_id, splits, mode, unsplit, page_size, start, stop)

    def _pages(
        self,
        version_id: str,
        splits: list[DatasetSplit],
        with_content: bool | str,
        include_unsplit: bool,
        size: int,
        start: int = 0,
        stop: int | None = None,
    ) -> Iterator[list[ExportItem]]:
        with self._snapshot():
            cols = _SIZES if with_content == "sizes" else _CONTENT if with_content else _NO_CONTENT
            page = _PAGE.format(**cols)
            unsplit = _UNSPLIT.format(**cols)
            annotator = _Annotator({label.id: label for label in self.labels(version_id)})
            ranges = self._ranges(version_id, splits, include_unsplit, start, stop)
            for split in splits:
                if (cut := ranges.get(split.id)) is None:
                    continue
                for rows in self._keyset(page, split.id, size, *cut):
                    found = annotator.group(
                        self._all(
                            "SELECT item_id, label_id, coordinates FROM annotations"
                            " WHERE split_id = ? AND item_id BETWEEN ? AND ? ORDER BY item_id, rowid",
                            (split.id, rows[0][0], rows[-1][0]),
                        )
                    )
                    yield self._export_items(rows, split, found, with_content)
            if include_unsplit and (cut := ranges.get(None)) is not None:
                for rows in self._keyset(unsplit, version_id, size, *cut):
                    ids = [r[0] for r in rows]
                    found = annotator.group(
                        self._all(
                            f"SELECT item_id, label_id, coordinates FROM annotations"
                            f" WHERE item_id IN ({','.join('?' * len(ids))}) ORDER BY item_id, rowid",
                            tuple(ids),
                        )
                    )
                    yield self._export_items(rows, None, found, with_content)

    def _ranges(
        self, version_id: str, splits: list[DatasetSplit], include_unsplit: bool, start: int, stop: int | None
    ) -> dict[str | None, tuple[str, int | None]]:
        """For each split (None: the unsplit items) that overlaps ``start..stop``:
        the item id to resume after and how many rows to read (None: all)."""
        groups: list[tuple[str | None, str, str]] = [
            (s.id, "SELECT count(*) FROM item_splits WHERE split_id = ?", s.id or "") for s in splits
        ]
        if include_unsplit:
            groups.append((None, _UNSPLIT_COUNT, version_id))
        if start == 0 and stop is None:
            return {key: ("", None) for key, _, _ in groups}
        out: dict[str | None, tuple[str, int | None]] = {}
        before = 0  # occurrences in the groups already passed
        for key, count_sql, arg in groups:
            if stop is not None and before >= stop:
                break
            count = self._one(count_sql, (arg,))[0]
            skip = max(start - before, 0)
            if skip < count:
                take = None if stop is None or stop - before >= count else stop - before - skip
                after = ""
                if skip:
                    seek = _SPLIT_SEEK if key is not None else _UNSPLIT_SEEK
                    after = self._one(seek, (arg, skip - 1))[0]
                out[key] = (after, take)
            before += count
        return out

    def _keyset(
        self, sql: str, key: str, size: int, after: str = "", limit: int | None = None
    ) -> Iterator[list[tuple]]:
        """Pages of ``sql`` rows (first column the cursor), each query resuming after the last id.

        At most ``limit`` rows in all when given.
        """
        left = limit
        while True:
            want = size if left is None else min(size, left)
            if want <= 0 or not (rows := self._all(sql, (key, after, want))):
                return
            yield rows
            if len(rows) < want:
                return
            if left is not None:
                left -= len(rows)
            after = rows[-1][0]

    def _export_items(
        self,
        rows: list[tuple],
        split: DatasetSplit | None,
        found: dict[str, list[ExportAnnotation]],
        with_content: bool | str,
    ) -> list[ExportItem]:
        """One page of ExportItems (the hot loop: one comprehension, no call per item it can avoid)."""
        get = found.get
        if not with_content:
            return [ExportItem(r[0], r[1], r[2], r[3], split, get(r[0]) or []) for r in rows]
        if with_content == "sizes":
            return [
                ExportItem(r[0], r[1], r[2], r[3], split, get(r[0]) or [], SizedBlob(r[5], r[6]) if r[4] else None)
                for r in rows
            ]
        content = self.blobs.content
        return [ExportItem(r[0], r[1], r[2], r[3], split, get(r[0]) or [], content(r[0], *r[4:])) for r in rows]

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Hold one read transaction across several reads (and the ``iter_pages`` inside it).

        A download derives its ETag, its size and its bytes from the store:
        all three must describe the same state, whatever is written meanwhile.
        """
        with self._snapshot():
            yield

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        """One read transaction around an export, so every page sees the same store."""
        if not self._snapshots:
            yield
            return
        if self._snapshot_depth == 0:
            self._db.execute("BEGIN")
        self._snapshot_depth += 1
        try:
            yield
        finally:
            self._snapshot_depth -= 1
            if self._snapshot_depth == 0:
                self._db.execute("COMMIT")


class _Annotator:
    """Resolves annotation rows to ExportAnnotations with labels loaded once per export."""

    def __init__(self, labels: dict[str, Label]) -> None:
        self._labels = labels
        self._plain: dict[str, ExportAnnotation] = {}  # classification ones are shared

    def group(self, rows: list[tuple[str, str, str]]) -> dict[str, list[ExportAnnotation]]:
        out: dict[str, list[ExportAnnotation]] = {}
        for item_id, label_id, coordinates in rows:
            if coordinates:
                ann = ExportAnnotation(self._labels[label_id], coordinates)
            elif (ann := self._plain.get(label_id)) is None:
                ann = self._plain[label_id] = ExportAnnotation(self._labels[label_id], "")
            out.setdefault(item_id, []).append(ann)
        return out


#: The longest name, in characters: names end up in archive paths and file names, where a
#: megabyte-long one helps nobody. The store checks those of datasets, labels and splits; the
#: HTTP API also those of versions, items and item states.
MAX_NAME_LENGTH = 256
#: The longest description the HTTP API takes, in characters.
MAX_DESCRIPTION_LENGTH = 10_000
#: Label indexes run from 0 to this (the signed 32-bit range: every client language holds it,
#: and SQLite's 64-bit INTEGER cannot overflow on ``max(idx) + 1``).
MAX_LABEL_INDEX = 2**31 - 1


def _check_name(kind: str, name: object) -> None:
    """A name is non-empty and at most :data:`MAX_NAME_LENGTH` characters."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f"a {kind} needs a non-empty name, got {name!r}")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(f"a {kind} name is at most {MAX_NAME_LENGTH} characters long, got {len(name)}")


def _check_label_fields(name: object, color: object, index: object) -> None:
    """The checks a label's fields pass on creation and on update alike."""
    _check_name("label", name)
    if color and not (isinstance(color, str) and _COLOR.fullmatch(color)):
        raise InvalidInput(f"label colour must look like #rrggbb, got {color!r}")
    if index is not None and (
        isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= MAX_LABEL_INDEX
    ):
        raise InvalidInput(f"label index must be an integer from 0 to {MAX_LABEL_INDEX}, got {index!r}")


def _check_coordinates(content_type: str, coordinates: str, text: str | None) -> str:
    """The stored form of ``coordinates`` for a dataset of ``content_type``, or InvalidInput."""
    if content_type == ContentType.NER.value:
        return format_span(parse_span(coordinates, text or ""))
    if content_type == ContentType.IMAGES.value and coordinates.strip():
        parse_box(coordinates)
        return " ".join(coordinates.split())
    if coordinates.strip():
        raise InvalidInput(
            f"{content_type} datasets take classification annotations with empty coordinates, got {coordinates!r}"
        )
    return ""


def _with_unsplit(split_ids: list[str] | None, include_unsplit: bool | None) -> bool:
    """Items in no split belong to a whole-version export, not to a split export, unless told."""
    return split_ids is None if include_unsplit is None else include_unsplit


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


class Store(StoreReader):
    """The writer: a store folder opened for reading and writing.

    Usable from many threads at once: each thread works on its own
    connection (``engine.connections``), so a thread sees only committed
    rows of the others and reads never wait for a write. Write transactions
    take one lock (:attr:`_lock`), so writers queue in Python instead of
    timing out on SQLite's busy handler. Use :meth:`reader` for a read-only
    connection that holds one snapshot for a whole export.
    """

    def __init__(self, db: sqlite3.Connection, root: Path) -> None:
        self._lock = threading.RLock()
        path = root / DB_NAME
        self._connections = ThreadConnections(lambda: _connect(path, read_only=False, cache_kib=_THREAD_CACHE_KIB), db)
        super().__init__(db, root, snapshots=False, lock=self._lock)

    @property
    def _db(self) -> sqlite3.Connection:
        return self._connections.current().db

    def close(self) -> None:
        self._connections.close()

    @classmethod
    def open(cls, root: str | Path, *, create: bool = True) -> Store:
        """Open the store in ``root``; with ``create`` make it (and the folder) if absent."""
        root = Path(root)
        path = root / DB_NAME
        if not path.is_file():
            if not create:
                raise NotFound(
                    f"no store at {root}; create one with `dsexport init --store {root}` (empty)"
                    f" or `dsexport demo --store {root}` (with the demo datasets)"
                )
            try:
                (root / "blobs").mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InvalidInput(f"cannot create a store at {root}: {exc.strerror or exc}") from exc
        store = cls(_connect(path, read_only=False), root)
        try:
            store._migrate()
        except BaseException:
            store.close()
            raise
        return store

    def _migrate(self) -> None:
        version = self._one("PRAGMA user_version")[0]
        if version == 0:
            self._db.executescript(f"BEGIN; {_SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")
        elif version != SCHEMA_VERSION:
            raise InvalidInput(
                f"{self.root / DB_NAME} has schema version {version}; this dsexport reads version {SCHEMA_VERSION}"
            )
        self._db.executescript(f"BEGIN; {_EXTRA_SCHEMA} COMMIT;")

    def reader(self) -> StoreReader:
        """A separate read-only connection; its iter_pages reads one consistent snapshot."""
        return StoreReader(_connect(self.root / DB_NAME, read_only=True), self.root, snapshots=True)

    def __enter__(self) -> Store:
        return self

    @contextmanager
    def _tx(self, *, checked: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction; rolled back if anything in it raises.

        Nested calls (same thread, under the lock) join the outer transaction,
        so an import can make labels, splits and items all or nothing.

        ``checked=False`` skips SQLite's foreign-key checks (worth ~10 % of a
        bulk load) for callers that have validated every reference already.
        """
        conn = self._connections.current()
        with self._lock:
            db = conn.db
            if conn.tx_depth:  # inside an outer transaction (an import): it commits or rolls back all
                conn.tx_depth += 1
                try:
                    yield db
                finally:
                    conn.tx_depth -= 1
                return
            if not checked:
                db.execute("PRAGMA foreign_keys=OFF")  # only takes effect outside a transaction
            conn.tx_depth = 1
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            finally:
                conn.tx_depth = 0
                if not checked:
                    db.execute("PRAGMA foreign_keys=ON")

    def _bump(self, version_id: str) -> None:
        """Count one more change of a version (inside a write transaction): the export ETag's source."""
        self._db.execute(
            "INSERT INTO revisions (version_id, revision) VALUES (?, 1)"
            " ON CONFLICT(version_id) DO UPDATE SET revision = revision + 1",
            (version_id,),
        )

    # -- blobs ---------------------------------------------------------------

    def put_blob(self, data: bytes) -> BlobInfo:
        """Store ``data`` (deduplicated by SHA-256) and return what identifies it."""
        return self.blobs.put(data)

    def put_blob_stream(self, chunks: Iterable[bytes]) -> BlobInfo:
        """Store a stream without holding it: hashed while spooled, then renamed into place."""
        return self.blobs.put_stream(chunks)

    # -- creation ------------------------------------------------------------

    def create_dataset(
        self,
        name: str,
        content_type: ContentType | str,
        *,
        multi_label: bool = False,
        default_splits: bool = False,
        description: str = "",
        user_id: str | None = None,
    ) -> Dataset:
        """A dataset with a first version ("v1"); ``default_splits`` adds train, valid, test."""
        kinds = [c.value for c in ContentType]
        kind = content_type.value if isinstance(content_type, ContentType) else content_type
        if kind not in kinds:
            raise InvalidInput(f"unknown content type {content_type!r}; valid content types: {choices_hint(kinds)}")
        _check_name("dataset", name)
        dataset_id, now = new_id(), now_iso()
        with self._tx() as db:
            db.execute(
                f"INSERT INTO datasets ({_DATASET_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (dataset_id, name, description, user_id, kind, bool(multi_label), bool(default_splits), now, now),
            )
            version_id = self._insert_version(dataset_id, "v1", "", "")
            for split in ("train", "valid", "test") if default_splits else ():
                self._insert_split(version_id, split)
            self._bump(version_id)
        return self.get_dataset(dataset_id)

    def create_version(
        self, dataset_id: str, name: str = "", *, description: str = "", config: str = ""
    ) -> DatasetVersion:
        """An empty new version; an empty name becomes ``v<N>`` (N = its position)."""
        self.get_dataset(dataset_id)
        with self._tx():
            count = self._one("SELECT count(*) FROM versions WHERE dataset_id = ?", (dataset_id,))[0]
            version_id = self._insert_version(dataset_id, name or f"v{count + 1}", description, config)
            self._bump(version_id)
        return self.get_version(dataset_id, version_id)

    def _insert_version(self, dataset_id: str, name: str, description: str, config: str) -> str:
        if not isinstance(config, str):
            raise InvalidInput(f"a version's config must be a string (JSON text), got {type(config).__name__}")
        version_id, now = new_id(), now_iso()
        self._db.execute(
            f"INSERT INTO versions ({_VERSION_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (version_id, dataset_id, name, description, config, now, now),
        )
        return version_id

    def update_version_config(self, version_id: str, config: str) -> None:
        """Replace a version's config string (e.g. a tabular version's column names)."""
        self._version_row(version_id)
        if not isinstance(config, str):
            raise InvalidInput(f"a version's config must be a string (JSON text), got {type(config).__name__}")
        with self._tx() as db:
            db.execute("UPDATE versions SET config = ?, updated_at = ? WHERE id = ?", (config, now_iso(), version_id))
            self._bump(version_id)

    def create_label(self, version_id: str, name: str, *, color: str = "", index: int | None = None) -> Label:
        """A label; no index -> after the last; no colour -> the palette's, by creation position."""
        self._version_row(version_id)
        _check_label_fields(name, color, index)
        label_id, now = new_id(), now_iso()
        with self._tx() as db:
            names = self._check_unused("label", version_id, name)
            if index is None:
                index = self._one("SELECT coalesce(max(idx) + 1, 0) FROM labels WHERE version_id = ?", (version_id,))[0]
            color = (color or PALETTE[len(names) % len(PALETTE)]).lower()
            db.execute(
                f"INSERT INTO labels ({_LABEL_COLS}) VALUES (?, ?, ?, '', ?, ?, '', ?, ?)",
                (label_id, version_id, name, color, index, now, now),
            )
            self._bump(version_id)
        return _label(self._one(f"SELECT {_LABEL_COLS} FROM labels WHERE id = ?", (label_id,)))

    def _check_unused(self, kind: str, version_id: str, name: str) -> list[str]:
        """The version's label or split names, in creation order; InvalidInput if ``name`` is one."""
        table = {"label": "labels", "split": "splits"}[kind]
        names = [r[0] for r in self._all(f"SELECT name FROM {table} WHERE version_id = ? ORDER BY seq", (version_id,))]
        if name in names:
            raise InvalidInput(f"{kind} {name!r} already exists in version {version_id}; {table}: {choices_hint(names)}")
        return names

    def create_split(self, version_id: str, name: str) -> DatasetSplit:
        """A split, unique by name in its version; splits export in creation order."""
        self._version_row(version_id)
        with self._tx():
            split_id = self._insert_split(version_id, name)
            self._bump(version_id)
        return self._split_in(version_id, split_id)

    def _insert_split(self, version_id: str, name: str) -> str:
        _check_name("split", name)
        self._check_unused("split", version_id, name)
        split_id, now = new_id(), now_iso()
        self._db.execute(
            f"INSERT INTO splits ({_SPLIT_COLS}) VALUES (?, ?, ?, '', ?, ?)", (split_id, version_id, name, now, now)
        )
        return split_id

    def create_item(
        self,
        version_id: str,
        *,
        name: str | None = None,
        extension: str = "",
        text: str = "",
        split_ids: Iterable[str] = (),
        blob: BlobInfo | None = None,
        description: str = "",
    ) -> DatasetItem:
        """One item; use :meth:`add_items` for many."""
        row = NewItem(
            id=new_id(),
            name=name,
            extension=extension,
            text=text,
            split_ids=list(split_ids),
            blob=blob,
            description=description,
        )
        self.add_items(version_id, [row])
        return self.get_item(row.id)

    def annotate(self, item_id: str, split_id: str, label_id: str, coordinates: str = "") -> Annotation:
        """Annotate an item in one of its splits; coordinates are checked by content type."""
        row = self._one("SELECT version_id, text FROM items WHERE id = ?", (item_id,))
        if row is None:
            raise NotFound(f"unknown item {item_id!r}")
        version_id, text = row
        _, content_type = self._version_row(version_id)
        split = self._split_in(version_id, split_id)
        self._label_in(version_id, label_id)
        if self._one("SELECT 1 FROM item_splits WHERE split_id = ? AND item_id = ?", (split_id, item_id)) is None:
            names = [s.name for s in self.get_item(item_id).splits]
            raise InvalidInput(f"item {item_id} is not in split {split.name!r}; its splits: {choices_hint(names)}")
        stored = _check_coordinates(content_type, coordinates or "", text)
        ann_id, now = new_id(), now_iso()
        with self._tx() as db:
            db.execute(
                f"INSERT INTO annotations (version_id, {_ANN_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (version_id, ann_id, item_id, split_id, label_id, stored, now, now),
            )
            self._bump(version_id)
        return Annotation(
            id=ann_id,
            item_id=item_id,
            split_id=split_id,
            label_id=label_id,
            coordinates=stored,
            created_at=now,
            updated_at=now,
        )

    def _label_in(self, version_id: str, label_id: str) -> None:
        labels = self.labels(version_id)
        if label_id not in {label.id for label in labels}:
            names = [f"{label.name} ({label.id})" for label in labels]
            raise NotFound(f"unknown label {label_id!r} in version {version_id}; valid labels: {choices_hint(names)}")

    # -- bulk ----------------------------------------------------------------

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
        # The write lock is held from the validation of the splits and labels to the last batch:
        # the inserts skip SQLite's foreign-key checks, so no other thread may delete one meanwhile.
        with self._lock, self._bulk_cache():
            _, content_type = self._version_row(version_id)
            return self._add_items(version_id, content_type, rows, batch, batch_bytes)

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
        split_ids = {s.id for s in self.splits(version_id)}
        label_ids = {label.id for label in self.labels(version_id)}
        check_all = content_type == ContentType.NER.value  # spans must be checked against the text
        done = 0
        for chunk in _batches(rows, batch, batch_bytes):
            now = now_iso()
            items, members, anns, small, stored = [], [], [], {}, set()
            for n, row in enumerate(chunk, start=done):
                item_id = row.id or new_id()
                sha = self._row_blob(row, n, small, stored)
                for split_id in row.split_ids:
                    if split_id not in split_ids:
                        self._split_in(version_id, split_id)  # raises NotFound listing the splits
                    members.append((split_id, item_id))
                for label_id, split_id, coordinates in row.annotations:
                    if label_id not in label_ids:
                        self._label_in(version_id, label_id)
                    if split_id not in row.split_ids:
                        raise InvalidInput(f"row {n}: annotation in split {split_id!r}, which the item is not in")
                    if coordinates or check_all:
                        coordinates = _check_coordinates(content_type, coordinates or "", row.text)
                    anns.append((version_id, new_id(), item_id, split_id, label_id, coordinates or "", now, now))
                extension = row.extension.lstrip(".") if row.extension else ""
                items.append((item_id, version_id, row.name, row.description, row.text, extension, sha, now, now))
            try:
                with self._tx(checked=False) as db:  # every reference was validated above
                    blob_ids = self.blobs.ids_of(stored)
                    if missing := stored - blob_ids.keys():
                        raise NotFound(f"unknown blob {min(missing)!r}; store it with put_blob first")
                    if small:
                        blob_ids.update(self.blobs.insert_many(small))
                    if blob_ids:
                        items = [(*r[:6], blob_ids.get(r[6]), *r[7:]) for r in items]  # hash -> row id
                    db.executemany(
                        "INSERT INTO items (id, version_id, name, description, text, extension, blob_id,"
                        " created_at, updated_at, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
                        items,
                    )
                    db.executemany("INSERT INTO item_splits (split_id, item_id) VALUES (?, ?)", members)
                    db.executemany(
                        f"INSERT INTO annotations (version_id, {_ANN_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", anns
                    )
                    self._bump(version_id)
            except sqlite3.IntegrityError as exc:
                raise InvalidInput(f"rows {done}..{done + len(chunk) - 1} were rejected: {exc}") from exc
            done += len(chunk)
        return done

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
        info = BlobInfo.of(data)
        small[info.sha256] = (info.sha256, info.size, info.crc32, data)
        return info.sha256

    # -- the HTTP service: archive sizes ----------------------------------------

    def archive_size(self, etag: str) -> int | None:
        """A remembered exact size of the archive an export ETag names."""
        row = self._one("SELECT size FROM archive_sizes WHERE etag = ?", (etag,))
        return row[0] if row else None

    def remember_archive_size(self, etag: str, version_id: str, revision: int, size: int) -> None:
        """Keep an archive's size across restarts; sizes of the version's older revisions are dropped."""
        with self._tx() as db:
            db.execute("DELETE FROM archive_sizes WHERE version_id = ? AND revision < ?", (version_id, revision))
            db.execute(
                "INSERT OR REPLACE INTO archive_sizes (etag, version_id, revision, size) VALUES (?, ?, ?, ?)",
                (etag, version_id, revision, size),
            )

    # -- the HTTP service: users and keys --------------------------------------

    def create_user(
        self, username: str, password: str | None = None, *, email: str = "", name: str = "", firstname: str = ""
    ) -> tuple[dict[str, str], str]:
        """A user and a first API key: ``(user row, key)``. Only the key's SHA-256 is stored.

        ``password`` None makes a key-only user, who can never log in by
        password (no hash is stored). An empty or blank password is refused,
        never stored: it would let anyone who knows the username log in.
        """
        if not isinstance(username, str) or not username.strip():
            raise InvalidInput(f"a user needs a non-empty username, got {username!r}")
        if password is not None and not password.strip():
            raise InvalidInput("the password must not be empty; leave it out for a key-only user")
        password_hash = "" if password is None else _hash_password(password)
        user_id, now = new_id(), now_iso()
        with self._tx() as db:
            if self._one("SELECT 1 FROM users WHERE username = ?", (username,)):
                raise InvalidInput(f"username {username!r} is already taken")
            db.execute(
                "INSERT INTO users (id, username, email, name, firstname, password_hash, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (user_id, username, email or "", name or "", firstname or "", password_hash, now),
            )
            key = self._insert_key(user_id)
        return self.get_user(user_id), key

    def _insert_key(self, user_id: str) -> str:
        key = secrets.token_urlsafe(32)
        self._db.execute(
            "INSERT INTO api_keys (key_hash, user_id, created_at) VALUES (?, ?, ?)", (_hash_key(key), user_id, now_iso())
        )
        return key

    def get_user(self, user_id: str) -> dict[str, str]:
        row = self._one("SELECT id, username, email, name, firstname FROM users WHERE id = ?", (user_id,))
        if row is None:
            raise NotFound(f"unknown user {user_id!r}")
        return dict(zip(("id", "username", "email", "name", "firstname"), row))

    def user_for_key(self, key: str) -> str | None:
        """The id of the user an API key belongs to, or None."""
        row = self._one("SELECT user_id FROM api_keys WHERE key_hash = ?", (_hash_key(key),))
        return row[0] if row else None

    def login(self, username: str, password: str) -> tuple[dict[str, str], str] | None:
        """A new key for a user whose password matches; None otherwise.

        An empty password never matches, and a key-only user has no password
        to match, also in stores whose older rows hold the hash of "".
        """
        if not password:
            return None
        row = self._one("SELECT id, password_hash FROM users WHERE username = ?", (username,))
        if row is None or not _check_password(password, row[1]):
            return None
        with self._tx():
            key = self._insert_key(row[0])
        return self.get_user(row[0]), key

    def _user_id(self, username: str) -> str:
        row = self._one("SELECT id FROM users WHERE username = ?", (username,))
        if row is None:
            known = [r[0] for r in self._all("SELECT username FROM users ORDER BY username")]
            raise NotFound(f"unknown user {username!r}; users: {choices_hint(known) if known else 'none yet'}")
        return row[0]

    def list_users(self) -> list[dict[str, Any]]:
        """Every user with its number of live keys and whether it can log in by password (admin use)."""
        rows = self._all(
            "SELECT u.id, u.username, u.email, u.password_hash, u.created_at,"
            " (SELECT count(*) FROM api_keys k WHERE k.user_id = u.id)"
            " FROM users u ORDER BY u.username"
        )
        return [
            {
                "id": r[0],
                "username": r[1],
                "email": r[2],
                "password": _usable_hash(r[3]),
                "keys": r[5],
                "created_at": r[4],
            }
            for r in rows
        ]

    def issue_key(self, username: str) -> str:
        """A new API key for ``username`` (the only way in for a key-only user); earlier keys stay valid."""
        user_id = self._user_id(username)
        with self._tx():
            return self._insert_key(user_id)

    def revoke_key(self, key: str) -> bool:
        """Revoke one key; False if no user has it."""
        with self._tx() as db:
            return db.execute("DELETE FROM api_keys WHERE key_hash = ?", (_hash_key(key),)).rowcount > 0

    def revoke_keys_of(self, username: str) -> int:
        """Revoke every key of ``username``; how many there were."""
        user_id = self._user_id(username)
        with self._tx() as db:
            return db.execute("DELETE FROM api_keys WHERE user_id = ?", (user_id,)).rowcount

    def give_datasets(self, username: str, dataset_ids: list[str] | None = None) -> list[str]:
        """Make ``username`` the owner of ``dataset_ids`` (None: every dataset that has no owner yet).

        Datasets made outside the HTTP API (``dsexport demo``, a bulk load) have
        no owner, and the API serves a dataset only to its owner. Returns the ids given.
        """
        user_id = self._user_id(username)
        with self._tx() as db:
            if dataset_ids is None:
                dataset_ids = [r[0] for r in self._all("SELECT id FROM datasets WHERE coalesce(user_id, '') = ''")]
            for dataset_id in dataset_ids:
                if self._one("SELECT 1 FROM datasets WHERE id = ?", (dataset_id,)) is None:
                    raise NotFound(f"unknown dataset {dataset_id!r}")
                db.execute("UPDATE datasets SET user_id = ? WHERE id = ?", (user_id, dataset_id))
        return dataset_ids

    def owner_of(self, dataset_id: str) -> str | None:
        row = self._one("SELECT coalesce(user_id, '') FROM datasets WHERE id = ?", (dataset_id,))
        return None if row is None else row[0]

    def dataset_ids_of(self, user_id: str) -> list[str]:
        return [r[0] for r in self._all("SELECT id FROM datasets WHERE user_id = ? ORDER BY created_at, id", (user_id,))]

    # -- the HTTP service: updates and deletes ---------------------------------

    def update_dataset(self, dataset_id: str, *, name: str, description: str, multi_label: bool) -> Dataset:
        self.get_dataset(dataset_id)
        _check_name("dataset", name)
        with self._tx() as db:
            db.execute(
                "UPDATE datasets SET name = ?, description = ?, multi_label = ?, updated_at = ? WHERE id = ?",
                (name, description or "", bool(multi_label), now_iso(), dataset_id),
            )
            for (version_id,) in self._all("SELECT id FROM versions WHERE dataset_id = ?", (dataset_id,)):
                self._bump(version_id)  # multi_label changes CSV exports
        return self.get_dataset(dataset_id)

    def delete_dataset(self, dataset_id: str) -> None:
        self.get_dataset(dataset_id)
        with self._tx() as db:
            db.execute("DELETE FROM datasets WHERE id = ?", (dataset_id,))

    def update_version(self, version_id: str, *, name: str, description: str, config: str) -> None:
        """Name, description and config; a version's labels and splits change only through their own calls."""
        self._version_row(version_id)
        if not isinstance(config, str):
            raise InvalidInput(f"a version's config must be a string (JSON text), got {type(config).__name__}")
        with self._tx() as db:
            db.execute(
                "UPDATE versions SET name = coalesce(nullif(?, ''), name), description = ?, config = ?,"
                " updated_at = ? WHERE id = ?",
                (name or "", description or "", config, now_iso(), version_id),
            )
            self._bump(version_id)

    def delete_version(self, version_id: str) -> None:
        self._version_row(version_id)
        with self._tx() as db:
            db.execute("DELETE FROM revisions WHERE version_id = ?", (version_id,))
            db.execute("DELETE FROM versions WHERE id = ?", (version_id,))

    def duplicate_version(self, dataset_id: str, version_id: str, name: str = "") -> DatasetVersion:
        """A new version of the dataset with copies of the labels, splits, items, annotations and states.

        Copies get new ids; blobs are shared (they are content-addressed).
        """
        self.get_version(dataset_id, version_id)
        now = now_iso()
        with self._tx() as db:
            count = self._one("SELECT count(*) FROM versions WHERE dataset_id = ?", (dataset_id,))[0]
            new_version = self._insert_version(dataset_id, name or f"v{count + 1}", "", "")
            db.execute(
                "UPDATE versions SET description = (SELECT description FROM versions WHERE id = ?),"
                " config = (SELECT config FROM versions WHERE id = ?) WHERE id = ?",
                (version_id, version_id, new_version),
            )
            db.execute("CREATE TEMP TABLE IF NOT EXISTS id_map (old TEXT PRIMARY KEY, new TEXT NOT NULL)")
            db.execute("DELETE FROM id_map")
            for table in ("labels", "splits", "items"):
                order = "seq" if table != "items" else "id"
                olds = [r[0] for r in self._all(f"SELECT id FROM {table} WHERE version_id = ? ORDER BY {order}", (version_id,))]
                db.executemany("INSERT INTO id_map (old, new) VALUES (?, ?)", [(o, new_id()) for o in olds])
            db.execute(
                f"INSERT INTO labels ({_LABEL_COLS}) SELECT m.new, ?, name, description, color, idx, shortcut, ?, ?"
                " FROM labels l JOIN id_map m ON m.old = l.id WHERE l.version_id = ? ORDER BY l.seq",
                (new_version, now, now, version_id),
            )
            db.execute(
                f"INSERT INTO splits ({_SPLIT_COLS}) SELECT m.new, ?, name, description, ?, ?"
                " FROM splits s JOIN id_map m ON m.old = s.id WHERE s.version_id = ? ORDER BY s.seq",
                (new_version, now, now, version_id),
            )
            db.execute(
                "INSERT INTO items (id, version_id, name, description, text, extension, blob_id, created_at,"
                " updated_at, version) SELECT m.new, ?, name, description, text, extension, blob_id, ?, ?, 1"
                " FROM items i JOIN id_map m ON m.old = i.id WHERE i.version_id = ? ORDER BY m.new",
                (new_version, now, now, version_id),
            )
            db.execute(
                "INSERT INTO item_splits (split_id, item_id) SELECT ms.new, mi.new FROM item_splits x"
                " JOIN id_map ms ON ms.old = x.split_id JOIN id_map mi ON mi.old = x.item_id"
                " JOIN items i ON i.id = x.item_id WHERE i.version_id = ?",
                (version_id,),
            )
            rows = self._all(
                "SELECT mi.new, ms.new, ml.new, a.coordinates FROM annotations a JOIN id_map mi ON mi.old = a.item_id"
                " JOIN id_map ms ON ms.old = a.split_id JOIN id_map ml ON ml.old = a.label_id"
                " WHERE a.version_id = ? ORDER BY a.rowid",
                (version_id,),
            )
            db.executemany(
                f"INSERT INTO annotations (version_id, {_ANN_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(new_version, new_id(), *r, now, now) for r in rows],
            )
            states = self._all(
                "SELECT m.new, s.name, s.user_id, s.state, s.version FROM item_states s"
                " JOIN id_map m ON m.old = s.item_id WHERE s.version_id = ?",
                (version_id,),
            )
            db.executemany(
                "INSERT INTO item_states (item_id, version_id, id, name, user_id, state, version, created_at,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(r[0], new_version, new_id(), r[1], r[2], r[3], r[4], now, now) for r in states],
            )
            db.execute("DELETE FROM id_map")
            self._bump(new_version)
        return self.get_version(dataset_id, new_version)

    def get_label(self, version_id: str, label_id: str) -> Label:
        for label in self.labels(version_id):
            if label.id == label_id:
                return label
        self._label_in(version_id, label_id)
        raise AssertionError("unreachable")

    def update_label(
        self, version_id: str, label_id: str, *, name: str, description: str, color: str, index: int | None, shortcut: str
    ) -> Label:
        old = self.get_label(version_id, label_id)
        _check_label_fields(name, color, index)
        with self._tx() as db:
            if name != old.name:
                self._check_unused("label", version_id, name)
            db.execute(
                "UPDATE labels SET name = ?, description = ?, color = ?, idx = ?, shortcut = ?, updated_at = ?"
                " WHERE id = ?",
                (name, description or "", (color or old.color).lower(), old.index if index is None else index,
                 shortcut or "", now_iso(), label_id),
            )
            self._bump(version_id)
        return self.get_label(version_id, label_id)

    def delete_label(self, version_id: str, label_id: str) -> Label:
        label = self.get_label(version_id, label_id)
        with self._tx() as db:
            db.execute("DELETE FROM labels WHERE id = ?", (label_id,))
            self._bump(version_id)
        return label

    def get_split(self, version_id: str, split_id: str) -> DatasetSplit:
        self._version_row(version_id)
        return self._split_in(version_id, split_id)

    def update_split(self, version_id: str, split_id: str, *, name: str, description: str) -> DatasetSplit:
        old = self.get_split(version_id, split_id)
        _check_name("split", name)
        with self._tx() as db:
            if name != old.name:
                self._check_unused("split", version_id, name)
            db.execute(
                "UPDATE splits SET name = ?, description = ?, updated_at = ? WHERE id = ?",
                (name, description or "", now_iso(), split_id),
            )
            self._bump(version_id)
        return self.get_split(version_id, split_id)

    def delete_split(self, version_id: str, split_id: str) -> DatasetSplit:
        split = self.get_split(version_id, split_id)
        with self._tx() as db:
            db.execute("DELETE FROM splits WHERE id = ?", (split_id,))
            self._bump(version_id)
        return split

    # -- the HTTP service: items ---------------------------------------------

    def item_version_id(self, item_id: str) -> str | None:
        row = self._one("SELECT version_id FROM items WHERE id = ?", (item_id,))
        return row[0] if row else None

    def list_items(
        self,
        version_id: str,
        *,
        page_size: int = 10,
        page: int = 0,
        split_id: str | None = None,
        label_id: str | None = None,
        only_unlabelled: bool = False,
        only_unsplit: bool = False,
    ) -> list[DatasetItem]:
        """One page of a version's items (by id), optionally filtered by split, label, no label or no split."""
        if page_size < 1 or page < 0:
            raise InvalidInput(f"pageSize must be at least 1 and pageCount at least 0, got {page_size}, {page}")
        where, args = self._item_filter(version_id, split_id, label_id, only_unlabelled, only_unsplit)
        ids = self._all(
            f"SELECT i.id FROM items i WHERE {where} ORDER BY i.id LIMIT ? OFFSET ?",
            (*args, page_size, page * page_size),
        )
        return self._items_by_id([r[0] for r in ids])

    def count_listed_items(
        self,
        version_id: str,
        *,
        split_id: str | None = None,
        label_id: str | None = None,
        only_unlabelled: bool = False,
        only_unsplit: bool = False,
    ) -> int:
        """How many items :meth:`list_items` pages through with the same filters."""
        where, args = self._item_filter(version_id, split_id, label_id, only_unlabelled, only_unsplit)
        return self._one(f"SELECT count(*) FROM items i WHERE {where}", tuple(args))[0]

    def _item_filter(
        self, version_id: str, split_id: str | None, label_id: str | None, only_unlabelled: bool, only_unsplit: bool
    ) -> tuple[str, list[str]]:
        """The WHERE clause (over ``items i``) of an item listing; unknown split or label ids raise NotFound."""
        self._version_row(version_id)
        where, args = ["i.version_id = ?"], [version_id]
        if split_id:
            self._split_in(version_id, split_id)
            where.append("EXISTS (SELECT 1 FROM item_splits s WHERE s.item_id = i.id AND s.split_id = ?)")
            args.append(split_id)
        if label_id:
            self._label_in(version_id, label_id)
            where.append("EXISTS (SELECT 1 FROM annotations a WHERE a.item_id = i.id AND a.label_id = ?)")
            args.append(label_id)
        if only_unlabelled:
            where.append("NOT EXISTS (SELECT 1 FROM annotations a WHERE a.item_id = i.id)")
        if only_unsplit:
            where.append("NOT EXISTS (SELECT 1 FROM item_splits s WHERE s.item_id = i.id)")
        return " AND ".join(where), args

    def update_item(
        self,
        item_id: str,
        *,
        name: str | None,
        description: str,
        text: str | None,
        split_ids: list[str] | None,
        if_match: int | None = None,
    ) -> DatasetItem:
        """Replace an item's fields and split membership; annotations in splits it leaves go with them.

        ``if_match``: the item's ``version`` the caller last saw; a mismatch raises
        :class:`VersionConflict` and changes nothing.
        """
        row = self._one("SELECT version_id, version FROM items WHERE id = ?", (item_id,))
        if row is None:
            raise NotFound(f"unknown item {item_id!r}")
        version_id, current = row
        if if_match is not None and if_match != current:
            raise VersionConflict(f"item {item_id} is at version {current}, not {if_match}", current)
        valid = {s.id for s in self.splits(version_id)}
        for split_id in split_ids or ():
            if split_id not in valid:
                self._split_in(version_id, split_id)
        with self._tx() as db:
            db.execute(
                "UPDATE items SET name = ?, description = ?, text = ?, updated_at = ?, version = version + 1"
                " WHERE id = ?",
                (name, description or "", text if text is not None else "", now_iso(), item_id),
            )
            if split_ids is not None:
                keep = list(dict.fromkeys(split_ids))
                marks = ",".join("?" * len(keep)) or "''"
                db.execute(f"DELETE FROM item_splits WHERE item_id = ? AND split_id NOT IN ({marks})", (item_id, *keep))
                db.execute(f"DELETE FROM annotations WHERE item_id = ? AND split_id NOT IN ({marks})", (item_id, *keep))
                db.executemany(
                    "INSERT OR IGNORE INTO item_splits (split_id, item_id) VALUES (?, ?)", [(s, item_id) for s in keep]
                )
            self._bump(version_id)
        return self.get_item(item_id)

    def set_item_blob(self, item_id: str, blob: BlobInfo, extension: str) -> DatasetItem:
        version_id = self.item_version_id(item_id)
        if version_id is None:
            raise NotFound(f"unknown item {item_id!r}")
        with self._tx() as db:
            blob_id = self.blobs.ids_of([blob.sha256])[blob.sha256]
            db.execute(
                "UPDATE items SET blob_id = ?, extension = ?, updated_at = ?, version = version + 1 WHERE id = ?",
                (blob_id, extension.lstrip(".").lower(), now_iso(), item_id),
            )
            self._bump(version_id)
        return self.get_item(item_id)

    def item_file(self, item_id: str) -> tuple[bytes | BlobFile, str] | None:
        """An item's file content and extension in one query; None if it has no file."""
        row = self._one(
            "SELECT b.sha256, b.size, b.crc32, b.data, coalesce(i.extension, '')"
            " FROM items i JOIN blobs b ON b.id = i.blob_id WHERE i.id = ?",
            (item_id,),
        )
        return None if row is None else (self.blobs.content(item_id, *row[:4]), row[4])

    def delete_item(self, item_id: str) -> DatasetItem:
        item = self.get_item(item_id)
        version_id = self.item_version_id(item_id)
        with self._tx() as db:
            db.execute("DELETE FROM items WHERE id = ?", (item_id,))
            self._bump(version_id or "")
        return item

    # -- the HTTP service: annotations, stats, states ---------------------------

    def get_annotation(self, annotation_id: str) -> tuple[str, Annotation]:
        """(version id, annotation)."""
        row = self._one(f"SELECT version_id, {_ANN_COLS} FROM annotations WHERE id = ?", (annotation_id,))
        if row is None:
            raise NotFound(f"unknown annotation {annotation_id!r}")
        return row[0], _annotation(row[1:])

    def update_annotation(self, annotation_id: str, *, label_id: str, coordinates: str) -> Annotation:
        version_id, ann = self.get_annotation(annotation_id)
        _, content_type = self._version_row(version_id)
        self._label_in(version_id, label_id)
        text = self._one("SELECT text FROM items WHERE id = ?", (ann.item_id,))[0]
        stored = _check_coordinates(content_type, coordinates or "", text)
        with self._tx() as db:
            db.execute(
                "UPDATE annotations SET label_id = ?, coordinates = ?, updated_at = ? WHERE id = ?",
                (label_id, stored, now_iso(), annotation_id),
            )
            self._bump(version_id)
        return self.get_annotation(annotation_id)[1]

    def delete_annotation(self, annotation_id: str) -> Annotation:
        version_id, ann = self.get_annotation(annotation_id)
        with self._tx() as db:
            db.execute("DELETE FROM annotations WHERE id = ?", (annotation_id,))
            self._bump(version_id)
        return ann

    def label_stats(self, version_id: str, split_id: str) -> list[dict[str, Any]]:
        """Per label of the split: annotations and annotated items; plus ``label_id: ""`` for unlabelled items."""
        self._version_row(version_id)
        self._split_in(version_id, split_id)
        counts = {
            r[0]: (r[1], r[2])
            for r in self._all(
                "SELECT label_id, count(*), count(DISTINCT item_id) FROM annotations WHERE split_id = ? GROUP BY label_id",
                (split_id,),
            )
        }
        out = []
        for label in self.labels(version_id):
            anns, items = counts.get(label.id, (0, 0))
            out.append({"label_id": label.id, "split_id": split_id, "count": items, "annotation_count": anns, "item_count": items})
        unlabelled = self._one(
            "SELECT count(*) FROM item_splits s WHERE s.split_id = ? AND NOT EXISTS"
            " (SELECT 1 FROM annotations a WHERE a.item_id = s.item_id AND a.split_id = s.split_id)",
            (split_id,),
        )[0]
        out.append({"label_id": "", "split_id": split_id, "count": unlabelled, "annotation_count": 0, "item_count": unlabelled})
        return out

    def get_state(self, version_id: str, item_id: str) -> dict[str, Any]:
        row = self._one(
            "SELECT id, name, user_id, state, version, created_at, updated_at FROM item_states"
            " WHERE item_id = ? AND version_id = ?",
            (item_id, version_id),
        )
        if row is None:
            return {"item_id": item_id, "dataset_version_id": version_id, "state": "", "version": 0}
        return _state(item_id, version_id, row)

    def list_states(self, version_id: str) -> list[dict[str, Any]]:
        rows = self._all(
            "SELECT item_id, id, name, user_id, state, version, created_at, updated_at FROM item_states"
            " WHERE version_id = ? ORDER BY item_id",
            (version_id,),
        )
        return [_state(r[0], version_id, r[1:]) for r in rows]

    def put_state(
        self, version_id: str, item_id: str, *, state: str, name: str | None, user_id: str, if_match: int | None
    ) -> dict[str, Any]:
        current = self.get_state(version_id, item_id)["version"]
        if if_match is not None and if_match != current:
            raise VersionConflict(f"the state of item {item_id} is at version {current}, not {if_match}", current)
        now = now_iso()
        with self._tx() as db:
            db.execute(
                "INSERT INTO item_states (item_id, version_id, id, name, user_id, state, version, created_at,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?) ON CONFLICT(item_id, version_id) DO UPDATE SET"
                " name = excluded.name, state = excluded.state, user_id = excluded.user_id,"
                " version = version + 1, updated_at = excluded.updated_at",
                (item_id, version_id, new_id(), name, user_id, state or "", now, now),
            )
        return self.get_state(version_id, item_id)


class VersionConflict(InvalidInput):
    """An If-Match precondition that does not hold; ``current`` is the version now stored."""

    def __init__(self, message: str, current: int) -> None:
        super().__init__(message)
        self.current = current


def _state(item_id: str, version_id: str, r: tuple) -> dict[str, Any]:
    out = {
        "id": r[0], "item_id": item_id, "dataset_version_id": version_id, "user_id": r[2], "state": r[3],
        "version": r[4], "created_at": r[5], "updated_at": r[6],
    }
    if r[1] is not None:
        out["name"] = r[1]
    return out


def _hash_key(key: str) -> str:
    """API keys are 256 random bits: one SHA-256 is enough to store them safely."""
    return hashlib.sha256(key.encode()).hexdigest()


def _hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


def _matches(password: str, stored: str) -> bool:
    try:
        _, salt, digest = stored.split("$")
    except ValueError:
        return False  # "" (a key-only user) or anything that is not our hash
    got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=2**14, r=8, p=1)
    return hmac.compare_digest(got.hex(), digest)


def _check_password(password: str, stored: str) -> bool:
    """Whether ``password`` logs in against ``stored``; an empty password never does.

    Refusing "" here, not only at creation, keeps stores safe whose key-only
    users were stored with the hash of the empty string.
    """
    return bool(password) and _matches(password, stored)


def _usable_hash(stored: str) -> bool:
    """Whether some non-empty password can log in against ``stored`` (not "", not the hash of "")."""
    return bool(stored) and not _matches("", stored)
