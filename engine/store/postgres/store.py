"""The PostgreSQL back end's two faces: :class:`PostgresReader` and :class:`PostgresStore`, and how they open.

``postgresql://USER[:PASSWORD]@HOST:PORT/DB`` names a database; the store
is its tables (``engine.store.postgres.schema``). Small blobs live inline in
the ``blobs`` table; large ones in a blob store that must be named
(``--blobs``): a PostgreSQL server has no folder of ours to put them in.

:class:`PostgresStore` is the writer, shared by the threads of a process
(and by every process on the database: several servers can serve one
store). :class:`PostgresReader` owns one connection, so its snapshot
(``REPEATABLE READ``) covers a whole export however many calls it takes.
The methods come from the SQLite back end's modules of one job each, run on
PostgreSQL by ``engine.store.postgres.db``, with PostgreSQL's own
``schema``, ``bulk`` (``COPY``), ``pages`` (server-side cursors),
``dump`` (store copy) and ``blob_index``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import psycopg
from psycopg_pool import ConnectionPool

from engine.errors import InvalidInput
from engine.store.api import BlobRef, BlobStore
from engine.store.postgres import schema
from engine.store.postgres.blob_index import PgBlobs
from engine.store.postgres.bulk import PgBulkWrites
from engine.store.postgres.db import PgConnection, PgReads, PgWrites, ThreadTransaction, display_url, mapped_errors
from engine.store.postgres.pages import PgPageReads
from engine.store.postgres.dump import PgRecordReads, PgRecordWrites
from engine.store.sqlite.accounts import AccountWrites
from engine.store.sqlite.catalog import CatalogWrites
from engine.store.sqlite.items import ItemReads, ItemWrites
from engine.store.sqlite.packs import PackWrites
from engine.store.sqlite.sizes import SizeWrites
from engine.store.records import StoreRecord
from formats.base import ExportItem

T = TypeVar("T")

__all__ = ["POOL_SIZE", "POOL_WAIT_VARIABLE", "PostgresReader", "PostgresStore", "pool_wait"]

#: Connections a store's pool keeps at most: a server's worker threads share them (each
#: reader, one per running export, has a connection of its own besides).
POOL_SIZE = 20
#: Seconds to wait for a server that does not answer.
CONNECT_TIMEOUT = 10
#: Seconds a call waits for a pooled connection (all busy, or the database down) before it fails
#: with a ``RemoteError`` (a server answers 503): ``$DSEXPORT_PG_POOL_WAIT``, default 10.
POOL_WAIT_VARIABLE = "DSEXPORT_PG_POOL_WAIT"


def pool_wait() -> float:
    """The pool's wait (``$DSEXPORT_PG_POOL_WAIT`` seconds, default 10); InvalidInput if it is no positive number."""
    text = os.environ.get(POOL_WAIT_VARIABLE, "10")
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        raise InvalidInput(f"{POOL_WAIT_VARIABLE} must be a positive number of seconds, got {text!r}")
    return seconds


def _needs_blobs(where: str) -> InvalidInput:
    return InvalidInput(
        f"the PostgreSQL store {where} keeps file content in a blob store, and none was named:"
        " give one with --blobs (a folder, file:PATH or s3://bucket/prefix) or $DSEXPORT_BLOBS"
    )


def _connect(url: str, where: str) -> psycopg.Connection:
    """One autocommit connection, or a ``RemoteError`` naming the server (never the password)."""
    with mapped_errors(where):
        return psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)


