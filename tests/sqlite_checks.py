"""SQL-level checks of the SQLite back end, each on a connection of its own (so they see committed state only)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from typing import Any

from engine.store import DB_NAME, Store


def sql(store: Store, query: str, args: tuple = ()) -> Any:
    """The first row of ``query``."""
    with closing(sqlite3.connect(store.root / DB_NAME)) as db:
        return db.execute(query, args).fetchone()


def sql_all(store: Store, query: str, args: tuple = ()) -> list[Any]:
    """Every row of ``query``."""
    with closing(sqlite3.connect(store.root / DB_NAME)) as db:
        return db.execute(query, args).fetchall()
