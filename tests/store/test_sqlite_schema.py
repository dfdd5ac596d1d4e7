"""The SQLite back end: opening a store folder, pragmas, and the numbered schema migrations."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from engine.errors import InvalidInput, NotFound
from engine.store import (
    DB_NAME,
    SCHEMA_VERSION,
    PageContent,
    Store,
    StoreReader,
)
from engine.store.sqlite.db import connect
from sqlite_checks import sql


# -- opening ------------------------------------------------------------------


def test_open_without_create_on_an_empty_folder_says_how_to_make_one(tmp_path: Path):
    with pytest.raises(NotFound, match=r"no store at .*dsexport demo --store"):
        Store.open(tmp_path / "nothing", create=False)
    assert not (tmp_path / "nothing").exists()


def test_a_file_that_is_not_a_store_is_a_clear_error(tmp_path: Path):
    (tmp_path / "store.sqlite3").write_bytes(b"this is not a database" * 100)
    with pytest.raises(InvalidInput, match="is not a usable dsexport store"):
        Store.open(tmp_path, create=False)


def test_reopen_keeps_data_and_settings(tmp_path: Path):
    with Store.open(tmp_path) as store:
        ds = store.create_dataset("d", "text")
    with closing(connect(tmp_path / DB_NAME, read_only=False)) as db:  # how the store connects
        mode = db.execute("PRAGMA journal_mode").fetchone()[0]
        fks = db.execute("PRAGMA foreign_keys").fetchone()[0]
    assert (mode, fks) == ("wal", 1)
    with Store.open(tmp_path, create=False) as store:
        assert [d.id for d in store.list_datasets()] == [ds.id]
        assert sql(store, "PRAGMA user_version")[0] == SCHEMA_VERSION == 4


# -- numbered migrations ---------------------------------------------------------

# The schema as the previous release wrote it, frozen here: version 1 (the export tables),
# plus the HTTP service's tables, which that release created IF NOT EXISTS on every open.
_RELEASED_V1 = """
CREATE TABLE datasets (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT NOT NULL, user_id TEXT,
    content_type TEXT NOT NULL, multi_label INTEGER NOT NULL, default_splits INTEGER NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE versions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
    dataset_id TEXT NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    name TEXT NOT NULL, description TEXT NOT NULL, config TEXT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE INDEX versions_dataset ON versions(dataset_id);
CREATE TABLE labels (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
    version_id TEXT NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
    name TEXT NOT NULL, description TEXT NOT NULL, color TEXT NOT NULL, idx INTEGER NOT NULL,
    shortcut TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    UNIQUE (version_id, name));
CREATE TABLE splits (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
    version_id TEXT NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
    name TEXT NOT NULL, description TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    UNIQUE (version_id, name));
CREATE TABLE blobs (
    id INTEGER PRIMARY KEY, sha256 TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL, crc32 INTEGER NOT NULL, data BLOB);
CREATE TABLE items (
    id TEXT PRIMARY KEY, version_id TEXT NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
    name TEXT, description TEXT NOT NULL, text TEXT, extension TEXT,
    blob_id INTEGER REFERENCES blobs(id),
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, version INTEGER NOT NULL);
CREATE INDEX items_version ON items(version_id, id);
CREATE TABLE item_splits (
    split_id TEXT NOT NULL REFERENCES splits(id) ON DELETE CASCADE,
    item_id TEXT NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    PRIMARY KEY (split_id, item_id)) WITHOUT ROWID;
CREATE INDEX item_splits_item ON item_splits(item_id);
CREATE TABLE annotations (
    id TEXT PRIMARY KEY, version_id TEXT NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
    item_id TEXT NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    split_id TEXT NOT NULL REFERENCES splits(id) ON DELETE CASCADE,
    label_id TEXT NOT NULL REFERENCES labels(id) ON DELETE CASCADE,
    coordinates TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE INDEX annotations_split_item ON annotations(split_id, item_id);
CREATE INDEX annotations_item ON annotations(item_id);
PRAGMA user_version = 1;
"""
_RELEASED_SERVICE_TABLES = """
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE, email TEXT NOT NULL, name TEXT NOT NULL,
    firstname TEXT NOT NULL, password_hash TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS api_keys (
    key_hash TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS revisions (
    version_id TEXT PRIMARY KEY, revision INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS item_states (
    item_id TEXT NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    version_id TEXT NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
    id TEXT NOT NULL, name TEXT, user_id TEXT NOT NULL, state TEXT NOT NULL, version INTEGER NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (item_id, version_id));
CREATE INDEX IF NOT EXISTS datasets_user ON datasets(user_id);
CREATE TABLE IF NOT EXISTS archive_sizes (
    etag TEXT PRIMARY KEY, version_id TEXT NOT NULL, revision INTEGER NOT NULL, size INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS archive_sizes_version ON archive_sizes(version_id);
"""


def _released_store(root: Path, *, service_tables: bool) -> None:
    """A store file as the previous release left it: one dataset with a version, a split, a label, an item."""
    root.mkdir(parents=True)
    (root / "blobs").mkdir()
    with closing(sqlite3.connect(root / DB_NAME, isolation_level=None)) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(_RELEASED_V1 + (_RELEASED_SERVICE_TABLES if service_tables else ""))
        now = "2026-01-01T00:00:00.000Z"
        db.execute("INSERT INTO datasets VALUES ('d1', 'old', '', NULL, 'text', 0, 0, ?, ?)", (now, now))
        db.execute("INSERT INTO versions (id, dataset_id, name, description, config, created_at, updated_at)"
                   " VALUES ('v1', 'd1', 'v1', '', '', ?, ?)", (now, now))
        db.execute("INSERT INTO splits (id, version_id, name, description, created_at, updated_at)"
                   " VALUES ('s1', 'v1', 'train', '', ?, ?)", (now, now))
        db.execute("INSERT INTO labels (id, version_id, name, description, color, idx, shortcut, created_at,"
                   " updated_at) VALUES ('l1', 'v1', 'pos', '', '#1f77b4', 0, '', ?, ?)", (now, now))
        db.execute("INSERT INTO items VALUES ('i1', 'v1', 'a', '', 'hello', '', NULL, ?, ?, 1)", (now, now))
        db.execute("INSERT INTO item_splits VALUES ('s1', 'i1')")
        db.execute("INSERT INTO annotations VALUES ('a1', 'v1', 'i1', 's1', 'l1', '', ?, ?)", (now, now))


@pytest.mark.parametrize("service_tables", [True, False], ids=["with-service-tables", "export-tables-only"])
def test_a_store_of_the_previous_release_opens_and_migrates(tmp_path: Path, service_tables: bool):
    root = tmp_path / "old"
    _released_store(root, service_tables=service_tables)
    with Store.open(root, create=False) as store:
        assert sql(store, "PRAGMA user_version")[0] == SCHEMA_VERSION
        [page] = list(store.iter_pages("v1", content=PageContent.NONE))
        assert [(i.id, i.text, i.split.name if i.split else None, [a.label.name for a in i.annotations])
                for i in page] == [("i1", "hello", "train", ["pos"])]
        assert (page[0].width, page[0].height) == (None, None)  # migration 3: sizes unknown until measured
        assert store.get_item("i1").width is None
        user, key = store.create_user("ada", "secret")  # the service's tables are there
        assert store.user_for_key(key) == user["id"]
        store.remember_archive_size("etag", "v1", store.revision("v1"), 123)
        assert store.archive_size("etag") == 123
    with closing(sqlite3.connect(root / DB_NAME)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    with Store.open(root, create=False) as store:  # a second open has nothing left to do
        assert store.user_for_key(key) == user["id"]


def test_a_reader_never_migrates_and_names_the_command_that_does(tmp_path: Path):
    root = tmp_path / "old"
    _released_store(root, service_tables=True)
    with pytest.raises(InvalidInput, match=r"schema version 1, older than .*`dsexport init --store .*old`"):
        StoreReader.open(root)
    with closing(sqlite3.connect(root / DB_NAME)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 1  # untouched
    Store.open(root, create=False).close()  # what `dsexport init` does on an existing store
    with StoreReader.open(root) as reader:
        assert reader.count_items("v1") == 1


def test_a_reader_on_a_missing_store_says_how_to_make_one(tmp_path: Path):
    with pytest.raises(NotFound, match=r"no store at .*dsexport init --store"):
        StoreReader.open(tmp_path / "nothing")
    assert not (tmp_path / "nothing").exists()


def test_a_store_newer_than_the_code_is_refused_by_writer_and_reader(tmp_path: Path):
    Store.open(tmp_path).close()
    with closing(sqlite3.connect(tmp_path / DB_NAME)) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    for opener in (lambda: Store.open(tmp_path, create=False), lambda: StoreReader.open(tmp_path)):
        with pytest.raises(InvalidInput, match=rf"schema version {SCHEMA_VERSION + 1}.*upgrade dsexport"):
            opener()


def test_a_failed_migration_leaves_the_store_at_its_last_complete_version(tmp_path: Path, monkeypatch):
    from engine.store.sqlite import schema

    root = tmp_path / "old"
    _released_store(root, service_tables=False)
    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS[:1], "CREATE TABLE users (id TEXT); BROKEN SQL"))
    with pytest.raises(sqlite3.OperationalError):
        Store.open(root, create=False)
    with closing(sqlite3.connect(root / DB_NAME)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 1
        assert db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'users'").fetchone()[0] == 0