class PostgresReader(PgPageReads, ItemReads, PgRecordReads, PgReads):
    """Read access on one connection of its own: lookups, counts and the export's pages.

    One thread at a time (it may be handed between threads). Its
    :meth:`snapshot` and each :meth:`iter_pages` hold one ``REPEATABLE READ``
    transaction, so everything read inside sees one state of the store.
    """

    def __init__(
        self, conn: psycopg.Connection, where: str, files: BlobStore, release: Callable[[psycopg.Connection], None]
    ) -> None:
        self.where = self.root = where
        self._conn = PgConnection(where, conn=conn)
        self._release = release
        self._snapshots = True
        self._snapshot_depth = 0
        self.blobs = PgBlobs(files, lambda: self._conn)

    @classmethod
    def open_reader_url(cls, url: str, *, files: BlobStore | None) -> PostgresReader:
        """A reader on the store at ``url``, on a connection of its own. It never migrates."""
        where = display_url(url)
        if files is None:
            raise _needs_blobs(where)
        conn = _connect(url, where)
        try:
            schema.check_readable(conn, where)
        except BaseException:
            conn.close()
            raise
        return cls(conn, where, files, lambda c: c.close())

    @property
    def _db(self) -> PgConnection:  # type: ignore[override]
        return self._conn

    def close(self) -> None:
        conn, self._conn.conn = self._conn.conn, None
        if conn is not None:
            self._release(conn)

    def __enter__(self) -> PostgresReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PostgresStore(
    PgBulkWrites, PgPageReads, PgRecordReads, CatalogWrites, ItemWrites, AccountWrites, SizeWrites, PackWrites,
    PgRecordWrites, PgWrites,
):
    """The writer on a pool of connections, shared by many threads (and by other processes on the database).

    A statement outside a transaction runs on any pooled connection; a
    transaction keeps one for its thread. :meth:`iter_pages` reads through
    a reader of its own, so it too sees one snapshot.
    """

    def __init__(self, url: str, pool: ConnectionPool, files: BlobStore) -> None:
        self.url = url
        self.where = self.root = display_url(url)
        self._pool = pool
        self._pinned = ThreadTransaction()
        self._files = files
        self.blobs = PgBlobs(files, lambda: self._db)

    @classmethod
    def open_url(cls, url: str, *, create: bool = False, files: BlobStore | None) -> PostgresStore:
        """The store in the database at ``url``, its schema migrated; with ``create``, made in an empty database.

        ``files``: where large blobs live (required). An unreachable server
        or a refused login is a ``RemoteError`` naming the server.
        """
        where = display_url(url)
        if files is None:
            raise _needs_blobs(where)
        with _connect(url, where) as conn, mapped_errors(where):
            if not create:
                schema.check_exists(conn, where)
            schema.migrate(conn, where)
        pool = ConnectionPool(
            url,
            min_size=1,
            max_size=POOL_SIZE,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT},
            timeout=pool_wait(),
            check=ConnectionPool.check_connection,  # a connection cut by a server restart is replaced, not handed out
            name=f"dsexport {where}",
            open=True,
        )
        return cls(url, pool, files)

    @classmethod
    def open_reader_url(cls, url: str, *, files: BlobStore | None) -> PostgresReader:
        return PostgresReader.open_reader_url(url, files=files)

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def reader(self) -> PostgresReader:
        """A reader on a connection of its own, outside the pool, closed with it.

        Why not a pooled one: a reader lives as long as its download, and a
        few slow clients would otherwise hold every pooled connection while
        the API's other calls wait for one.
        """
        return PostgresReader(_connect(self.url, self.where), self.where, self._files, lambda conn: conn.close())

    def iter_pages(self, version_id: str, *args: Any, **kwargs: Any) -> Iterator[list[ExportItem]]:
        """``PageReads.iter_pages`` on a reader of its own (its cursors need the reader's transaction)."""
        reader = self.reader()
        try:
            pages = PostgresReader.iter_pages(reader, version_id, *args, **kwargs)
        except BaseException:
            reader.close()
            raise
        return _closing(reader, pages)

    def records(self) -> Iterator[StoreRecord]:
        """``RecordReads.records`` on a reader of its own (one snapshot, streamed by server-side cursors)."""
        reader = self.reader()
        return _closing(reader, PostgresReader.records(reader))

    def put_blob(self, data: bytes) -> BlobRef:
        """Store ``data`` (deduplicated by SHA-256) and return what identifies it."""
        return self.blobs.put(data)

    def put_blob_stream(self, chunks: Iterable[bytes]) -> BlobRef:
        """Store a stream without holding it: hashed while spooled, then put in place."""
        return self.blobs.put_stream(chunks)


def _closing(reader: PostgresReader, items: Iterator[T]) -> Iterator[T]:
    """``items`` (pages, records), then the reader closed (also when the iteration stops early)."""
    try:
        yield from items
    finally:
        reader.close()

