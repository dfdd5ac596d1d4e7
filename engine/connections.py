"""One SQLite connection per thread for a store that many threads use at once.

Why: a connection shared between threads shares its transaction. A thread
reading it sees another thread's uncommitted rows (an item upload once took
a blob for stored that an import was about to roll back), and every call
must take one lock, so a long import froze every other request. With a
connection per thread, SQLite's WAL lets readers run beside a writer and
each sees committed rows only.

A thread's connection is opened on its first use and closed when the thread
ends (thread pools retire idle threads) or when the store is closed.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections.abc import Callable

__all__ = ["ThreadConnection", "ThreadConnections"]


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
