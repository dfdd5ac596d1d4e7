"""What every export format is handed and what it hands back.

A format is pure layout code: it never opens a file, a socket or an event
loop. The engine gives it an :class:`ExportContext` (the version's metadata
plus two services, ``names`` for unique archive paths and ``spool`` for data
gathered across items, created in ``__init__``), then calls :meth:`Format.entries` once per item
occurrence, in the source's stable order (split, then item id), and
:meth:`Format.finish` once at the end. Each call returns the ZIP entries to
write, in order. A format may also offer ``entries_many(items)``, the
entries of a batch of items as ``entries`` of each in turn would give them
(``(path, data)`` pairs); the engine then calls that once per batch, which
saves the per-item calls of exports of millions of small items (FOLDERS).
:meth:`Format.read` is the other direction: an archive of the layout read
back into a plan (see :mod:`formats.reading`).

An item that belongs to two splits occurs twice, once per split, each time
with that split's annotations; an item in no split occurs once with
``split=None``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, ClassVar, NamedTuple, Protocol, runtime_checkable

import msgspec

from engine.model import Dataset, DatasetSplit, DatasetVersion, Label

if TYPE_CHECKING:
    from formats.reading import ArchiveReader, ImportTarget, PlanSink

__all__ = [
    "Blob",
    "Content",
    "Entry",
    "ExportAnnotation",
    "ExportContext",
    "ExportItem",
    "FileBacked",
    "FileRegion",
    "Format",
    "NameClaims",
    "Spool",
    "SpoolFactory",
]


@runtime_checkable
class Blob(Protocol):
    """Content too large to hold in memory: re-readable, with a known size.

    ``crc32`` is the CRC-32 of the bytes when already known (the store records
    it at ingest), else None and the zip writer computes it while streaming.
    """

    size: int
    crc32: int | None

    def chunks(self) -> Iterator[bytes]:
        """Yield the content from the start; may be called more than once."""
        ...


class FileRegion(NamedTuple):
    """Where a blob's bytes lie in a local file: ``length`` bytes from ``offset`` of ``path``.

    ``whole_file``: the file holds these bytes and nothing else (a blob
    file, not a pack of many), so a file of any other size has changed.
    """

    path: str
    offset: int
    length: int
    whole_file: bool = False


@runtime_checkable
class FileBacked(Blob, Protocol):
    """A Blob whose bytes lie in a local file: the optional capability of a blob back end.

    The zip writer may then have the kernel copy the bytes into the archive
    (``engine/regions.py``) instead of reading :meth:`chunks`. A back end
    whose blobs are not local files (S3) simply does not offer it.
    """

    def file_region(self) -> FileRegion:
        """The file region holding exactly the blob's ``size`` bytes."""
        ...


Content = bytes | Blob
"""An entry's payload: small content as bytes, large content as a Blob."""


class Entry(NamedTuple):
    """One file in the archive: its path (``/``-separated) and payload."""

    path: str
    data: Content


class ExportAnnotation(msgspec.Struct, frozen=True):
    """An annotation of one item occurrence, its label already resolved."""

    label: Label
    coordinates: str = ""


class ExportItem(msgspec.Struct):
    """One occurrence of an item in one split, with its content if fetched.

    ``content`` is None for items that have no blob (text, tabular and NER
    items carry their data in ``text``) and when the format does not need it.
    ``width``/``height`` are the image's size in pixels as measured at
    ingest (None when unknown); formats with absolute boxes (COCO) need them.
    """

    id: str
    name: str
    extension: str
    text: str
    split: DatasetSplit | None
    annotations: list[ExportAnnotation]
    content: Content | None = None
    width: int | None = None
    height: int | None = None


class NameClaims(Protocol):
    """Remembers which archive paths are taken, in bounded memory.

    A claim may carry a value, read back with :meth:`value`: formats use it
    to recall where an item that occurs again (in a second split) was put.
    """

    def claim(self, key: str, value: str = "") -> bool:
        """Take ``key`` (storing ``value``); True if free, False if taken."""
        ...

    def value(self, key: str) -> str | None:
        """The value stored with ``key`` by its first claim; None if unclaimed."""
        ...


class Spool(Protocol):
    """A write-once buffer outside RAM for data gathered across items.

    It holds the ``head`` it was made with, the records given to
    :meth:`write` with ``separator`` between each two, and the ``tail``
    (added by :meth:`close`). Formats hand framing bytes to the spool rather
    than writing them as records, so a record's bytes never depend on what
    came before it: the engine can then cut the records of a range of items
    out and join ranges again (scale-out).
    """

    #: How many records were written.
    records: int

    def write(self, record: bytes) -> None: ...

    def close(self) -> Blob:
        """Finish writing (adding the tail) and return the spooled bytes as a Blob."""
        ...


class SpoolFactory(Protocol):
    """``ctx.spool``: a new Spool with the given framing."""

    def __call__(self, *, head: bytes = b"", separator: bytes = b"", tail: bytes = b"") -> Spool: ...


class ExportContext(msgspec.Struct, kw_only=True):
    """The version being exported, as far as a format needs to know it.

    ``labels`` are in export order (``index``, then creation) and each has a
    ``#rrggbb`` colour; ``splits`` are the splits being exported, in order
    (only the chosen one when the export is limited to a split).
    """

    dataset: Dataset
    version: DatasetVersion
    labels: list[Label]
    splits: list[DatasetSplit]
    names: NameClaims
    spool: SpoolFactory
    #: The position in export order of the first occurrence this format object is handed (a
    #: scale-out shard starts further on): formats that number occurrences (COCO ids) count from it.
    first: int = 0


class Format(Protocol):
    """The surface every module in ``formats/`` offers through one class."""

    #: The registry key and the HTTP/CLI value, e.g. ``"spacy-ner"``.
    name: ClassVar[str]
    #: Dataset content types (``engine.model.ContentType`` values) it exports.
    content_types: ClassVar[frozenset[str]]

    def __init__(self, ctx: ExportContext) -> None: ...

    @classmethod
    def needs_content(cls, dataset: Dataset) -> bool:
        """Whether items' blobs must be fetched (False: ``text`` suffices)."""
        ...

    def entries(self, item: ExportItem) -> Iterable[Entry]:
        """The entries one item occurrence contributes, written in order."""
        ...

    def finish(self) -> Iterable[Entry]:
        """Entries written after every item: lists, configs, spooled bodies."""
        ...

    @classmethod
    def read(cls, archive: ArchiveReader, plan: PlanSink, target: ImportTarget) -> None:
        """The other direction: plan what an archive of this layout adds to ``target`` (``formats.reading``)."""
        ...
