"""What a store back end must do: the metadata and blob interfaces, and their value types.

A store is two things behind two small interfaces, each with a contract
test suite that every back end passes (``engine.store.testing``):

- :class:`MetadataStore` (datasets, versions, labels, splits, items,
  annotations, users and keys, archive sizes), read through
  :class:`MetadataReader`. The embedded back end is SQLite
  (``engine.store.sqlite``); it owns its SQL, nothing outside it writes any.
- :class:`BlobStore`: content by SHA-256, with size and CRC-32 recorded at
  ingest. No SQL, no items. ``engine.store.blobs.local`` (files) and
  ``engine.store.blobs.memory`` (tests). A metadata back end may keep small
  blobs itself (SQLite keeps blobs under :data:`INLINE_LIMIT` inline, which
  is why small exports are fast) and hands only the larger ones to its
  blob store.

Threads. Every call is synchronous and may block on disk: call it from a
worker thread, never from the event loop. A :class:`MetadataStore` may be
shared by many threads at once (each sees committed rows of the others and
its own transaction). A :class:`MetadataReader` is used by one thread at a
time (it may be handed between threads). A :class:`BlobStore` may be shared
by many threads at once.

Failed writes. Every write call is all or nothing: if it raises, nothing of
it is visible, except that :meth:`MetadataStore.add_items` commits batch by
batch (the batches before a rejected row stay) unless it runs inside
:meth:`MetadataStore.transaction`, which makes everything in it one unit.
A failed :meth:`BlobStore.put` leaves no blob and no temporary file; a blob
put whose metadata write then fails is unreferenced content, harmless
(blobs are content-addressed) and never half-written.
"""

from __future__ import annotations

import enum
import hashlib
import zlib
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

import msgspec

from engine.errors import InvalidInput
from engine.model import (
    Annotation,
    ContentType,
    Dataset,
    DatasetItem,
    DatasetSplit,
    DatasetVersion,
    Label,
)
from formats.base import Blob, ExportItem

__all__ = [
    "INLINE_LIMIT", "BlobRef", "BlobStore", "MetadataReader", "MetadataStore", "NewItem", "PageContent",
    "VersionConflict",
]

INLINE_LIMIT = 64 * 1024
"""Blobs strictly smaller than this are kept inline by the metadata back end (SQLite)."""


class BlobRef(msgspec.Struct, frozen=True):
    """A blob as the store knows it without reading it: content address, size and CRC-32.

    It is also what a format is handed when an archive is only sized
    (:attr:`PageContent.SIZES`): a ``formats.base.Blob`` whose bytes are not
    there, so reading them is a bug.
    """

    sha256: str
    size: int
    crc32: int

    @classmethod
    def of(cls, data: bytes) -> BlobRef:
        return cls(hashlib.sha256(data).hexdigest(), len(data), zlib.crc32(data))

    def chunks(self) -> Iterator[bytes]:
        raise RuntimeError("a BlobRef has no bytes: it only sizes an archive")


class PageContent(enum.Enum):
    """What each item of an export page carries as ``content``."""

    NONE = "none"
    """No content (the format needs none): None."""
    SIZES = "sizes"
    """Size and CRC-32 only (:class:`BlobRef`), to size an archive before it is written."""
    BYTES = "bytes"
    """The bytes: ``bytes`` for inline blobs, a re-readable ``Blob`` (a file region) for the rest."""


class NewItem(msgspec.Struct, kw_only=True):
    """One row for :meth:`MetadataStore.add_items`.

    Content is either an already stored ``blob`` or raw ``data`` to ingest.
    ``annotations`` are ``(label_id, split_id, coordinates)`` triples; each
    split must be one of ``split_ids``.
    """

    id: str | None = None
    name: str | None = None
    extension: str = ""
    text: str = ""
    description: str = ""
    split_ids: list[str] = msgspec.field(default_factory=list)
    blob: BlobRef | None = None
    data: bytes | None = None
    annotations: list[tuple[str, str, str]] = msgspec.field(default_factory=list)


class VersionConflict(InvalidInput):
    """An If-Match precondition that does not hold; ``current`` is the version now stored."""

    def __init__(self, message: str, current: int) -> None:
        super().__init__(message)
        self.current = current


@runtime_checkable
class BlobStore(Protocol):
    """Content by SHA-256. Thread-safe; no SQL, no items.

    A put is atomic: the blob is either wholly there or not at all.
    """

    def put(self, chunks: Iterable[bytes]) -> BlobRef:
        """Store a stream (hashed while written, never held whole); putting known content again is harmless."""
        ...

    def open(self, ref: BlobRef, item_id: str) -> Blob:
        """The content as a re-readable ``Blob`` (a file region where there is a file).

        Opening is lazy: a missing or resized blob raises ``MissingBlob``
        (naming ``item_id``) when read, not here.
        """
        ...

    def exists(self, sha256: str) -> bool:
        """Whether the content is there."""
        ...

    def delete(self, sha256: str) -> None:
        """Remove the content (absent content is not an error)."""
        ...


