"""A streaming ZIP writer in constant memory, built on zipstream-ng.

zipstream-ng (pinned to 1.9.3 in pyproject.toml) gives us the ZIP record
layout: local headers with data descriptors, zip64 where needed, compression,
the central directory and end records, and the size prediction used for an
HTTP ``Content-Length``. We extend :class:`zipstream.ZipStream` rather than
use it plainly because an export of millions of entries needs three things
it does not offer:

1. **A spooled central directory.** ZipStream keeps one ``ZipInfo`` per entry
   in ``self._filelist`` until the footer (about 0.5 KB each: 0.5 GB at 1 M
   entries). ZipStream only ever calls ``_filelist.append()`` once an entry's
   CRC and sizes are final, then iterates it in the footer and asks its
   ``len()``. :class:`SpooledCentralDirectory` honours exactly that contract
   but writes each central-directory record to a temporary file at append
   time, so memory stays constant whatever the entry count.
2. **Push, not pull.** ZipStream is an iterator over a queue of entries
   (adding everything first keeps every payload alive). We write one entry
   at a time into an output callback with a buffer, so a slow sink blocks the
   writer, which in turn blocks the fetchers: backpressure end to end.
3. **A fast path.** For stored entries whose bytes are in hand, the local
   header, data descriptor and central-directory record are packed directly
   with ``struct``: the same bytes ZipStream would produce (a test asserts
   byte identity), at a fraction of the per-entry cost; :meth:`ZipWriter.write_many`
   packs a whole batch of them in one loop. Every other entry
   (a streamed Blob, compression) goes through ZipStream's own
   ``ZipStreamInfo._file_data``.
4. **Bytes the kernel copies.** A blob file checked by ``engine/regions.py``
   (size and CRC-32 known, the file's identity kept) is written as the same
   header from the record, then, if bigger than ``READ_IN_MAX`` (1 MiB),
   ``copy(fd, offset, length)`` (the sink's ``copy_from``) has the kernel
   copy the data: Python never touches it. A smaller one (or any, without
   ``copy``: an HTTP response) is read into the output with one ``pread``
   and leaves in the next 1 MiB write: for 100 KiB images that measured
   faster than a header write and a kernel copy per file.

Timestamps are fixed (:data:`FIXED_DATE_TIME`) so the same export is
byte-identical on every run. Exactly one thread may drive a writer.
"""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, BinaryIO
from zipfile import (
    ZIP64_LIMIT,
    ZIP_DEFLATED,
    ZIP_STORED,
    sizeEndCentDir,
    sizeEndCentDir64,
    sizeEndCentDir64Locator,
    stringCentralDir,
    stringFileHeader,
    structCentralDir,
    structFileHeader,
)

import zipstream
from zipstream.ng import ZIP64_ESTIMATE_FACTOR, ZipStreamInfo
from zlib_ng.zlib_ng import crc32  # zlib's crc32, 3x faster here (SIMD), even on 1 KiB items

from engine.errors import ContentError, InvalidInput
from engine.regions import READ_IN_MAX, CheckedFile, copy_checked, read_checked
from engine.spool import close_quietly, spool_error

if TYPE_CHECKING:
    from formats.base import Blob, Content

__all__ = [
    "COMPRESSION",
    "FIXED_DATE_TIME",
    "SpooledCentralDirectory",
    "ZipSizer",
    "ZipWriter",
    "central_record",
    "predicted_zip_size",
]

#: Entry time of every file: the DOS epoch, as reproducible builds use it.
FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
_DOS_DATE = (FIXED_DATE_TIME[0] - 1980) << 9 | FIXED_DATE_TIME[1] << 5 | FIXED_DATE_TIME[2]
_DOS_TIME = 0

#: CLI/HTTP names of the supported compression methods.
COMPRESSION = {"store": ZIP_STORED, "deflate": ZIP_DEFLATED}

