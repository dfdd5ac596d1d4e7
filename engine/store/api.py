"""What a store back end must do: the metadata and blob interfaces, and their value types.

A store is two things behind two small interfaces, each with a contract
test suite that every back end passes (``engine.store.testing``):

- :class:`MetadataStore` (datasets, versions, labels, splits, items,
  annotations, users and keys, archive sizes), read through
  :class:`MetadataReader`. The embedded back end is SQLite
  (``engine.store.sqlite``); it owns its SQL, nothing outside it writes any.
- :class:`BlobStore`: content by SHA-256, with size and CRC-32 recorded at
  ingest. No SQL, no items. ``engine.store.blobs.local`` (files),
  ``engine.store.blobs.s3`` (an S3-compatible bucket) and
  ``engine.store.blobs.memory`` (tests). A metadata back end may keep small
  blobs itself (SQLite keeps blobs under :data:`INLINE_LIMIT` inline, which
  is why small exports are fast) and hands only the larger ones to its
  blob store.
- :class:`PackedBlobs`, an optional capability of a blob store (S3 has it):
  small blobs appended into big pack objects instead of kept inline, each
  located by a :class:`PackSlot` that the metadata back end records next
  to the blob's size, CRC-32 and SHA-256, and read back a page at a time
  with one coalesced ranged read per pack. A metadata back end checks
  ``isinstance(files, PackedBlobs)`` and, if so, packs its small blobs:

  - ingest: ``with files.pack_writer() as w: slots = [w.add(b) for b in small]``,
    then record the slots (the packs are sealed when the ``with`` ends; a
    slot is recorded only after its pack is sealed, and an error aborts
    the upload and deletes what the writer sealed);
  - export: ``files.read_packed(slots, item_ids)`` for a page's packed blobs;
  - compaction (``dsexport store compact``): rewrite the live blobs of
    packs with dead or little content into new packs, repoint the slots,
    and delete a pack object only when nothing records it and it was
    retired (or, never recorded, written) longer ago than a grace period,
    so an export that began before keeps reading the old pack until it
    ends (``engine.store.compact``).

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
from engine.images import image_size
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
    "INLINE_LIMIT", "BlobRef", "BlobStore", "MetadataReader", "MetadataStore", "NewItem", "PackSlot", "PackWriter",
    "PackedBlobs", "PageContent", "VersionConflict",
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
    split must be one of ``split_ids``. ``width``/``height``: the image's
    size in pixels; a row built with image ``data`` and no size measures it
    (:mod:`engine.images`, header only), so every back end stores sizes
    without measuring; a ``blob`` row's caller measures the file it stored.
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
    width: int | None = None
    height: int | None = None

    def __post_init__(self) -> None:
        if self.width is None and self.data is not None:
            size = image_size(self.data, self.extension)
            if size is not None:
                self.width, self.height = size


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


class PackSlot(msgspec.Struct, frozen=True):
    """Where a packed small blob lives: ``size`` bytes at ``offset`` of pack object ``pack``."""

    pack: str
    offset: int
    size: int


class PackWriter(Protocol):
    """Appends small blobs to new packs. ``with`` seals them on success, aborts on an error."""

    def add(self, data: bytes) -> PackSlot:
        """Append ``data``; its slot is readable once the writer is sealed."""
        ...

    def seal(self) -> list[str]:
        """Complete the open pack; every pack this writer sealed."""
        ...

    def abort(self) -> None:
        """Leave nothing: abort the open upload, delete the packs this writer sealed."""
        ...

    def __enter__(self) -> PackWriter: ...
    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None: ...


@runtime_checkable
class PackedBlobs(BlobStore, Protocol):
    """The optional packs capability of a blob store (see the module docstring)."""

    def pack_writer(self) -> PackWriter:
        """A writer of new packs, used by one thread."""
        ...

    def read_packed(self, slots: list[PackSlot], item_ids: list[str]) -> list[bytes]:
        """Each slot's bytes, one coalesced ranged read per pack; an unreadable pack raises
        ``MissingBlob`` naming the first of ``item_ids`` (one per slot) in it."""
        ...

    def list_packs(self) -> dict[str, float]:
        """Every pack object and when it was written (seconds since the epoch)."""
        ...

    def delete_pack(self, pack: str) -> None:
        """Remove a pack object (absent is not an error)."""
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
    def annotation_counts(self, version_id: str, split_ids: list[str] | None = None) -> tuple[int, int]:
        """(boxes, image-level labels) among the version's annotations, of ``split_ids`` only when given."""
        ...
    def count_items(self, version_id: str, split_id: str | None = None) -> int: ...
    def count_items_up_to(self, version_id: str, split_id: str | None, limit: int) -> int: ...
    def count_occurrences(
        self, version_id: str, split_ids: list[str] | None = None, *, include_unsplit: bool | None = None
    ) -> int: ...
    def get_item(self, item_id: str) -> DatasetItem: ...

    def snapshot(self) -> AbstractContextManager[None]:
        """Hold one consistent read-only view across several reads, the pages of :meth:`iter_pages` included."""
        ...

    def records(self) -> Iterator[Any]:
        """The whole store as typed records (``engine.store.records``) from one snapshot, in load order.

        What ``dsexport store copy`` reads; a small blob's record carries its bytes.
        """
        ...

    def open_blob(self, ref: BlobRef) -> Blob:
        """A large blob's content, for a blob record without bytes."""
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

    def load_records(self, records: Iterable[Any]) -> int:
        """Load a stream of :meth:`MetadataReader.records` with every id kept, skipping what is there (resumable).

        A large blob's content must be in this store's blob back end first
        (``blobs.write_file``); small ones come with their records.
        """
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
        width: int | None = None, height: int | None = None,
    ) -> DatasetItem: ...
    def annotate(self, item_id: str, split_id: str, label_id: str, coordinates: str = "") -> Annotation: ...
    def unmeasured_images(self, after: str = "", limit: int = 500) -> list[tuple[str, str, bytes | Blob]]:
        """(item id, extension, content) of items of image datasets with content and no recorded size, by id after ``after``."""
        ...
    def set_image_sizes(self, sizes: list[tuple[str, int, int]]) -> None:
        """Record (item id, width, height) for existing items; raises the revision of each version touched."""
        ...
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
