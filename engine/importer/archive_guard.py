"""The import's guard against hostile or broken ZIP files: checked before any entry is read, and while reading.

Python 3.11's ``zipfile`` trusts the central directory: it does not notice
entries whose data overlap (the "better zip bomb", where a few KB inflate to
gigabytes because every entry reuses one compressed kernel; the overlap check
came only with the CVE-2024-0450 fix in 3.11.8/3.12.2), it cuts an entry
name at a NUL byte, and a member whose data is corrupt or short surfaces as
``zlib.error``, ``EOFError`` or, for a deflate stream that ends early, as
fewer bytes than declared with no error at all. So:

* :func:`check_layout` reads each entry's local header and compares it with
  the central directory (name, place), and refuses entries that overlap, come
  out of order, or run past the central directory; encryption, and compression methods other than stored and deflate.
* :func:`check_inflation` bounds the declared uncompressed total by
  :data:`MAX_RATIO` times the archive's size (at least :data:`MIN_BUDGET`)
  and by the operator's absolute cap, ``DSEXPORT_IMPORT_MAX_BYTES``
  (:func:`engine.importer.limits.max_import_bytes`).
  ``zipfile`` never returns more than an entry's declared size (and checks
  its CRC at the end), so the declared total bounds what is really inflated.
* :class:`GuardedZipFile` reads every member through :class:`GuardedMember`,
  which turns read errors into a message naming the entry and counts the
  bytes really inflated: a member that ends short of its declared size is
  refused.

Entry names are :mod:`engine.archive_names`' to judge, before any of this.
Every refusal is an ``InvalidInput`` (HTTP 400, CLI exit 2) that names the
entry, the problem and the limit.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from engine.archive_names import HostileName, open_zip
from engine.importer.limits import MAX_BYTES_ENV, max_import_bytes
from formats.reading import refused

__all__ = [
    "MAX_RATIO",
    "MIN_BUDGET",
    "GuardedZipFile",
    "check_inflation",
    "check_layout",
    "open_archive",
]
#: Uncompressed bytes per archive byte, over the whole archive. Our exports are stored (ratio ~1).
MAX_RATIO = 200
#: A small archive may always inflate to this much (a deflated CSV of a few KB compresses well).
MIN_BUDGET = 16 << 20

_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}
_FLAG_ENCRYPTED = 0x01
_FLAG_PATCHED = 0x20
_FLAG_STRONG_ENCRYPTION = 0x40
_FLAG_UTF8 = 0x800
# APPNOTE 4.3.7, as zipfile's private structFileHeader: signature, versions, flags, method,
# time, date, CRC, sizes, name length, extra length.
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
_LOCAL_SIGNATURE = b"PK\x03\x04"


def _bytes(n: int) -> str:
    return f"{n:,} bytes"


# -- opening --------------------------------------------------------------------


def open_archive(archive: str | Path | IO[bytes]) -> GuardedZipFile:
    """The archive opened for import, or InvalidInput if its central directory cannot be read."""
    try:
        return open_zip(archive, GuardedZipFile)
    except HostileName as exc:
        raise refused(str(exc)) from None
    except NotImplementedError as exc:
        raise refused(f"not a readable ZIP file ({exc} is not supported)") from None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, struct.error) as exc:
        raise refused(f"not a readable ZIP file ({exc})") from None


# -- before reading -------------------------------------------------------------


def check_layout(zf: zipfile.ZipFile) -> None:
    """Refuse an archive whose entries are not what its central directory says, one after another.

    Each entry's [local header, end of data) must start after the previous
    one's ends and end before the central directory: overlapping entries are
    the zip bomb that inflates one kernel once per entry, and data running
    past the next header is a declared size larger than the data. Checking
    every local header up front (a 30-byte read each) also catches entries
    cut out of the file while the central directory was kept.
    """
    previous: zipfile.ZipInfo | None = None
    previous_end = 0
    for info in zf.infolist():
        name = info.orig_filename  # before zipfile cut it at a NUL
        _check_entry_flags(info)
        if previous is not None and info.header_offset < previous.header_offset:
            raise refused(
                f"entry {name!r} (local header at offset {info.header_offset}) comes before the entry "
                f"{previous.filename!r} (offset {previous.header_offset}): entries must be in archive order"
            )
        if previous is not None and info.header_offset < previous_end:
            raise refused(
                f"entry {name!r} (offset {info.header_offset}) overlaps the data of {previous.filename!r} "
                f"(offsets {previous.header_offset} to {previous_end}): overlapping entries are a zip bomb, "
                f"or that entry declares more data than it holds"
            )
        end = _data_end(zf, info)
        if end > zf.start_dir:
            raise refused(
                f"entry {name!r} declares {_bytes(info.compress_size)} of data, which run past the central "
                f"directory at offset {zf.start_dir}: a truncated archive or a size larger than the data"
            )
        previous, previous_end = info, end


def _check_entry_flags(info: zipfile.ZipInfo) -> None:
    name = info.orig_filename
    if info.flag_bits & (_FLAG_ENCRYPTED | _FLAG_STRONG_ENCRYPTION):
        raise refused(f"entry {name!r} is encrypted; encrypted entries are not accepted")
    if info.flag_bits & _FLAG_PATCHED:
        raise refused(f"entry {name!r} holds compressed patched data (flag bit 5), which is not accepted")
    if info.compress_type not in _METHODS:
        accepted = ", ".join(f"{label} ({method})" for method, label in _METHODS.items())
        raise refused(f"entry {name!r} uses compression method {info.compress_type}; accepted: {accepted}")


def _data_end(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> int:
    """Where the entry's data end, from its local header, which must match the central directory."""
    name = info.orig_filename
    assert zf.fp is not None, "the archive is open for reading"
    if info.header_offset < 0:  # zipfile shifts offsets by the bytes missing before the central directory
        raise refused(
            f"entry {name!r}: {-info.header_offset} bytes that the central directory counts before it are "
            f"missing (data cut out, or a broken archive)"
        )
    expected = name.encode("utf-8" if info.flag_bits & _FLAG_UTF8 else "cp437")
    zf.fp.seek(info.header_offset)
    read = zf.fp.read(_LOCAL_HEADER.size + len(expected))  # one read per entry: archives may hold millions
    if len(read) < _LOCAL_HEADER.size or read[:4] != _LOCAL_SIGNATURE:
        raise refused(
            f"entry {name!r}: no local header at offset {info.header_offset}, where the central directory "
            f"puts it (data cut out, or a broken archive)"
        )
    header = _LOCAL_HEADER.unpack(read[: _LOCAL_HEADER.size])
    name_length, extra_length = header[10], header[11]
    raw_name = read[_LOCAL_HEADER.size : _LOCAL_HEADER.size + name_length]
    if name_length != len(expected) or raw_name != expected:
        raise refused(
            f"entry {name!r}: its local header at offset {info.header_offset} names {raw_name!r} instead "
            f"(a broken or doctored archive)"
        )
    return info.header_offset + _LOCAL_HEADER.size + name_length + extra_length + info.compress_size