_FLAG_DATA_DESCRIPTOR = 0x08
_FLAG_UTF8 = 0x800
_VERSION = 20  # "version needed to extract" of a plain stored/deflated entry
_CREATE_SYSTEM = 3  # Unix, as zipfile.ZipInfo sets it on this platform
_FILE_ATTR = 0o600 << 16  # ZipStream's attributes for data entries
_SMALL_LIMIT = int(ZIP64_LIMIT / ZIP64_ESTIMATE_FACTOR)  # below: never zip64

# Pieces at least this big (chunks of large blobs) skip the output buffer:
# copying them in and out of it would halve the throughput of big blobs.
_PASS_THROUGH = 256 << 10

_local_header = struct.Struct(structFileHeader)
_central_header = struct.Struct(structCentralDir)
_descriptor = struct.Struct("<4sLLL")


# The local header of a stored entry with a data descriptor depends only on its flags
# and name length: packed once per (flags, length) instead of once per entry.
_LOCAL_HEADERS: dict[int, bytes] = {}


def _local_header_for(flags: int, name_length: int) -> bytes:
    header = _LOCAL_HEADERS[flags << 16 | name_length] = _local_header.pack(
        stringFileHeader, _VERSION, 0, flags, ZIP_STORED, _DOS_TIME, _DOS_DATE, 0, 0, 0, name_length, 0
    )
    return header


class SpooledCentralDirectory:
    """Stands in for ZipStream's ``_filelist``: records go to a temp file.

    ZipStream's footer iterates this and calls ``_central_directory_header_data()``
    on each element; we hand it the spooled bytes back in 1 MiB blocks.
    """

    _BLOCK = 1 << 20

    def __init__(self) -> None:
        self._where = f"a temporary file in {tempfile.gettempdir()}"
        try:
            self._file: BinaryIO = tempfile.TemporaryFile(prefix="dsexport-cd-")
        except OSError as exc:
            raise spool_error(exc, self._where) from None
        self._count = 0

    def append(self, zinfo: ZipStreamInfo) -> None:
        """Called by ZipStream-style code once an entry is final."""
        self.append_record(zinfo._central_directory_header_data())

    def append_record(self, record: bytes) -> None:
        """Spool an already packed central-directory record (the fast path)."""
        try:
            self._file.write(record)
        except OSError as exc:
            raise spool_error(exc, self._where) from None
        self._count += 1

    def append_records(self, records: bytes, count: int) -> None:
        """Spool ``count`` packed records at once (a stitched part's, relocated)."""
        try:
            self._file.write(records)
        except OSError as exc:
            raise spool_error(exc, self._where) from None
        self._count += count

    def save(self, path: str | os.PathLike[str]) -> None:
        """Copy the records spooled so far to ``path`` (a scale-out part's directory)."""
        self._file.flush()
        self._file.seek(0)
        with open(path, "wb") as out:
            shutil.copyfileobj(self._file, out, self._BLOCK)
        self._file.seek(0, os.SEEK_END)

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[_SpooledBlock]:
        try:
            self._file.seek(0)  # writes what is still buffered
        except OSError as exc:
            raise spool_error(exc, self._where) from None
        while block := self._file.read(self._BLOCK):
            yield _SpooledBlock(block)

    def close(self) -> None:
        close_quietly(self._file)


class _SpooledBlock:
    """A block of central-directory bytes shaped like a ZipInfo for the footer."""

    __slots__ = ("_data",)

    def __init__(self, data: bytes) -> None:
        self._data = data

    def _central_directory_header_data(self) -> bytes:
        return self._data


