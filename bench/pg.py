"""A throwaway PostgreSQL 15 server on a free loopback port, for the tests and the benchmark.

Started the way an operator starts a scratch one: ``initdb`` into a fresh
folder (as the ``postgres`` user when run as root: ``initdb`` refuses root),
then ``pg_ctl start`` listening on 127.0.0.1 only. :meth:`PostgresServer.stop`
stops it at once and removes the folder. ``fsync`` is off unless asked for
(``durable=True``): test data is thrown away, and a benchmark says which it
measured.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg

__all__ = ["BIN", "PASSWORD_USER", "USER", "PostgresServer", "free_port", "installed"]

#: Where Debian's ``postgresql-15`` package puts the server's programs.
BIN = Path(os.environ.get("DSEXPORT_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
USER = "dsexport"
#: The one role that must log in with a password (every other one is trusted on loopback).
PASSWORD_USER = "dsexport_pw"


def installed() -> bool:
    """Whether PostgreSQL 15's server programs are where :data:`BIN` says."""
    return (BIN / "initdb").is_file() and (BIN / "pg_ctl").is_file()


def free_port() -> int:
    """A loopback port nobody listens on (now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """A running PostgreSQL server in a temporary folder; :meth:`stop` ends it and removes the folder."""

    def __init__(self, *, durable: bool = False, parent: Path | None = None) -> None:
        self.durable = durable
        self.folder = Path(tempfile.mkdtemp(prefix="dsexport-pg-", dir=parent))
        self.port = free_port()
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
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder}"
        if not self.durable:
            options += " -c fsync=off"
        self._run(BIN / "pg_ctl", "-D", self.data, "-l", self.folder / "pg.log", "-w", "start", "-o", options)

    def halt(self) -> None:
        """Stop at once (every connection is cut, as in a crash), keeping the data: :meth:`start` brings it back."""
        self._run(BIN / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")

    def restart(self) -> None:
        """:meth:`halt`, then :meth:`start` again."""
        self.halt()
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
