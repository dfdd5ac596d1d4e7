"""What a format's ``read()`` is handed: the archive to read and the plan to write, both as small interfaces.

A format reads an archive the way it writes one, so a reader can hold
``read()`` beside the spec page. It never opens the ZIP itself: the
importer (``engine.importer``) has checked every entry name and the
archive's layout before ``read()`` runs, and hands it an
:class:`ArchiveReader` whose every read is bounded (a text, a line, a JSON
document; arrays a document at a time), and a :class:`PlanSink` that
spools what the archive adds to the version (labels, splits, items and
their annotations) to disk. Memory therefore stays bounded whatever the
archive's size. Then the importer writes the plan in one store transaction.

Items added with ``member=`` take their content from that archive entry;
the importer reads it when it writes the plan.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any, NamedTuple, Protocol, TextIO, TypeVar

import msgspec

from engine.errors import InvalidInput

__all__ = ["ArchiveReader", "ImportTarget", "Member", "PlanSink", "refused"]

T = TypeVar("T")


def refused(message: str) -> InvalidInput:
    """An import's error: the prefix tells the reader the archive, not the request, is at fault."""
    return InvalidInput(f"rejected archive: {message}")


class Member(NamedTuple):
    """One file entry of the archive (directories are left out)."""

    name: str
    size: int
    crc32: int


class ImportTarget(msgspec.Struct, frozen=True):
    """The version an archive is read into, as far as a layout needs it (names already there)."""

    content_type: str
    labels: list[str] = []
    splits: list[str] = []


class ArchiveReader(Protocol):
    """A checked archive, read in bounded memory; every error is a :func:`refused` naming the entry."""

    #: The most characters one text item or line may hold (the operator's ``DSEXPORT_IMPORT_MAX_TEXT``).
    text_limit: int

    def members(self) -> Iterator[Member]:
        """The file entries, in archive order (made as they are iterated: an archive may hold millions)."""
        ...

    def has(self, name: str) -> bool: ...

    def size(self, name: str) -> int:
        """The entry's declared uncompressed size (bounded by the archive check)."""
        ...

    def read_text(self, name: str) -> str:
        """A whole entry as UTF-8 text, at most ``text_limit`` bytes."""
        ...

    def read_json(self, name: str, kind: type[T]) -> T:
        """A small JSON document (a config) decoded as ``kind``."""
        ...

    def lines(self, name: str) -> Iterator[str]:
        """The lines of a list file, without line ends, one at a time."""
        ...

    def open_text(self, name: str) -> AbstractContextManager[TextIO]:
        """The entry as a stream of UTF-8 text (for ``csv.reader``)."""
        ...

    def json_array(self, name: str, kind: type[T]) -> Iterator[T]:
        """The elements of a JSON array entry decoded as ``kind``, one at a time."""
        ...

    def json_items(self, name: str, key: str) -> Iterator[tuple[int, Any]]:
        """(index, element) of the array under the top-level ``key`` of a JSON object entry, one at a time
        (a multi-GB COCO file is never held whole); a missing key yields nothing."""
        ...


class PlanSink(Protocol):
    """What an archive adds to a version, spooled: labels and splits by name, items numbered in order."""

    def add_label(self, name: str, color: str = "") -> None:
        """A label (first mention wins; ``""`` leaves the colour to the palette)."""
        ...

    def add_split(self, name: str) -> None: ...

    def set_config(self, config: str) -> None:
        """The version's new config (tabular column names)."""
        ...

    def add_item(
        self,
        name: str | None,
        extension: str,
        *,
        text: str = "",
        member: str | None = None,
        key: str | None = None,
        stem: str | None = None,
    ) -> int:
        """Spool an item; its number. ``key`` makes it findable by :meth:`find`, ``stem`` by :meth:`has_stem`."""
        ...

    def add_membership(self, item: int, split: str) -> None: ...

    def annotate(self, item: int, label: str, split: str, coordinates: str = "") -> None: ...

    def find(self, key: str) -> int | None: ...

    def note(self, key: str, value: str) -> None:
        """Keep a small value for the reader's later passes, spooled (not in memory)."""
        ...

    def noted(self, key: str) -> str | None: ...

    def has_stem(self, stem: str) -> bool: ...

    def text_of(self, item: int) -> str: ...

    def splits_of(self, item: int) -> list[str]: ...

    def stems(self) -> Iterator[tuple[int, str, str]]:
        """(number, stem, member) of every item added with a stem, in order."""
        ...


