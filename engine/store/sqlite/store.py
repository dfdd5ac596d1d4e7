"""The SQLite back end's two faces: :class:`StoreReader` and :class:`Store`, and how a store folder opens.

A store is a folder holding ``store.sqlite3`` and its blob back end
(``blobs/``, see ``engine.store.blobs.local``). :class:`Store` is the one
writer: it creates and migrates the schema (``engine.store.sqlite.schema``).
:class:`StoreReader` reads on its own read-only connection, holding one
snapshot per export while writers go on; it never migrates (see
:meth:`StoreReader.open`).

The methods come from modules of one job each: ``catalog`` (datasets,
versions, labels, splits), ``items`` (single items, annotations, states),
``pages`` (the export read path), ``bulk`` (add_items), ``accounts`` (users
and keys), ``sizes`` (archive sizes), ``packs`` (pack compaction). Everything that is written is
validated first (``engine.store.rules``).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path

from engine.errors import InvalidInput, NotFound
from engine.store.api import BlobRef, BlobStore
from engine.store.blobs.local import LocalBlobs
from engine.store.sqlite import schema
from engine.store.sqlite.accounts import AccountWrites
from engine.store.sqlite.blob_index import SqliteBlobs
from engine.store.sqlite.bulk import BulkWrites
from engine.store.sqlite.catalog import CatalogWrites
from engine.store.sqlite.db import THREAD_CACHE_KIB, ThreadConnections, connect
from engine.store.sqlite.items import ItemReads, ItemWrites
from engine.store.sqlite.dump import RecordReads, RecordWrites
from engine.store.sqlite.packs import PackWrites
from engine.store.sqlite.pages import PageReads
from engine.store.sqlite.sizes import SizeWrites

__all__ = ["DB_NAME", "Store", "StoreReader"]

DB_NAME = "store.sqlite3"


def _folder(url: str) -> Path:
    """The store folder of a registry URL: a plain path, or ``sqlite:PATH``."""
    from engine.store.registry import split_url

    return Path(split_url(url)[1])


def _no_store(root: Path) -> NotFound:
    return NotFound(
        f"no store at {root}; create one with `dsexport init --store {root}` (empty)"
        f" or `dsexport demo --store {root}` (with the demo datasets)"
    )


class StoreReader(ItemReads, PageReads, RecordReads):
    """Read access to a store: lookups, counts and the export's page iterator.

    Safe to hand between threads as long as one thread uses it at a time.
    Its :meth:`iter_pages` reads one snapshot (a read transaction).
    """

    def __init__(
        self,
        db: sqlite3.Connection,
        root: Path,
        *,
        snapshots: bool,
        lock: threading.RLock | None = None,
        files: BlobStore | None = None,
    ) -> None:
        self._reader_db = db
        self.root = root
        self.blobs = SqliteBlobs(files if files is not None else LocalBlobs(root / "blobs"), lambda: self._db, lock)
        self._snapshots = snapshots  # hold one read transaction per iter_pages
        self._snapshot_depth = 0

    @classmethod
    def open(cls, root: str | Path, *, files: BlobStore | None = None) -> StoreReader:
        """A reader on the store in ``root``, without opening the writer.

        It never migrates: a store of an older schema is refused with the
        command that migrates it (any writer's open does).
        """
        root = Path(root)
        path = root / DB_NAME
        if not path.is_file():
            raise _no_store(root)
        db = connect(path, read_only=True)
        try:
            schema.check_readable(db, path, root)
        except BaseException:
            db.close()
            raise
        return cls(db, root, snapshots=True, files=files)

    @classmethod
    def open_reader_url(cls, url: str, *, files: BlobStore | None = None) -> StoreReader:
        """A reader of the store a registry URL names (a folder path or ``sqlite:PATH``)."""
        return StoreReader.open(_folder(url), files=files)

    @property
    def _db(self) -> sqlite3.Connection:
        return self._reader_db

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> StoreReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Store(StoreReader, CatalogWrites, ItemWrites, BulkWrites, AccountWrites, SizeWrites, PackWrites, RecordWrites):
    """The writer: a store folder opened for reading and writing.

    Usable from many threads at once: each thread works on its own
    connection (``engine.store.sqlite.db``), so a thread sees only committed
    rows of the others and reads never wait for a write. Write transactions
    take one lock, so writers queue in Python instead of timing out on
    SQLite's busy handler. Use :meth:`reader` for a read-only connection
    that holds one snapshot for a whole export.
    """

    def __init__(self, db: sqlite3.Connection, root: Path, *, files: BlobStore | None = None) -> None:
        self._lock = threading.RLock()
        path = root / DB_NAME
        self._connections = ThreadConnections(lambda: connect(path, read_only=False, cache_kib=THREAD_CACHE_KIB), db)
        self._files = files if files is not None else LocalBlobs(root / "blobs")
        super().__init__(db, root, snapshots=False, lock=self._lock, files=self._files)

    @property
    def _db(self) -> sqlite3.Connection:
        return self._connections.current().db

    def close(self) -> None:
        self._connections.close()

    @classmethod
    def open(cls, root: str | Path, *, create: bool = True, files: BlobStore | None = None) -> Store:
        """Open the store in ``root`` (migrating an older schema); with ``create`` make it if absent.

        ``files``: where large blobs live (default: the ``blobs/`` folder of ``root``).
        """
        root = Path(root)
        path = root / DB_NAME
        if not path.is_file():
            if not create:
                raise _no_store(root)
            try:
                (root / "blobs").mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InvalidInput(f"cannot create a store at {root}: {exc.strerror or exc}") from exc
        store = cls(connect(path, read_only=False), root, files=files)
        try:
            with store._lock:
                schema.migrate(store._db, path)
        except BaseException:
            store.close()
            raise
        return store

    @classmethod
    def open_url(cls, url: str, *, create: bool = True, files: BlobStore | None = None) -> Store:
        """The writer of the store a registry URL names (a folder path or ``sqlite:PATH``)."""
        return cls.open(_folder(url), create=create, files=files)

    def reader(self) -> StoreReader:
        """A separate read-only connection; its iter_pages reads one consistent snapshot."""
        return StoreReader(connect(self.root / DB_NAME, read_only=True), self.root, snapshots=True, files=self._files)

    def __enter__(self) -> Store:
        return self

    def put_blob(self, data: bytes) -> BlobRef:
        """Store ``data`` (deduplicated by SHA-256) and return what identifies it."""
        return self.blobs.put(data)

    def put_blob_stream(self, chunks: Iterable[bytes]) -> BlobRef:
        """Store a stream without holding it: hashed while spooled, then put in place."""
        return self.blobs.put_stream(chunks)
