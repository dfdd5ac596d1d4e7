"""PostgreSQL connections of a store: the pool, one connection per transaction, snapshots, errors.

Why the SQLite back end's queries run here too: its catalog, item and
account modules speak plain SQL with ``?`` marks, which PostgreSQL also
understands once three spellings are changed (:func:`to_postgres`). So the
PostgreSQL back end reuses those modules as they are and overrides only
what PostgreSQL does differently (schema, bulk loads by ``COPY``, pages
from a server-side cursor, upserts): one copy of the rules, one of the
queries.

Threads. psycopg 3's sync API, called from worker threads (its async API
does not run under trio). A statement outside a transaction borrows a
connection from the store's ``psycopg_pool.ConnectionPool`` and gives it
back at once (results are fetched first); a transaction keeps one
connection for the calling thread until it ends. A reader owns one
connection for its life, so its snapshot (``REPEATABLE READ``) spans every
call made through it, whichever thread makes it.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from engine.errors import InvalidInput, RemoteError
from engine.store.address import StoreAddress
from engine.store.sqlite.db import SqliteReads, SqliteWrites

__all__ = [
    "PgConnection", "PgReads", "PgWrites", "ThreadTransaction", "display_url", "mapped_errors", "server_reason", "to_postgres",
]

_ROWID = re.compile(r"\browid\b")
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)


@functools.lru_cache(maxsize=1024)
def to_postgres(sql: str) -> str:
    """A statement of the shared (SQLite-spelled) queries as PostgreSQL spells it.

    ``?`` marks become ``%s``; ``rowid`` (creation order) becomes the ``seq``
    identity column the PostgreSQL schema gives the tables that need it;
    ``INSERT OR IGNORE`` becomes ``ON CONFLICT DO NOTHING``.
    """
    out = _ROWID.sub("seq", sql.replace("%", "%%").replace("?", "%s"))
    head = out.lstrip()
    if head.upper().startswith("INSERT OR IGNORE "):
        out = "INSERT " + head[len("INSERT OR IGNORE ") :] + " ON CONFLICT DO NOTHING"
    return out


def display_url(url: str) -> str:
    """``url`` with its password masked (for messages and logs), as every store address shows itself,
    also where libpq takes one in the query (``?password=...``)."""
    return _QUERY_PASSWORD.sub(r"\1***", StoreAddress(url).display())


@contextmanager
def mapped_errors(where: str) -> Iterator[None]:
    """Driver errors as ours: the server gone or refusing us is a ``RemoteError`` naming it (never
    the password); a row the server rejects (a constraint, a NUL in a text) is ``InvalidInput``.

    Anything else (a query of ours the server cannot run) is a bug and propagates as it is.
    """
    try:
        yield
    except PoolTimeout as exc:
        raise RemoteError(
            f"the PostgreSQL store at {where} failed: {server_reason(exc)} (is the database up and accepting connections?)"
        ) from exc
    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
        raise RemoteError(f"the PostgreSQL store at {where} failed: {server_reason(exc)}") from exc
    except (psycopg.IntegrityError, psycopg.DataError) as exc:
        raise InvalidInput(f"the PostgreSQL store at {where} refused the change: {server_reason(exc)}") from exc


def server_reason(exc: psycopg.Error) -> str:
    """The server's own words (primary message and detail), else the driver's first line."""
    diag = exc.diag
    if diag.message_primary:
        return diag.message_primary + (f" ({diag.message_detail})" if diag.message_detail else "")
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class _Result:
    """A statement's rows, fetched before its connection went back to the pool."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[tuple], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def fetchone(self) -> Any:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[Any]:
        return self._rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)


class PgConnection:
    """The calls the shared queries make on a connection (``execute``/``executemany``), on psycopg.

    Over ``conn`` when given (a transaction's or a reader's connection),
    else over a connection borrowed from ``pool`` for each statement.
    """

    def __init__(self, where: str, *, conn: psycopg.Connection | None = None, pool: ConnectionPool | None = None):
        self.where = where
        self.conn = conn
        self._pool = pool

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        with mapped_errors(self.where):
            if self.conn is not None:
                yield self.conn
            else:
                assert self._pool is not None
                with self._pool.connection() as conn:
                    yield conn

    def execute(self, sql: str, args: Sequence[Any] = ()) -> _Result:
        with self._connection() as conn:
            cur = conn.execute(to_postgres(sql), args)
            return _Result(cur.fetchall() if cur.description else [], cur.rowcount)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> _Result:
        rows = list(rows)
        if not rows:
            return _Result([], 0)
        with self._connection() as conn:
            cur = conn.cursor()
            cur.executemany(to_postgres(sql), rows)
            return _Result([], cur.rowcount)


class PgReads(SqliteReads):
    """``SqliteReads`` on PostgreSQL: :attr:`_db` is a :class:`PgConnection`, and a snapshot is
    a ``REPEATABLE READ READ ONLY`` transaction (a reader's; the writer's is a no-op, as in SQLite)."""

    where: str

    @property
    def _db(self) -> PgConnection:  # type: ignore[override]
        raise NotImplementedError

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        if not self._snapshots:
            yield
            return
        db = self._db
        if self._snapshot_depth == 0:
            db.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            # An export reads its cursors to the end: plan them for all rows, not the first tenth
            # (PostgreSQL's default for cursors); measured 20-30 % faster on a FOLDERS export.
            db.execute("SET LOCAL cursor_tuple_fraction = 1")
        self._snapshot_depth += 1
        try:
            yield
        finally:
            self._snapshot_depth -= 1
            if self._snapshot_depth == 0 and db.conn is not None and not db.conn.closed:
                try:
                    db.execute("COMMIT")
                except RemoteError:
                    if not db.conn.broken:
                        raise  # a broken connection has no snapshot left to end


class ThreadTransaction(threading.local):
    """The calling thread's transaction: its connection and how deeply transactions are nested."""

    db: PgConnection | None = None
    depth: int = 0


class PgWrites(PgReads, SqliteWrites):
    """Write transactions: each on one pooled connection that the calling thread keeps until it ends."""

    _pool: ConnectionPool
    _pinned: ThreadTransaction

    @property
    def _db(self) -> PgConnection:  # type: ignore[override]
        pinned = self._pinned.db
        return pinned if pinned is not None else PgConnection(self.where, pool=self._pool)

    @contextmanager
    def _tx(self, *, checked: bool = True) -> Iterator[PgConnection]:  # type: ignore[override]
        """One write transaction (``checked`` is SQLite's; PostgreSQL always checks references).

        Nested calls on the same thread join the outer transaction.
        """
        pinned = self._pinned
        if pinned.db is not None:
            pinned.depth += 1
            try:
                yield pinned.db
            finally:
                pinned.depth -= 1
            return
        with mapped_errors(self.where), self._pool.connection() as conn, conn.transaction():
            pinned.db, pinned.depth = PgConnection(self.where, conn=conn), 1
            try:
                yield pinned.db
            finally:
                pinned.db, pinned.depth = None, 0