class ZipWriter(zipstream.ZipStream):
    """Writes entries one at a time to ``output``, in constant memory.

    ``output`` is called with chunks of about ``buffer_size`` bytes; it may
    block, which is how backpressure reaches the writer. ``copy(fd, offset,
    length)``, if given, appends bytes of a file to the same output (the
    sink's ``copy_from``) and returns the count: stored entries of checked
    blob files (:class:`engine.regions.CheckedFile`) then go that way. Call
    :meth:`close` to write the central directory, or :meth:`discard` to
    abandon the archive.
    """

    def __init__(
        self,
        output: Callable[[bytes], object],
        *,
        compress_type: int = ZIP_STORED,
        compress_level: int | None = None,
        buffer_size: int = 1 << 20,
        copy: Callable[[int, int, int], int] | None = None,
    ) -> None:
        super().__init__(compress_type=compress_type, compress_level=compress_level)
        self._filelist = SpooledCentralDirectory()  # type: ignore[assignment]
        self._output = output
        self._copy = copy if compress_type == ZIP_STORED else None
        # Output waiting to be handed on, as pieces joined once per flush: growing a
        # bytearray instead reallocates and copies it over and over (measured 10x slower
        # for 100 KiB images), and a file read straight into a piece is never copied twice.
        self._pieces: list[bytes] = []
        self._held = 0
        self._buffer_size = buffer_size
        self.entries_written = 0

    # -- writing -------------------------------------------------------------

    def write(self, path: str, data: Content) -> None:
        """Append one entry; ``data`` is bytes or a re-readable Blob."""
        _check_path(path)
        if isinstance(data, bytes) and self._compress_type == ZIP_STORED and len(data) < _SMALL_LIMIT:
            self._write_stored_bytes(path, data)
        elif isinstance(data, bytes):
            self._write_with_zipstream(path, iter((data,)), len(data), None)
        elif type(data) is CheckedFile and self.takes_checked_files and (
            self._copy is not None or data.size <= READ_IN_MAX
        ):
            self._write_checked_file(path, data)
        else:
            self._write_with_zipstream(path, data.chunks(), data.size, data)
        self.entries_written += 1
        if self._held >= self._buffer_size:
            self.flush()

    def write_many(self, entries: Iterable[tuple[str, Content]]) -> None:
        """Append ``(path, data)`` entries in order, as :meth:`write` of each would.

        Stored entries of bytes in hand (the many small items of an export)
        are packed in one loop here, their central-directory records spooled
        in one write per call: the same bytes as :meth:`_write_stored_bytes`,
        with less Python per entry. Any other entry goes through :meth:`write`.
        """
        if self._compress_type != ZIP_STORED:
            for path, data in entries:
                self.write(path, data)
            return
        pieces, records = self._pieces, []
        pos, held, count, limit = self._pos, self._held, 0, self._buffer_size
        headers = _LOCAL_HEADERS
        try:
            for path, data in entries:
                if type(data) is not bytes or len(data) >= _SMALL_LIMIT or pos > ZIP64_LIMIT:
                    self._pos, self._held = pos, held
                    self._end_run(records, count)
                    records, count = [], 0
                    self.write(path, data)
                    pos, held = self._pos, self._held
                    continue
                _check_path(path)
                if path.isascii():
                    name, flags = path.encode("ascii"), _FLAG_DATA_DESCRIPTOR
                else:
                    name, flags = path.encode("utf-8"), _FLAG_DATA_DESCRIPTOR | _FLAG_UTF8
                size = len(data)
                crc = crc32(data)
                length = len(name)
                header = headers.get(flags << 16 | length) or _local_header_for(flags, length)
                pieces += (header, name, data, _descriptor.pack(b"PK\x07\x08", crc, size, size))
                records += (
                    _central_header.pack(
                        stringCentralDir, _VERSION, _CREATE_SYSTEM, _VERSION, 0, flags, ZIP_STORED,
                        _DOS_TIME, _DOS_DATE, crc, size, size, length, 0, 0, 0, 0, _FILE_ATTR, pos,
                    ),
                    name,
                )
                count += 1
                length += _local_header.size + size + _descriptor.size
                pos += length
                held += length
                if held >= limit:
                    self._pos, held = pos, 0
                    self.flush()
        finally:
            self._pos, self._held = pos, held
            self._end_run(records, count)

    def _end_run(self, records: list[bytes], count: int) -> None:
        """Spool the central-directory records of a run of :meth:`write_many`."""
        if count:
            self._filelist.append_records(b"".join(records), count)
            self.entries_written += count

    def _write_stored_bytes(self, path: str, data: bytes) -> None:
        """The fast path: exactly ZipStreamInfo's bytes, packed in one go."""
        offset = self._pos
        name, flags = _name_and_flags(path)
        size = len(data)
        crc = crc32(data)
        self._pieces += (
            _local_header.pack(
                stringFileHeader, _VERSION, 0, flags, ZIP_STORED, _DOS_TIME, _DOS_DATE,
                0, 0, 0, len(name), 0,
            ),
            name,
            data,
            _descriptor.pack(b"PK\x07\x08", crc, size, size),
        )
        length = _local_header.size + len(name) + size + _descriptor.size
        self._held += length
        self._pos = offset + length
        self._record_stored(path, name, flags, crc, size, offset)

    def _write_checked_file(self, path: str, data: CheckedFile) -> None:
        """A checked blob file: the header from its record, the bytes copied by the kernel or read in.

        The same bytes as :meth:`_write_with_zipstream` gives the blob (and
        :meth:`_write_stored_bytes` the same content in hand): a test asserts it.
        """
        size, crc = data.size, data.crc32
        if size >= _SMALL_LIMIT:  # may need zip64: let ZipStreamInfo pack it
            self.write_copied(path, size, crc, lambda: copy_checked(path, data, self._copy))  # type: ignore[arg-type]
            self.entries_written -= 1  # write() counts it
            return
        offset = self._pos
        name, flags = _name_and_flags(path)
        self._pieces += (
            _local_header.pack(
                stringFileHeader, _VERSION, 0, flags, ZIP_STORED, _DOS_TIME, _DOS_DATE,
                0, 0, 0, len(name), 0,
            ),
            name,
        )
        self._held += _local_header.size + len(name)
        if self._copy is not None and size > READ_IN_MAX:
            self.flush()
            copy_checked(path, data, self._copy)
        else:  # small files: one pread each, one write per MiB (faster than a header write and a copy per file)
            self._pieces.append(read_checked(path, data))
            self._held += size
        self._pieces.append(_descriptor.pack(b"PK\x07\x08", crc, size, size))
        self._held += _descriptor.size
        self._pos = offset + _local_header.size + len(name) + size + _descriptor.size
        self._record_stored(path, name, flags, crc, size, offset)

    def _record_stored(self, path: str, name: bytes, flags: int, crc: int, size: int, offset: int) -> None:
        """Spool the central-directory record of a stored entry (below zip64 sizes) at ``offset``."""
        if offset > ZIP64_LIMIT:
            # Needs a zip64 extra field for the offset: let ZipStreamInfo pack it.
            zinfo = self._new_info(path, size)
            zinfo.flag_bits |= _FLAG_DATA_DESCRIPTOR
            zinfo.CRC, zinfo.compress_size, zinfo.header_offset = crc, size, offset
            self._filelist.append(zinfo)
            return
        self._filelist.append_record(
            _central_header.pack(
                stringCentralDir, _VERSION, _CREATE_SYSTEM, _VERSION, 0, flags, ZIP_STORED,
                _DOS_TIME, _DOS_DATE, crc, size, size, len(name), 0, 0, 0, 0, _FILE_ATTR, offset,
            )
            + name
        )

    def _new_info(self, path: str, size: int) -> ZipStreamInfo:
        """A ZipStreamInfo set up the way ZipStream._gen_file_entry does it."""
        zinfo = ZipStreamInfo(path, date_time=FIXED_DATE_TIME)
        zinfo.external_attr = _FILE_ATTR
        zinfo.file_size = size
        zinfo.compress_type = self._compress_type
        zinfo._compresslevel = None if self._compress_type == ZIP_STORED else self._compress_level
        return zinfo

    def _write_with_zipstream(
        self, path: str, chunks: Iterator[bytes], size: int, blob: Blob | None
    ) -> None:
        """The general path: ZipStreamInfo writes header, data and descriptor."""
        zinfo = self._new_info(path, size)
        zinfo.header_offset = self._pos
        for piece in zinfo._file_data(chunks):
            self._pos += len(piece)
            if len(piece) >= _PASS_THROUGH:
                self.flush()  # keep the order, then hand the big piece on uncopied
                self._output(piece)
                continue
            # Kept until the flush: copy what may change meanwhile (a chunk read into a reused buffer).
            self._pieces.append(piece if type(piece) is bytes else bytes(piece))
            self._held += len(piece)
            if self._held >= self._buffer_size:
                self.flush()
        if zinfo.file_size != size:
            raise ContentError(
                f"{path}: expected {size} bytes but the content had {zinfo.file_size}",
                item_id=getattr(blob, "item_id", None),
            )
        if blob is not None and blob.crc32 is not None and blob.crc32 != zinfo.CRC:
            raise ContentError(
                f"{path}: content does not match its recorded CRC-32 "
                f"({zinfo.CRC:08x} != {blob.crc32:08x}); the stored blob is corrupt",
                item_id=getattr(blob, "item_id", None),
            )
        self._filelist.append(zinfo)

    def write_copied(self, path: str, size: int, crc: int, copy: Callable[[], object]) -> None:
        """A stored entry whose ``size`` bytes (CRC-32 ``crc``) ``copy()`` puts into the output.

        For payloads the caller moves without Python touching them (the
        stitcher's ``copy_file_range``). The header and data descriptor are
        zipstream-ng's own, packed as :meth:`write` packs a Blob of that size,
        so the entry is byte-identical to writing the payload.
        """
        _check_path(path)
        if self._compress_type != ZIP_STORED:
            raise InvalidInput("only stored entries can be copied in place")
        zinfo = self._new_info(path, size)
        zinfo.header_offset = self._pos
        zinfo.flag_bits |= _FLAG_DATA_DESCRIPTOR
        zip64 = size * ZIP64_ESTIMATE_FACTOR > ZIP64_LIMIT  # as ZipStreamInfo._file_data decides
        header = zinfo.FileHeader(zip64)
        self._pieces.append(header)
        self.flush()
        copy()
        zinfo.CRC, zinfo.file_size, zinfo.compress_size = crc, size, size
        descriptor = zinfo.DataDescriptor(zip64)
        self._pieces.append(descriptor)
        self._held += len(descriptor)
        self._pos += len(header) + size + len(descriptor)
        self._filelist.append(zinfo)
        self.entries_written += 1

    def advance(self, size: int, records: bytes = b"", count: int = 0) -> None:
        """Account for ``size`` bytes put into the output by other means.

        The stitcher copies a part's entries into the output itself, then
        hands over their ``count`` central-directory ``records`` (already
        relocated to the part's offset in the archive). Call with nothing
        buffered (after :meth:`flush`).
        """
        assert not self._pieces, "advance() with buffered bytes would reorder the output"
        self._pos += size
        if count:
            self._filelist.append_records(records, count)
        self.entries_written += count

    def save_central_directory(self, path: str | os.PathLike[str]) -> None:
        """Flush, and copy the central-directory records so far to ``path``.

        A scale-out part ends here instead of in :meth:`close`: its records
        carry offsets relative to the part's start, relocated when stitched.
        """
        self.flush()
        self._filelist.save(path)

    def flush(self) -> None:
        """Hand buffered bytes to ``output`` now."""
        if self._pieces:
            data = b"".join(self._pieces)  # a single bytes piece is handed on as it is
            self._pieces.clear()
            self._held = 0
            self._output(data)

    def close(self) -> int:
        """Write the central directory and end records; return the archive size."""
        try:
            for piece in self.footer():
                self._pieces.append(piece)
                self._held += len(piece)
                if self._held >= self._buffer_size:
                    self.flush()
            self.flush()
        finally:
            self._filelist.close()
        return self._pos

    def discard(self) -> None:
        """Abandon the archive: drop buffered bytes and the spooled directory."""
        self._pieces.clear()
        self._held = 0
        self._filelist.close()

    @property
    def bytes_written(self) -> int:
        """Archive bytes produced so far (some may still be buffered)."""
        return self._pos

    @property
    def copies_files(self) -> bool:
        """Whether checked blob files are copied by the kernel (a stored archive into a :class:`CopySink`)."""
        return self._copy is not None

    @property
    def takes_checked_files(self) -> bool:
        """Whether checked blob files are written from their record (stored entries): copied, or read in."""
        return self._compress_type == ZIP_STORED


