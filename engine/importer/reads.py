"""Reading an import archive's entries in bounded memory: the :class:`~formats.reading.ArchiveReader` formats read.

Why: an archive's declared sizes are the sender's to choose. Three 192 MiB
texts in a 4.7 MB archive once added 400 MiB to the server, and a
million-entry archive costs ``zipfile`` about 600 bytes of memory per entry
before any check can run. So every read here is bounded: a text item at
most :func:`~engine.importer.limits.max_text`, a line of a list or CSV file
at most that too, a JSON document (``config.json``) at most
:func:`~engine.importer.limits.max_document`; SPACY_NER split files are
streamed a document at a time, CSV and list files a line at a time; and the
entry count is read from the archive's end record before ``zipfile`` loads
the central directory (:func:`check_entry_count`).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

import ijson
import msgspec

from engine.importer.limits import max_document, max_entries, max_text
from formats.reading import Member, refused

__all__ = ["ZipArchiveReader", "check_entry_count"]

T = TypeVar("T")


def _size(limit: int) -> str:
    return f"{limit >> 20} MiB" if limit >= 1 << 20 and not limit % (1 << 20) else f"{limit} bytes"


def check_entry_count(archive: str | Path | IO[bytes]) -> None:
    """InvalidInput if the archive's end record declares more than :func:`max_entries` entries.

    Runs before ``zipfile.ZipFile`` reads the central directory, whose
    ZipInfo objects are the cost being bounded. ``zipfile`` has no public
    way to read only the end record, so this uses its ``_EndRecData`` (the
    function ZipFile itself calls first; zip64 included). Anything it cannot
    read is left for ZipFile to reject with its own message.
    """
    if isinstance(archive, (str, Path)):
        try:
            f = open(archive, "rb")
        except OSError:
            return  # ZipFile says why it cannot be read
        with f:
            check_entry_count(f)
        return
    try:
        start = archive.tell()
        end = zipfile._EndRecData(archive)  # type: ignore[attr-defined]
        archive.seek(start)
    except (OSError, ValueError, AttributeError):
        return
    if end is None:
        return
    count, limit = end[zipfile._ECD_ENTRIES_TOTAL], max_entries()  # type: ignore[attr-defined]
    if count > limit:
        raise refused(f"the archive declares {count} entries; at most {limit} are accepted (DSEXPORT_IMPORT_MAX_ENTRIES)")


class ZipArchiveReader:
    """A checked archive's file entries, read within the operator's limits (read once per import)."""

    def __init__(self, zf: zipfile.ZipFile, files: list[zipfile.ZipInfo]) -> None:
        self._zf = zf
        self._files = files
        self.text_limit = max_text()
        self._document_limit = max_document()

    def members(self) -> Iterator[Member]:
        for info in self._files:
            yield Member(info.filename, info.file_size, info.CRC)

    def has(self, name: str) -> bool:
        return name in self._zf.NameToInfo

    def size(self, name: str) -> int:
        return self._zf.getinfo(name).file_size

    def _check_declared(self, name: str, limit: int, what: str, setting: str) -> None:
        size = self.size(name)
        if size > limit:
            raise refused(f"{name}: {what} of {size} bytes; at most {_size(limit)} are accepted ({setting})")

    def read_text(self, name: str) -> str:
        """A text item's entry as UTF-8, at most ``text_limit`` bytes (read no further than that)."""
        limit = self.text_limit
        self._check_declared(name, limit, "a text", "DSEXPORT_IMPORT_MAX_TEXT")
        with self._zf.open(name) as f:
            data = f.read(limit + 1)  # zipfile stops at the declared size; this bounds a lying one too
        if len(data) > limit:
            raise refused(f"{name}: a text longer than {_size(limit)} (DSEXPORT_IMPORT_MAX_TEXT)")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise refused(f"{name} is not UTF-8 text") from None

    def read_json(self, name: str, kind: type[T]) -> T:
        """A small JSON document (a config) decoded as ``kind``, at most ``max_document()`` bytes."""
        limit = self._document_limit
        self._check_declared(name, limit, "a JSON document", "DSEXPORT_IMPORT_MAX_DOCUMENT")
        with self._zf.open(name) as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise refused(f"{name}: a JSON document longer than {_size(limit)} (DSEXPORT_IMPORT_MAX_DOCUMENT)")
        try:
            return msgspec.json.decode(data, type=kind)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise refused(f"{name} is not valid: {exc}") from None

    def open_text(self, name: str) -> io.TextIOWrapper:
        """An entry as a stream of UTF-8 text; the caller turns decoding errors into a refusal."""
        return io.TextIOWrapper(self._zf.open(name), encoding="utf-8", newline="")

    def lines(self, name: str) -> Iterator[str]:
        """The lines of a list file (no line ends), one at a time, each at most ``text_limit`` characters."""
        limit = self.text_limit
        with self.open_text(name) as f:
            n = 0
            try:
                while line := f.readline(limit + 1):
                    n += 1
                    if len(line) > limit and not line.endswith("\n"):
                        raise refused(f"{name} line {n}: longer than {_size(limit)} (DSEXPORT_IMPORT_MAX_TEXT)")
                    yield line.rstrip("\r\n")
            except UnicodeDecodeError:
                raise refused(f"{name} is not UTF-8 text") from None

    def json_array(self, name: str, kind: type[T]) -> Iterator[T]:
        """The elements of a JSON array entry decoded as ``kind``, one at a time (ijson streams the entry)."""
        with self._zf.open(name) as f:
            try:
                events = ijson.parse(f, use_float=True)
                if next(events, None) != ("", "start_array", None):
                    raise refused(f"{name} is not valid: expected a JSON array")
                for n, element in enumerate(ijson.items(events, "item")):
                    try:
                        yield msgspec.convert(element, kind)
                    except msgspec.ValidationError as exc:
                        raise refused(f"{name} is not valid: {exc} (element {n})") from None
            except ijson.JSONError as exc:
                raise refused(f"{name} is not valid JSON: {str(exc).splitlines()[0]}") from None
            except UnicodeDecodeError:
                raise refused(f"{name} is not UTF-8 text") from None

    def json_items(self, name: str, key: str) -> Iterator[tuple[int, Any]]:
        """(index, element) of the array under the top-level ``key`` of a JSON object, streamed by ijson.

        Reading stops where that array ends. Errors name the entry and where
        the document broke (``images[12]``, or the key before it): truncated
        or malformed JSON says so, not a Python error.
        """
        place = _Place()
        with self._zf.open(name) as f:
            try:
                events = place.track(ijson.parse(f, use_float=True))
                first = next(events, None)
                if first is None or first[1] != "start_map":
                    raise refused(f"{name} is not valid: expected a JSON object")
                yield from enumerate(ijson.items(_until_end_of(events, key), f"{key}.item"))
            except ijson.JSONError as exc:
                raise refused(f"{name} is not valid JSON: {_first_line(exc)} (at {place})") from None
            except UnicodeDecodeError:
                raise refused(f"{name} is not UTF-8 text") from None


class _Place:
    """Where a JSON object's parse is: the top-level key, and the element of its array."""

    def __init__(self) -> None:
        self.key = ""
        self.index = -1

    def track(self, events: Iterator[tuple[str, str, Any]]) -> Iterator[tuple[str, str, Any]]:
        for prefix, event, value in events:
            if event == "map_key" and prefix == "":
                self.key, self.index = value, -1
            elif prefix == f"{self.key}.item" and event in ("start_map", "start_array", "string", "number",
                                                           "boolean", "null"):
                self.index += 1
            yield prefix, event, value

    def __str__(self) -> str:
        if not self.key:
            return "the start of the document"
        return f"{self.key}[{self.index}]" if self.index >= 0 else f"{self.key!r}"


def _until_end_of(events: Iterator[tuple[str, str, Any]], key: str) -> Iterator[tuple[str, str, Any]]:
    """The events up to the end of the array at ``key`` (the rest of the document is another pass's)."""
    for prefix, event, value in events:
        yield prefix, event, value
        if prefix == key and event == "end_array":
            return


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]
