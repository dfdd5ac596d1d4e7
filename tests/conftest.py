"""Fixtures shared across test modules; helper modules live beside them in tests/ (pytest's ``pythonpath``)."""

from __future__ import annotations

import pytest

from servers import Server, store_with_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A served demo store (30 items per dataset) owned by alice: ``(server, made datasets)``."""
    folder = tmp_path_factory.mktemp("export")
    store, key, made = store_with_demo(folder, "alice")
    srv = Server(store)
    srv.keys = {"alice": key}
    yield srv, made
    srv.stop()


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory):
    """One SeaweedFS S3 server for the whole run (started on first use, killed at the end)."""
    from seaweed import start_seaweed

    server = start_seaweed(tmp_path_factory.mktemp("seaweed"))
    yield server
    server.kill()


@pytest.fixture()
def s3_env(seaweed, monkeypatch):
    """The AWS variables pointing at the session's SeaweedFS, set for one test."""
    for name, value in seaweed.env().items():
        monkeypatch.setenv(name, value)
    return seaweed


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL 15 for the whole session (``tests/postgres.py``), stopped at the end."""
    from postgres import PostgresServer, require_postgres

    require_postgres()
    server = PostgresServer()
    yield server
    server.stop()


@pytest.fixture()
def pg_url(postgres) -> str:
    """The URL of a fresh, empty database on the session's PostgreSQL."""
    return postgres.new_database()