def _name_and_flags(path: str) -> tuple[bytes, int]:
    """The encoded name and the flag bits ZipStreamInfo gives an entry with a data descriptor."""
    if path.isascii():
        return path.encode("ascii"), _FLAG_DATA_DESCRIPTOR
    return path.encode("utf-8"), _FLAG_DATA_DESCRIPTOR | _FLAG_UTF8


def _check_path(path: str) -> None:
    """Last line of defence: formats sanitise, the writer refuses the unsafe."""
    if (
        not path
        or path[0] == "/"
        or path[-1] == "/"
        or "\\" in path
        or "\x00" in path
        or "//" in path
        or (".." in path and ".." in path.split("/"))
    ):
        raise InvalidInput(f"refusing unsafe archive path {path!r}")


def central_record(
    path: str, *, flags: int, compress_type: int, crc: int, compress_size: int, file_size: int, offset: int
) -> bytes:
    """The central-directory record the writer gives an entry with these fields.

    Packed by ZipStreamInfo itself (zip64 extra and version fields when a size
    or the offset needs them), for relocating a record to a new ``offset``.
    """
    zinfo = ZipStreamInfo(path, date_time=FIXED_DATE_TIME)
    zinfo.external_attr = _FILE_ATTR
    zinfo.compress_type = compress_type
    zinfo.flag_bits = flags & ~_FLAG_UTF8  # the UTF-8 flag follows from the name
    zinfo.CRC, zinfo.compress_size, zinfo.file_size = crc, compress_size, file_size
    zinfo.header_offset = offset
    return zinfo._central_directory_header_data()


