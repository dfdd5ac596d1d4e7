"""The tests' PostgreSQL (``tests/postgres.py``): a real server, one fresh database per test."""

from __future__ import annotations

import psycopg
import pytest

from postgres import PostgresServer, require_postgres


def test_each_test_gets_its_own_empty_database(postgres, pg_url: str) -> None:
    other = postgres.new_database()
    assert other != pg_url
    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE TABLE t (x int)")
        conn.execute("INSERT INTO t VALUES (1)")
        conn.commit()
        version = conn.execute("SHOW server_version").fetchone()[0]
        collation = conn.execute("SELECT datcollate FROM pg_database WHERE datname = current_database()").fetchone()[0]
    assert version.startswith("15.")
    assert collation == "C"  # initdb --no-locale
    with psycopg.connect(other) as conn:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE tablename = 't'").fetchone()[0] == 0


def test_a_restart_cuts_connections_and_the_server_comes_back() -> None:
    require_postgres()
    postgres = PostgresServer()  # its own server: the session's is shared by other tests
    try:
        url = postgres.new_database()
        with psycopg.connect(url, autocommit=True) as conn:
            postgres.restart()
            with pytest.raises(psycopg.OperationalError):
                conn.execute("SELECT 1")
        with psycopg.connect(url) as fresh:
            assert fresh.execute("SELECT 1").fetchone() == (1,)
    finally:
        postgres.stop()
    assert not postgres.folder.exists()
