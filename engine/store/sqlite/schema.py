"""The SQLite schema as numbered migrations on ``PRAGMA user_version``.

Migration ``n`` takes a store from version ``n - 1`` to ``n``; the writer
applies the missing ones when it opens a store, each in one transaction
taken with ``BEGIN IMMEDIATE`` (so two processes opening an old store at
once migrate it once). Readers never migrate: :func:`check_readable`
refuses an older store and names the command that migrates it.

Add a migration by appending to :data:`MIGRATIONS`; never edit a released one.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from engine.errors import InvalidInput

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "check_readable", "check_version", "migrate"]

# Export order lives in the keys: labels (idx, seq), splits seq, items by id within
# item_splits' primary key, annotations by rowid (creation) under (split_id, item_id).
# Items point at blobs by the blob row's integer id, not by hash: an export then reads
# blobs in row order instead of probing the hash index at random (150 k vs 370 k rows/s
# on a million 1 KiB blobs); sha256 stays the blob's unique content address.
_V1_EXPORT_TABLES = """
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
"""

# The HTTP service's tables. Stores of earlier releases at version 1 may have them
# already (they were created IF NOT EXISTS on every open), hence IF NOT EXISTS here.
_V2_SERVICE_TABLES = """
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

# Image sizes in pixels, measured from the content at ingest (COCO's absolute boxes need them).
# NULL: not an image, or stored before this migration (`dsexport store measure-images` fills them in).
_V3_IMAGE_SIZES = """
ALTER TABLE items ADD COLUMN width INTEGER;
ALTER TABLE items ADD COLUMN height INTEGER;
"""

# Small blobs packed into pack objects of the blob back end (S3): the blob's bytes are
# ``size`` bytes at ``pack_offset`` of pack ``pack`` (``data`` is NULL). ``retired_packs``
# records when compaction stopped using a pack: the object is deleted only a grace
# period later, so exports that began before keep reading it (engine.store.compact).
_V4_PACKED_BLOBS = """
ALTER TABLE blobs ADD COLUMN pack TEXT;
ALTER TABLE blobs ADD COLUMN pack_offset INTEGER;
CREATE INDEX blobs_pack ON blobs(pack) WHERE pack IS NOT NULL;
CREATE TABLE retired_packs (pack TEXT PRIMARY KEY, retired_at REAL NOT NULL) WITHOUT ROWID;
"""

#: Migration n (1-based) is ``MIGRATIONS[n - 1]``.
MIGRATIONS: tuple[str, ...] = (_V1_EXPORT_TABLES, _V2_SERVICE_TABLES, _V3_IMAGE_SIZES, _V4_PACKED_BLOBS)
SCHEMA_VERSION = len(MIGRATIONS)


def _statements(script: str) -> list[str]:
    """The statements of a migration (none of ours holds a ``;`` inside a statement)."""
    return [s for s in script.split(";") if s.strip()]


def migrate(db: sqlite3.Connection, path: Path) -> int:
    """Bring the store to :data:`SCHEMA_VERSION`; returns the version it had. Refuses a newer store.

    Each migration is one transaction: a failure leaves the store at the
    last version that was completed.
    """
    first = db.execute("PRAGMA user_version").fetchone()[0]
    _refuse_newer(first, path)
    while True:
        db.execute("BEGIN IMMEDIATE")
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]  # another process may have migrated
            if version >= SCHEMA_VERSION:
                db.execute("COMMIT")
                return first
            for statement in _statements(MIGRATIONS[version]):
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {version + 1}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")


def check_readable(db: sqlite3.Connection, path: Path, root: Path) -> None:
    """A reader's check: the store is at this code's schema version (readers never migrate)."""
    check_version(db.execute("PRAGMA user_version").fetchone()[0], SCHEMA_VERSION, str(path), str(root))


def check_version(version: int, current: int, where: str, store: str) -> None:
    """A reader's check of a store's schema ``version`` against this code's ``current`` one (any back end).

    ``where`` names the database in messages, ``store`` what ``--store`` takes.
    """
    _refuse_newer(version, where, current)
    if version < current:
        raise InvalidInput(
            f"{where} has schema version {version}, older than this dsexport's {current};"
            f" upgrade it with `dsexport init --store {store}` (it migrates the store in place)"
        )


def _refuse_newer(version: int, where: str | Path, current: int = SCHEMA_VERSION) -> None:
    if version > current:
        raise InvalidInput(
            f"{where} has schema version {version}; this dsexport reads versions up to {current}:"
            " upgrade dsexport"
        )