@runtime_checkable
class MetadataReader(Protocol):
    """Read access: lookups, counts and the export's pages. One thread at a time.

    Unknown ids raise ``NotFound`` listing the valid choices.
    """

    def close(self) -> None: ...
    def __enter__(self) -> Any: ...
    def __exit__(self, *exc: object) -> None:
        """Close (``with address.open() as store:``)."""
        ...
    def list_datasets(self) -> list[Dataset]: ...
    def get_dataset(self, dataset_id: str) -> Dataset: ...
    def get_version(self, dataset_id: str, version_id: str) -> DatasetVersion: ...
    def version_content_type(self, version_id: str) -> ContentType: ...
    def version_in_dataset(self, dataset_id: str, version_id: str) -> bool: ...
    def labels(self, version_id: str) -> list[Label]: ...
    def splits(self, version_id: str) -> list[DatasetSplit]: ...
    def resolve_split(self, version_id: str, name_or_id: str) -> DatasetSplit: ...
    def revision(self, version_id: str) -> int: ...
    def has_boxes(self, version_id: str) -> bool: ...
    def count_items(self, version_id: str, split_id: str | None = None) -> int: ...
    def count_items_up_to(self, version_id: str, split_id: str | None, limit: int) -> int: ...
    def count_occurrences(
        self, version_id: str, split_ids: list[str] | None = None, *, include_unsplit: bool | None = None
    ) -> int: ...
    def get_item(self, item_id: str) -> DatasetItem: ...

    def snapshot(self) -> AbstractContextManager[None]:
        """Hold one consistent read-only view across several reads, the pages of :meth:`iter_pages` included."""
        ...

    def iter_pages(
        self,
        version_id: str,
        split_ids: list[str] | None = None,
        *,
        content: PageContent,
        include_unsplit: bool | None = None,
        page_size: int = 1000,
        start: int = 0,
        stop: int | None = None,
    ) -> Iterator[list[ExportItem]]:
        """Item occurrences in export order (split by split, items by id, then the unsplit ones), a page at a time.

        The whole iteration reads one snapshot; closing the iterator ends it.
        """
        ...


@runtime_checkable
class MetadataStore(MetadataReader, Protocol):
    """The writer. Shared by many threads; each write is one transaction unless inside :meth:`transaction`."""

    blobs: Any
    """The store's blobs: ``put``/``put_stream``/``write_file``/``record_file``/``exists``."""

    def reader(self) -> MetadataReader:
        """A separate read-only reader (it never migrates) for one export's snapshot."""
        ...

    def transaction(self) -> AbstractContextManager[None]:
        """Everything the store does inside commits together or not at all (an import); nested calls join it."""
        ...

    def put_blob(self, data: bytes) -> BlobRef: ...
    def put_blob_stream(self, chunks: Iterable[bytes]) -> BlobRef: ...
    def create_dataset(
        self, name: str, content_type: ContentType | str, *, multi_label: bool = False,
        default_splits: bool = False, description: str = "", user_id: str | None = None,
    ) -> Dataset: ...
    def create_version(
        self, dataset_id: str, name: str = "", *, description: str = "", config: str = ""
    ) -> DatasetVersion: ...
    def update_version_config(self, version_id: str, config: str) -> None: ...
    def create_label(self, version_id: str, name: str, *, color: str = "", index: int | None = None) -> Label: ...
    def create_split(self, version_id: str, name: str) -> DatasetSplit: ...
    def create_item(
        self, version_id: str, *, name: str | None = None, extension: str = "", text: str = "",
        split_ids: Iterable[str] = (), blob: BlobRef | None = None, description: str = "",
    ) -> DatasetItem: ...
    def annotate(self, item_id: str, split_id: str, label_id: str, coordinates: str = "") -> Annotation: ...
    def add_items(self, version_id: str, rows: Iterable[NewItem], batch: int = 10_000) -> int:
        """Bulk load; commits per batch (see the module docstring), lazily consuming ``rows``."""
        ...
    def archive_size(self, etag: str) -> int | None: ...
    def remember_archive_size(self, etag: str, version_id: str, revision: int, size: int) -> None: ...
    def create_user(
        self, username: str, password: str | None = None, *, email: str = "", name: str = "", firstname: str = ""
    ) -> tuple[dict[str, str], str]: ...
    def login(self, username: str, password: str) -> tuple[dict[str, str], str] | None: ...
    def user_for_key(self, key: str) -> str | None: ...
    def owner_of(self, dataset_id: str) -> str | None: ...