def check_inflation(zf: zipfile.ZipFile) -> None:
    """Bound the uncompressed total by the archive's size and by the operator's cap.

    The budget is ``max(MAX_RATIO × archive size, MIN_BUDGET)``, at most
    ``DSEXPORT_IMPORT_MAX_BYTES``: many small entries of zeros each pass a
    per-entry ratio, their sum does not.
    """
    assert zf.fp is not None, "the archive is open for reading"
    archive_size = zf.fp.seek(0, io.SEEK_END)
    cap = max_import_bytes()
    by_ratio = max(MAX_RATIO * archive_size, MIN_BUDGET)
    total = 0
    for info in zf.infolist():
        total += info.file_size
        if total > cap:
            raise refused(
                f"entry {info.filename!r} brings the uncompressed total to {_bytes(total)}, more than the "
                f"{_bytes(cap)} an import may hold (the server's {MAX_BYTES_ENV})"
            )
        if total > by_ratio:
            raise refused(
                f"entry {info.filename!r} brings the uncompressed total to {_bytes(total)} from a "
                f"{_bytes(archive_size)} archive, more than {MAX_RATIO}x its size "
                f"(or {_bytes(MIN_BUDGET)} for a small archive): a zip bomb?"
            )


# -- while reading --------------------------------------------------------------


@contextmanager
def _read_errors(info: zipfile.ZipInfo) -> Iterator[None]:
    """zipfile's failures on a member's data, as one line naming the entry."""
    name = info.filename
    try:
        yield
    except zlib.error as exc:
        raise refused(f"entry {name!r}: its compressed data are corrupt ({exc})") from None
    except EOFError:
        raise refused(f"entry {name!r}: the archive ends inside its data (truncated)") from None
    except zipfile.BadZipFile as exc:
        raise refused(f"entry {name!r} cannot be read: {exc}") from None
    except NotImplementedError as exc:
        raise refused(f"entry {name!r} cannot be read: {exc}") from None
    except RuntimeError as exc:  # zipfile's "is encrypted, password required"
        raise refused(f"entry {name!r} cannot be read: {exc}") from None


class GuardedMember(io.BufferedIOBase):
    """A member being read: errors name the entry, and the inflated bytes are counted.

    zipfile stops at the declared size and checks the CRC at the end, but a
    deflate stream that ends early gives fewer bytes with a matching CRC and
    no error; counting catches that at the end of the member.
    """

    def __init__(self, raw: zipfile.ZipExtFile, info: zipfile.ZipInfo) -> None:
        super().__init__()
        self._raw, self._info, self._inflated = raw, info, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        with _read_errors(self._info):
            data = self._raw.read(-1 if size is None else size)
        self._count(data, at_end=size is None or size < 0 or len(data) < size)
        return data

    def read1(self, size: int = -1) -> bytes:
        with _read_errors(self._info):
            data = self._raw.read1(size)
        self._count(data, at_end=size != 0 and not data)
        return data

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readinto1(self, buffer) -> int:  # type: ignore[override]
        data = self.read1(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._raw.close()
        super().close()

    def _count(self, data: bytes, *, at_end: bool) -> None:
        self._inflated += len(data)
        if at_end and self._inflated != self._info.file_size:
            raise refused(
                f"entry {self._info.filename!r} inflates to {_bytes(self._inflated)}, but the archive declares "
                f"{_bytes(self._info.file_size)} (truncated or corrupt data)"
            )


class GuardedZipFile(zipfile.ZipFile):
    """A ZipFile whose members are read through :class:`GuardedMember`.

    Extended rather than wrapped because ``ZipFile.read`` and every caller
    of ``open`` should get the guard without knowing about it.
    """

    def open(self, name, mode="r", pwd=None, *, force_zip64=False):  # type: ignore[override]
        if mode != "r":
            return super().open(name, mode, pwd, force_zip64=force_zip64)
        info = name if isinstance(name, zipfile.ZipInfo) else self.getinfo(name)
        with _read_errors(info):
            raw = super().open(info, mode, pwd)
        return GuardedMember(raw, info)
