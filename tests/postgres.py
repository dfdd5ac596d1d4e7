"""A real PostgreSQL 15 for the tests: one server per test session on a free loopback port.

The server (``bench.pg.PostgresServer``, shared with the benchmark) is
started the way an operator would start a throwaway one: ``initdb`` (which
refuses to run as root, hence ``runuser -u postgres`` when the tests run as
root) into a temporary folder, then ``pg_ctl start`` with ``fsync=off`` (the
data is thrown away). Each test gets a fresh database, made by ``CREATE
DATABASE ... TEMPLATE template0``; the server is stopped at the end of the
session (``pg_ctl stop -m immediate``, else its postmaster is killed by the
PID it wrote), and its folder removed.

Without PostgreSQL 15 installed, the tests that need it are skipped on a
developer's machine and fail in CI (``CI`` set): ``.ci/run`` installs the
``postgresql-15`` package.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import psycopg
import pytest

from bench.pg import BIN, PASSWORD_USER, USER, PostgresServer, installed

__all__ = ["BIN", "PASSWORD_USER", "USER", "PostgresServer", "load_sqlite_tables", "require_postgres"]


def require_postgres() -> None:
    """Skip (developer machine) or fail (CI) when PostgreSQL 15's programs are missing."""
    if installed():
        return
    if os.environ.get("CI", "").lower() in ("", "0", "false"):
        pytest.skip(f"PostgreSQL 15 is not installed ({BIN}; apt-get install postgresql-15); CI installs it")
    pytest.fail(f"CI is set but PostgreSQL 15 is missing at {BIN}: .ci/run must install the postgresql-15 package")


#: The store's tables in an order that satisfies their references.
TABLES = (
    "datasets", "versions", "labels", "splits", "blobs", "items", "item_splits", "annotations",
    "users", "api_keys", "revisions", "item_states", "archive_sizes",
)
#: Identity columns whose sequences must pass the copied values.
_IDENTITIES = (("versions", "seq"), ("labels", "seq"), ("splits", "seq"), ("blobs", "id"), ("annotations", "seq"))


def load_sqlite_tables(sqlite_file: Path, pg_url: str) -> None:
    """Copy every row of a SQLite store into a freshly created PostgreSQL store, column by column.

    The test's own copy, independent of the product's code: the same ids,
    the same creation order (SQLite's ``rowid`` of annotations becomes ``seq``),
    so an export from either side can be compared byte for byte.
    """
    src = sqlite3.connect(sqlite_file)
    try:
        with psycopg.connect(pg_url) as dst:
            for table in TABLES:
                cols = [r[1] for r in src.execute(f"PRAGMA table_info({table})")]
                select, target = list(cols), list(cols)
                if table == "annotations":
                    select, target = ["rowid", *cols], ["seq", *cols]
                with dst.cursor().copy(f"COPY {table} ({', '.join(target)}) FROM STDIN") as copy:
                    for row in src.execute(f"SELECT {', '.join(select)} FROM {table}"):
                        copy.write_row(row)
            for table, column in _IDENTITIES:
                dst.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), coalesce(max({column}), 0) + 1,"
                    f" false) FROM {table}"
                )
    finally:
        src.close()