class ZipSizer:
    """Counts the bytes of a stored archive of the entries written to it, writing none.

    The zip writer's stand-in when an archive is sized before it is written
    (``engine/sizing.py``): zipstream-ng's own size accounting, entry by
    entry, in constant memory. A Blob's ``size`` is taken as it is; nothing
    is read. Only stored archives can be sized: a deflated entry's length is
    known once it has been compressed.
    """

    def __init__(self, compress_type: int = ZIP_STORED) -> None:
        if compress_type != ZIP_STORED:
            raise InvalidInput("only a stored archive can be sized before it is written, not a compressed one")
        self._sizer = zipstream.ZipStream(sized=True)
        self.entries_written = 0

    def write(self, path: str, data: Content) -> None:
        """Count one entry, as :meth:`ZipWriter.write` would write it."""
        _check_path(path)
        self._sizer._add_size_from_file(path, len(data) if isinstance(data, bytes) else data.size)
        self.entries_written += 1

    def add(self, path: str, size: int) -> None:
        """Count one stored entry of ``size`` bytes."""
        self._sizer._add_size_from_file(path, size)
        self.entries_written += 1

    @property
    def bytes_written(self) -> int:
        """The bytes of the entries counted so far (central directory not included)."""
        return self._sizer._size_prog[1]

    def close(self) -> int:
        """The archive's size: entries, central directory and end records."""
        num_files, files_size, cdfh_size = self._sizer._size_prog
        eocd = sizeEndCentDir
        if num_files >= 0xFFFF or files_size > ZIP64_LIMIT or cdfh_size > ZIP64_LIMIT:
            eocd += sizeEndCentDir64 + sizeEndCentDir64Locator
        return files_size + cdfh_size + eocd

    def discard(self) -> None:
        """Nothing to release."""


def predicted_zip_size(entries: Iterator[tuple[str, int]]) -> int:
    """The exact size of a stored archive of ``(path, size)`` entries (see :class:`ZipSizer`)."""
    sizer = ZipSizer()
    for path, size in entries:
        sizer.add(path, size)
    return sizer.close()
