"""Reading an import archive's entries in bounded memory, within limits an operator can set.

Why: an archive's declared sizes are the sender's to choose. Three 192 MiB
texts in a 4.7 MB archive once added 400 MiB to the server, and a
million-entry archive costs ``zipfile`` about 600 bytes of memory per entry
before any check can run. So every read here is bounded: a text item at
most :func:`max_text`, a line of a list or CSV file at most
:func:`max_text`, a JSON document (``config.json``) at most
:func:`max_document`; SPACY_NER split files are streamed a document at a
time, CSV and list files a line at a time; and the entry count is read from
the archive's end record before ``zipfile`` loads the central directory.

Limits (environment variables, read on every import):

- ``DSEXPORT_IMPORT_MAX_TEXT`` (16 MiB): one text item, one line.
- ``DSEXPORT_IMPORT_MAX_DOCUMENT`` (64 MiB): one JSON document read whole.
- ``DSEXPORT_IMPORT_MAX_ENTRIES`` (1,000,000): entries in one archive.
- ``DSEXPORT_IMPORT_MAX_UPLOAD`` (16 GiB): one uploaded archive (HTTP).
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import ijson
import msgspec

from engine.errors import InvalidInput

__all__ = [
    "check_entry_count",
    "iter_json_array",
    "max_document",
    "max_entries",
    "max_text",
    "max_upload",
    "open_text",
    "read_json",
    "read_text",
    "text_lines",
]


_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _limit(name: str, default: int, *, sizes: bool = True) -> int:
    """An operator's limit from the environment, read on every import (a test or server sets it per process).

    Sizes take the form ``DSEXPORT_IMPORT_MAX_BYTES`` takes: bytes, or with K, M, G or T (binary).
    """
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    match = re.fullmatch(r"(\d+)\s*([KMGT]?)(?:i?B)?" if sizes else r"(\d+)()", raw, re.IGNORECASE)
    if match is None or int(match[1]) == 0:
        unit = "a positive number of bytes, optionally with K, M, G or T, e.g. 16M" if sizes else "a positive number"
        raise InvalidInput(f"{name}={raw!r} is not a limit; give {unit}")
    return int(match[1]) * _UNITS[match[2].upper()]


def max_text() -> int:
    """``DSEXPORT_IMPORT_MAX_TEXT``: bytes of one text item, characters of one line (16 MiB)."""
    return _limit("DSEXPORT_IMPORT_MAX_TEXT", 16 << 20)


def max_document() -> int:
    """``DSEXPORT_IMPORT_MAX_DOCUMENT``: bytes of one JSON document read whole (64 MiB)."""
    return _limit("DSEXPORT_IMPORT_MAX_DOCUMENT", 64 << 20)


def max_entries() -> int:
    """``DSEXPORT_IMPORT_MAX_ENTRIES``: entries of one archive (1,000,000)."""
    return _limit("DSEXPORT_IMPORT_MAX_ENTRIES", 1_000_000, sizes=False)


def max_upload() -> int:
    """``DSEXPORT_IMPORT_MAX_UPLOAD``: bytes of one uploaded archive (16 GiB)."""
    return _limit("DSEXPORT_IMPORT_MAX_UPLOAD", 16 << 30)


def _bad(message: str) -> InvalidInput:
    return InvalidInput(f"rejected archive: {message}")


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
        raise _bad(f"the archive declares {count} entries; at most {limit} are accepted (DSEXPORT_IMPORT_MAX_ENTRIES)")


def _check_declared(zf: zipfile.ZipFile, name: str, limit: int, what: str, setting: str) -> None:
    size = zf.getinfo(name).file_size
    if size > limit:
        raise _bad(f"{name}: {what} of {size} bytes; at most {_size(limit)} are accepted ({setting})")


def read_text(zf: zipfile.ZipFile, name: str) -> str:
    """A text item's entry as UTF-8, at most :func:`max_text` bytes (read no further than that)."""
    limit = max_text()
    _check_declared(zf, name, limit, "a text", "DSEXPORT_IMPORT_MAX_TEXT")
    with zf.open(name) as f:
        data = f.read(limit + 1)  # zipfile stops at the declared size; this bounds a lying one too
    if len(data) > limit:
        raise _bad(f"{name}: a text longer than {_size(limit)} (DSEXPORT_IMPORT_MAX_TEXT)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad(f"{name} is not UTF-8 text") from None


def read_json(zf: zipfile.ZipFile, name: str, kind: type) -> Any:
    """A small JSON document (a config) decoded as ``kind``, at most :func:`max_document` bytes."""
    limit = max_document()
    _check_declared(zf, name, limit, "a JSON document", "DSEXPORT_IMPORT_MAX_DOCUMENT")
    with zf.open(name) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise _bad(f"{name}: a JSON document longer than {_size(limit)} (DSEXPORT_IMPORT_MAX_DOCUMENT)")
    try:
        return msgspec.json.decode(data, type=kind)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise _bad(f"{name} is not valid: {exc}") from None


def open_text(zf: zipfile.ZipFile, name: str) -> io.TextIOWrapper:
    """An entry as a stream of UTF-8 text (decoding errors surface as InvalidInput in :func:`text_lines`)."""
    return io.TextIOWrapper(zf.open(name), encoding="utf-8", newline="")


def text_lines(zf: zipfile.ZipFile, name: str) -> Iterator[str]:
    """The lines of a list file (no line ends), one at a time, each at most :func:`max_text` characters."""
    limit = max_text()
    with open_text(zf, name) as f:
        n = 0
        try:
            while line := f.readline(limit + 1):
                n += 1
                if len(line) > limit and not line.endswith("\n"):
                    raise _bad(f"{name} line {n}: longer than {_size(limit)} (DSEXPORT_IMPORT_MAX_TEXT)")
                yield line.rstrip("\r\n")
        except UnicodeDecodeError:
            raise _bad(f"{name} is not UTF-8 text") from None


def iter_json_array(zf: zipfile.ZipFile, name: str, kind: type) -> Iterator[Any]:
    """The elements of a JSON array entry decoded as ``kind``, one at a time (ijson streams the entry)."""
    with zf.open(name) as f:
        try:
            events = ijson.parse(f, use_float=True)
            if next(events, None) != ("", "start_array", None):
                raise _bad(f"{name} is not valid: expected a JSON array")
            for n, element in enumerate(ijson.items(events, "item")):
                try:
                    yield msgspec.convert(element, kind)
                except msgspec.ValidationError as exc:
                    raise _bad(f"{name} is not valid: {exc} (element {n})") from None
        except ijson.JSONError as exc:
            raise _bad(f"{name} is not valid JSON: {str(exc).splitlines()[0]}") from None
        except UnicodeDecodeError:
            raise _bad(f"{name} is not UTF-8 text") from None
