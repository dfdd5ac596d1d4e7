"""Store back ends by URL scheme, imported only when a store of theirs is opened.

A store URL names its metadata back end; a blob URL its blob back end:

- ``DIR`` (a path, or ``sqlite:DIR``): SQLite in ``DIR/store.sqlite3``, large
  blobs as files in ``DIR/blobs`` (small ones inline in SQLite).
- ``postgresql://USER@HOST:PORT/DB`` (or ``postgres://``): PostgreSQL, small
  blobs inline in its ``blobs`` table, large ones in the blob store named
  alongside (it has no folder of its own).
- ``memory:`` (blobs only): blobs in a dict, for tests.
- ``s3://bucket/prefix`` (blobs only): an S3-compatible bucket, small blobs
  packed (``engine.store.blobs.s3``); endpoint and credentials from the
  standard ``AWS_*`` variables.

Adding a back end is one module that implements ``engine.store.api``, one
line in :data:`METADATA` or :data:`BLOBS`, and a subclass of the contract
suite in ``engine.store.testing``. A back end class is handed the whole URL
(scheme included): a metadata class provides ``open_url(url, *, create,
files)`` (the writer) and ``open_reader_url(url, *, files)`` (a read-only
reader), where ``files`` is the blob store for its large content or None for
its own default; a blob class provides ``from_url(url)``. An unknown scheme, or one whose optional
dependency is missing, is an ``InvalidInput`` that says what to install.
"""

from __future__ import annotations

import importlib
import os
from typing import Any, NamedTuple

from engine.errors import InvalidInput
from engine.store.api import BlobStore, MetadataReader

__all__ = ["BLOBS", "METADATA", "Backend", "open_blobs", "open_reader", "open_store", "split_url"]


class Backend(NamedTuple):
    """Where a back end lives (``module:attribute``) and what to install if its import fails."""

    target: str
    install: str = ""


#: Metadata back ends by scheme ("" is a plain path).
METADATA: dict[str, Backend] = {
    "": Backend("engine.store.sqlite:Store"),
    "sqlite": Backend("engine.store.sqlite:Store"),
    "postgresql": Backend("engine.store.postgres:PostgresStore", install="'psycopg[binary]' psycopg_pool"),
    "postgres": Backend("engine.store.postgres:PostgresStore", install="'psycopg[binary]' psycopg_pool"),
}

#: Blob back ends by scheme ("" is a plain path: a folder of files).
BLOBS: dict[str, Backend] = {
    "": Backend("engine.store.blobs.local:LocalBlobs"),
    "file": Backend("engine.store.blobs.local:LocalBlobs"),
    "memory": Backend("engine.store.blobs.memory:MemoryBlobs"),
    "s3": Backend("engine.store.blobs.s3:S3Blobs", install="'dsexport[s3]'"),
}


def split_url(url: str | os.PathLike[str]) -> tuple[str, str]:
    """(scheme, rest); a path (also a Windows drive letter) has the scheme ""."""
    text = os.fspath(url)
    scheme, colon, rest = text.partition(":")
    if not colon or len(scheme) < 2 or not scheme.isalnum():
        return "", text
    return scheme.lower(), rest.removeprefix("//")


def _load(table: dict[str, Backend], kind: str, scheme: str) -> Any:
    backend = table.get(scheme)
    if backend is None:
        known = ", ".join(f"{s}:" for s in table if s) or "none"
        raise InvalidInput(f"no {kind} back end for {scheme!r} URLs; a path or one of: {known}")
    module, _, attribute = backend.target.partition(":")
    try:
        return getattr(importlib.import_module(module), attribute)
    except ImportError as exc:
        hint = f"; install it with `pip install {backend.install}`" if backend.install else ""
        raise InvalidInput(f"the {scheme}: {kind} back end is not available ({exc}){hint}") from exc


def open_blobs(url: str | os.PathLike[str]) -> BlobStore:
    """The blob back end ``url`` names (a folder path, ``file:PATH``, ``memory:`` or ``s3://bucket/prefix``)."""
    scheme, _ = split_url(url)
    return _load(BLOBS, "blob", scheme).from_url(os.fspath(url))


def open_store(url: str | os.PathLike[str], *, create: bool = True, blobs: str | None = None) -> Any:
    """The metadata store ``url`` names (the writer), with its large blobs in ``blobs`` (default: the back end's own)."""
    scheme, _ = split_url(url)
    cls = _load(METADATA, "store", scheme)
    return cls.open_url(os.fspath(url), create=create, files=None if blobs is None else open_blobs(blobs))


def open_reader(url: str | os.PathLike[str], *, blobs: str | None = None) -> MetadataReader:
    """A read-only reader of the store ``url`` names; it never creates or migrates the store."""
    scheme, _ = split_url(url)
    cls = _load(METADATA, "store", scheme)
    return cls.open_reader_url(os.fspath(url), files=None if blobs is None else open_blobs(blobs))
