"""SQLite connections of a store: pragmas, one connection per thread, transactions and snapshots.

Why one connection per thread: a connection shared between threads shares
its transaction. A thread reading it sees another thread's uncommitted rows
(an item upload once took a blob for stored that an import was about to
roll back), and every call must take one lock, so a long import froze every
other request. With a connection per thread, SQLite's WAL lets readers run
beside a writer and each sees committed rows only.

A thread's connection is opened on its first use and closed when the thread
ends (thread pools retire idle threads) or when the store is closed.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import InvalidInput

if TYPE_CHECKING:
    from engine.store.sqlite.blob_index import SqliteBlobs

__all__ = ["THREAD_CACHE_KIB", "SqliteReads", "SqliteWrites", "ThreadConnection", "ThreadConnections", "connect"]

#: Page cache of the connections a store opens for further threads (the first one, which bulk
#: loads from the CLI use, keeps 32 MiB): a server has dozens of worker threads.
THREAD_CACHE_KIB = 8192


def connect(path: Path, *, read_only: bool, cache_kib: int | None = None) -> sqlite3.Connection:
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
        db.execute("PRAGMA user_version").fetchone()  # reads the header: a file that is no database fails here
    except sqlite3.DatabaseError as exc:
        raise InvalidInput(f"{path} is not a usable dsexport store: {exc}") from exc
    return db


class ThreadConnection:
    """A thread's connection and how deep that thread is in nested write transactions."""

    __slots__ = ("__weakref__", "db", "tx_depth")

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.tx_depth = 0


class ThreadConnections:
    """Hands each thread its own connection, made by ``open_connection``."""

    def __init__(self, open_connection: Callable[[], sqlite3.Connection], first: sqlite3.Connection) -> None:
        self._open = open_connection
        self._local = threading.local()
        self._guard = threading.Lock()
        self._live: weakref.WeakSet[ThreadConnection] = weakref.WeakSet()
        self._adopt(first)

    def current(self) -> ThreadConnection:
        """The calling thread's connection, opened now if it has none yet."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._adopt(self._open())
        return conn

    def close(self) -> None:
        """Close every thread's connection (the store is closing; no thread may use it after)."""
        with self._guard:
            live = list(self._live)
        for conn in live:
            conn.db.close()

    def _adopt(self, db: sqlite3.Connection) -> ThreadConnection:
        conn = ThreadConnection(db)
        # Closed when the thread's local storage goes (the thread ended), not left to the GC's timing.
        weakref.finalize(conn, db.close)
        with self._guard:
            self._live.add(conn)
        self._local.conn = conn
        return conn


class SqliteReads:
    """Query helpers and snapshots over the connection :attr:`_db` gives (the base of every SQLite mixin)."""

    root: Path
    blobs: SqliteBlobs
    _snapshots: bool = False  # whether iter_pages holds one read transaction (a reader's own connection)
    _snapshot_depth: int = 0

    @property
    def _db(self) -> sqlite3.Connection:
        raise NotImplementedError

    def _one(self, sql: str, args: tuple = ()) -> Any:
        return self._db.execute(sql, args).fetchone()

    def _all(self, sql: str, args: tuple = ()) -> list[Any]:
        return self._db.execute(sql, args).fetchall()

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


class SqliteWrites(SqliteReads):
    """Write transactions on the calling thread's connection, queued on one lock."""

    _lock: threading.RLock
    _connections: ThreadConnections

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything the store does inside commits together or not at all; nested calls join it.

        An exception inside rolls the whole unit back and propagates.
        """
        with self._tx():
            yield

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
            " ON CONFLICT(version_id) DO UPDATE SET revision = revisions.revision + 1",
            (version_id,),
        )
