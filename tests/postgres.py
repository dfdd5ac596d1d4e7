"""A real PostgreSQL 15 for the tests: one server per test session on a free loopback port.

The server is started the way an operator would start a throwaway one:
``initdb`` (which refuses to run as root, hence ``runuser -u postgres`` when
the tests run as root) into a temporary folder, then ``pg_ctl start`` with
``fsync=off`` (the data is thrown away). Each test gets a fresh database,
made by ``CREATE DATABASE ... TEMPLATE template0``; the server is stopped at
the end of the session (``pg_ctl stop -m immediate``, else its postmaster
is killed by the PID it wrote), and its folder removed.

Without PostgreSQL 15 installed, the tests that need it are skipped on a
developer's machine and fail in CI (``CI`` set): ``.ci/run`` installs the
``postgresql-15`` package.
"""

from __future__ import annotations

import itertools
import sqlite3
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg
import pytest

__all__ = ["BIN", "PostgresServer", "load_sqlite_tables", "require_postgres"]

#: Where Debian's ``postgresql-15`` package puts the server's programs.
BIN = Path(os.environ.get("DSEXPORT_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
USER = "dsexport"
#: The one role that must log in with a password (every other one is trusted on loopback).
PASSWORD_USER = "dsexport_pw"


def require_postgres() -> None:
    """Skip (developer machine) or fail (CI) when PostgreSQL 15's programs are missing."""
    if (BIN / "initdb").is_file() and (BIN / "pg_ctl").is_file():
        return
    if os.environ.get("CI", "").lower() in ("", "0", "false"):
        pytest.skip(f"PostgreSQL 15 is not installed ({BIN}; apt-get install postgresql-15); CI installs it")
    pytest.fail(f"CI is set but PostgreSQL 15 is missing at {BIN}: .ci/run must install the postgresql-15 package")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """A running PostgreSQL server in a temporary folder; :meth:`stop` ends it and removes the folder."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="dsexport-pg-"))
        self.port = _free_port()
        self._names = itertools.count(1)
        self._as_postgres = os.geteuid() == 0  # initdb refuses root; run the server as ``postgres``
        if self._as_postgres:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run(
            BIN / "initdb", "-D", self.data, "-U", USER, "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync",
        )
        self._require_passwords_of(PASSWORD_USER)
        self.start()

    def _require_passwords_of(self, user: str) -> None:
        """Everyone is trusted on loopback except ``user``, who must give a password (the wrong-password tests)."""
        hba = self.data / "pg_hba.conf"
        hba.write_text(f"host all {user} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())

    def password_user(self, password: str) -> str:
        """Make (or reset) :data:`PASSWORD_USER`, a superuser who logs in with ``password`` only."""
        with self.admin() as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (PASSWORD_USER,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            conn.execute(f"{verb} ROLE {PASSWORD_USER} LOGIN SUPERUSER PASSWORD '{password}'")
        return PASSWORD_USER

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def _run(self, *argv: object, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(a) for a in argv]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            log = self.folder / "pg.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{' '.join(command)} failed: {result.stderr or result.stdout}\n{tail}")
        return result

    def start(self) -> None:
        """Start (or restart) the server on :attr:`port`; returns once it accepts connections."""
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off"
        self._run(BIN / "pg_ctl", "-D", self.data, "-l", self.folder / "pg.log", "-w", "start", "-o", options)

    def restart(self) -> None:
        """Stop at once (every connection is cut, as in a crash) and start again."""
        self._run(BIN / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        self.start()

    def url(self, database: str = "postgres", *, user: str = USER, password: str | None = None) -> str:
        auth = user if password is None else f"{user}:{password}"
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"

    def admin(self) -> psycopg.Connection:
        """An autocommit connection to the ``postgres`` database, for setting up tests."""
        return psycopg.connect(self.url(), autocommit=True)

    def new_database(self, prefix: str = "t") -> str:
        """A fresh, empty database; returns its URL."""
        name = f"{prefix}{next(self._names)}"
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.url(name)

    def stop(self) -> None:
        """Stop the server (immediately: the data is thrown away) and remove its folder."""
        try:
            result = self._run(BIN / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop", check=False)
            if result.returncode != 0:
                self._kill_postmaster()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def _kill_postmaster(self) -> None:
        pid_file = self.data / "postmaster.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().split()[0])
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


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
