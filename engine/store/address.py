"""Where a store lives: its metadata URL and, optionally, its blob URL, as one picklable value.

Everything that opens a store (the CLI, the HTTP server, an export's
source, a Ray worker) carries a :class:`StoreAddress` rather than a path, so
a store can be a folder (SQLite, content beside it) as well as a database
plus a bucket. The value is what a user typed; nothing is opened until
:meth:`StoreAddress.open` or :meth:`StoreAddress.reader` is called, in the
process (and thread) that uses the store.
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import msgspec

from engine.store.api import MetadataReader

__all__ = ["DEFAULT_STORE", "StoreAddress"]

DEFAULT_STORE = "dsexport-data"
"""The store a command uses with neither ``--store`` nor ``$DSEXPORT_STORE``."""


class StoreAddress(msgspec.Struct, frozen=True):
    """A store's metadata URL and blob URL.

    ``metadata``: a folder path (SQLite in it), ``sqlite:PATH``, or a
    database URL such as ``postgresql://USER@HOST:PORT/DB``.
    ``blobs``: None for the metadata back end's own default (a SQLite store
    keeps content in its folder's ``blobs/``), else a blob URL: a folder
    path, ``file:PATH``, ``memory:`` or ``s3://bucket/prefix``.
    """

    metadata: str
    blobs: str | None = None

    @classmethod
    def of(cls, value: StoreAddress | str | os.PathLike[str]) -> StoreAddress:
        """``value`` as an address: an address as it is, a path or URL with the default blobs."""
        return value if isinstance(value, StoreAddress) else cls(os.fspath(value))

    @classmethod
    def from_options(cls, store: str | os.PathLike[str] | None, blobs: str | None) -> StoreAddress:
        """What ``--store`` and ``--blobs`` name, else ``$DSEXPORT_STORE`` / ``$DSEXPORT_BLOBS``, else ``./dsexport-data``."""
        metadata = os.fspath(store) if store is not None else os.environ.get("DSEXPORT_STORE") or DEFAULT_STORE
        return cls(metadata, blobs if blobs is not None else os.environ.get("DSEXPORT_BLOBS") or None)

    def open(self, *, create: bool = False) -> Any:
        """The writer (a ``MetadataStore``): it migrates an older schema; ``create`` makes an absent store."""
        from engine.store.registry import open_store

        return open_store(self.metadata, create=create, blobs=self.blobs)

    def reader(self) -> MetadataReader:
        """A read-only reader for one export's snapshot; it never creates or migrates anything."""
        from engine.store.registry import open_reader

        return open_reader(self.metadata, blobs=self.blobs)

    def display(self) -> str:
        """The address for messages and logs, with any password in it replaced by ``***``."""
        shown = _without_password(self.metadata)
        return shown if self.blobs is None else f"{shown} (content in {_without_password(self.blobs)})"


def _without_password(url: str) -> str:
    """``url`` with its password masked, in the user part or as ``password=`` in the query (libpq takes both)."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    if parts.password is not None:
        host = parts.netloc.rpartition("@")[2]
        parts = parts._replace(netloc=f"{parts.username or ''}:***@{host}")
    if parts.query:
        parts = parts._replace(query=re.sub(r"(?i)(^|&)(password)=[^&]*", r"\1\2=***", parts.query))
    return urlunsplit(parts)
