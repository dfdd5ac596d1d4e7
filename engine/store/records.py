"""A whole store as a stream of typed records: what ``dsexport store copy`` moves between back ends.

A metadata back end dumps itself with ``records()`` (one snapshot, in an
order a loader can follow: users and keys, then per dataset its versions,
labels, splits, then blobs, items with their splits, annotations, item
states and revisions) and loads a stream with ``load_records()``, keeping
every id, hash and timestamp, so the same export from either side is byte
for byte the same. Loading is idempotent (a record already there is
skipped), which is what makes a copy resumable.

Order within a kind is significant where the store keeps an order by
insertion (labels, splits, versions, annotations): records come in that
order and a loader inserts them in it.

Blobs: a :class:`BlobRecord` carries the bytes of a small blob (below
``INLINE_LIMIT``) in ``data``; a large one has ``data`` None and its bytes
are read with the reader's ``open_blob`` and written by the copier before
the record is loaded (``engine.store.copy``).
"""

from __future__ import annotations

import msgspec

__all__ = [
    "AnnotationRecord", "ApiKeyRecord", "BlobRecord", "DatasetRecord", "ItemRecord", "ItemStateRecord",
    "LabelRecord", "RevisionRecord", "SplitRecord", "StoreRecord", "UserRecord", "VersionRecord",
]


class StoreRecord(msgspec.Struct, frozen=True, tag_field="kind"):
    """One row of a store's logical content."""


class UserRecord(StoreRecord, tag="user"):
    id: str
    username: str
    email: str
    name: str
    firstname: str
    password_hash: str
    created_at: str


class ApiKeyRecord(StoreRecord, tag="api_key"):
    key_hash: str
    user_id: str
    created_at: str


class DatasetRecord(StoreRecord, tag="dataset"):
    id: str
    name: str
    description: str
    user_id: str | None
    content_type: str
    multi_label: bool
    default_splits: bool
    created_at: str
    updated_at: str


class VersionRecord(StoreRecord, tag="version"):
    id: str
    dataset_id: str
    name: str
    description: str
    config: str
    created_at: str
    updated_at: str


class LabelRecord(StoreRecord, tag="label"):
    id: str
    version_id: str
    name: str
    description: str
    color: str
    index: int
    shortcut: str
    created_at: str
    updated_at: str


class SplitRecord(StoreRecord, tag="split"):
    id: str
    version_id: str
    name: str
    description: str
    created_at: str
    updated_at: str


class BlobRecord(StoreRecord, tag="blob"):
    sha256: str
    size: int
    crc32: int
    data: bytes | None = None


class ItemRecord(StoreRecord, tag="item"):
    id: str
    version_id: str
    name: str | None
    description: str
    text: str | None
    extension: str | None
    blob_sha256: str | None
    created_at: str
    updated_at: str
    version: int
    split_ids: list[str]
    width: int | None = None
    height: int | None = None


class AnnotationRecord(StoreRecord, tag="annotation"):
    id: str
    version_id: str
    item_id: str
    split_id: str
    label_id: str
    coordinates: str
    created_at: str
    updated_at: str


class ItemStateRecord(StoreRecord, tag="item_state"):
    item_id: str
    version_id: str
    id: str
    name: str | None
    user_id: str
    state: str
    version: int
    created_at: str
    updated_at: str


class RevisionRecord(StoreRecord, tag="revision"):
    version_id: str
    revision: int
