"""The driver's stitch: parts copied in order, records shifted, closing entries joined.

The archive is written exactly as the single-process writer writes it:

1. each part's bytes are copied into the output by the kernel
   (``os.copy_file_range``, else ``os.sendfile``), and its central-directory
   records relocated by the part's start (:func:`.records.relocate`) and
   handed to the writer;
2. the format's closing entries (``finish()``) come from a format object
   built on the driver with the same plan. Its spools are
   :class:`StitchSpool` objects that already hold every shard's records for
   that spool; a closing entry whose payload spans shards is written by
   :meth:`ZipWriter.write_copied` (stored: the pieces are copied by the
   kernel, its CRC-32 combined from theirs) or read back through the writer
   (deflate);
3. the writer's own footer writes the central directory and end records
   (zip64 where needed).

The serial cost is one pass over the records (about a microsecond each in
Python) plus the kernel's copy of the bytes; no payload passes through
Python when entries are stored.
"""

from __future__ import annotations

import errno
import os
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from zipfile import ZIP_STORED

from engine.errors import InvalidInput
from engine.pipeline import ExportOptions, check_options
from engine.sinks import FileSink
from engine.sources import ExportPlan
from engine.spool import SpillingClaims
from engine.zipwriter import COMPRESSION, ZipWriter
from engine.scaleout.crc import crc32_combine
from engine.scaleout.parts import PartManifest, Piece
from engine.scaleout.records import relocate
from formats.base import ExportContext

__all__ = ["StitchSpool", "StitchedBlob", "copy_range", "stitch", "write_archive"]

_COPY = 1 << 30
_RECORDS_BLOCK = 8 << 20


def copy_range(src: int, dst: int, offset: int, count: int) -> None:
    """Copy ``count`` bytes of ``src`` from ``offset`` to ``dst``'s position, in the kernel."""
    end = offset + count
    while offset < end:
        want = min(end - offset, _COPY)
        try:
            done = os.copy_file_range(src, dst, want, offset)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                raise
            done = os.sendfile(dst, src, offset, want)
        if done == 0:
            raise OSError(f"unexpected end of a part while copying at byte {offset}")
        offset += done


class StitchedBlob:
    """A closing entry's payload: head, the shards' pieces joined by the separator, tail."""

    def __init__(self, run_dir: Path, head: bytes, separator: bytes, tail: bytes, pieces: list[Piece]) -> None:
        self._dir = run_dir
        self._segments: list[bytes | Piece] = [head] if head else []
        for piece in pieces:
            if not piece.records:
                continue
            if separator and any(isinstance(s, Piece) for s in self._segments):
                self._segments.append(separator)
            self._segments.append(piece)
        if tail:
            self._segments.append(tail)
        self.size = 0
        crc = 0
        for segment in self._segments:
            length = len(segment) if isinstance(segment, bytes) else segment.size
            part_crc = zlib.crc32(segment) if isinstance(segment, bytes) else segment.crc
            crc = crc32_combine(crc, part_crc, length)
            self.size += length
        self.crc32: int | None = crc

    def chunks(self) -> Iterator[bytes]:
        """The bytes, read back (only when the entry is compressed)."""
        for segment in self._segments:
            if isinstance(segment, bytes):
                yield segment
                continue
            with open(self._dir / segment.file, "rb") as file:
                while chunk := file.read(1 << 20):
                    yield chunk

    def copy_to(self, fd: int, write: Callable[[bytes], object]) -> None:
        """Put the bytes into ``fd``: small framing via ``write``, pieces by the kernel."""
        for segment in self._segments:
            if isinstance(segment, bytes):
                write(segment)
                continue
            with open(self._dir / segment.file, "rb") as file:
                copy_range(file.fileno(), fd, 0, segment.size)


class StitchSpool:
    """The driver's stand-in for one spool: every shard's records are already in it."""

    def __init__(self, run_dir: Path, head: bytes, separator: bytes, tail: bytes, pieces: list[Piece]) -> None:
        self._blob = StitchedBlob(run_dir, head, separator, tail, pieces)
        self.records = sum(piece.records for piece in pieces)

    def write(self, record: bytes) -> None:
        raise AssertionError("the driver never writes items")

    def close(self) -> StitchedBlob:
        return self._blob


def stitch(
    plan: ExportPlan, options: ExportOptions, parts: list[PartManifest], run_dir: Path, output: str | os.PathLike[str]
) -> tuple[int, int]:
    """Write the archive of ``parts`` (in shard order) to ``output``, atomically.

    Returns (archive bytes, entries).
    """
    sink = FileSink(output)
    try:
        fd = sink.fileno()

        def copy_part(part: PartManifest) -> None:
            with open(run_dir / part.data, "rb") as data:
                copy_range(data.fileno(), fd, 0, part.size)

        size, entries = write_archive(
            plan, options, parts, run_dir, sink.write, copy_part, lambda blob: blob.copy_to(fd, sink.write)
        )
        sink.commit(size)
    except BaseException:
        sink.abort()
        raise
    return size, entries


def write_archive(
    plan: ExportPlan,
    options: ExportOptions,
    parts: list[PartManifest],
    run_dir: Path,
    write: Callable[[bytes], object],
    copy_part: Callable[[PartManifest], None],
    copy_stitched: Callable[[StitchedBlob], None] | None,
) -> tuple[int, int]:
    """Write the archive through ``write`` (the driver's bytes) and ``copy_part`` (a part's data, copied
    where it is: by the kernel into a file, or server-side in a bucket); (archive bytes, entries).

    ``copy_stitched`` puts a stored closing entry's payload in place without
    Python reading it (None: it is written through ``write``).
    """
    format_cls = check_options(plan, options)
    compress_type = COMPRESSION[options.compression]
    writer = ZipWriter(write, compress_type=compress_type)
    try:
        for part in parts:
            base = writer.bytes_written
            copy_part(part)
            _hand_over_records(writer, run_dir / part.central_directory, base, part.size)
        claims = SpillingClaims()
        made: list[StitchSpool] = []

        def new_spool(*, head: bytes = b"", separator: bytes = b"", tail: bytes = b"") -> StitchSpool:
            # The format makes its spools in the same order on every shard and here.
            pieces = [part.pieces[len(made)] for part in parts if len(made) < len(part.pieces)]
            if len(pieces) != len(parts):
                raise InvalidInput("the format made a different number of spools on the driver than on a shard")
            made.append(StitchSpool(run_dir, head, separator, tail, pieces))
            return made[-1]

        ctx = ExportContext(
            dataset=plan.dataset,
            version=plan.version,
            labels=plan.labels,
            splits=plan.splits,
            names=claims,
            spool=new_spool,
        )
        try:
            fmt = format_cls(ctx)
            if parts and len(made) != len(parts[0].pieces):
                raise InvalidInput("the format made a different number of spools on the driver than on a shard")
            for entry in fmt.finish():
                data = entry.data
                if isinstance(data, StitchedBlob) and compress_type == ZIP_STORED and copy_stitched is not None:
                    writer.write_copied(entry.path, data.size, data.crc32 or 0, lambda d=data: copy_stitched(d))
                else:
                    writer.write(entry.path, data)
        finally:
            claims.close()
        size = writer.close()
    except BaseException:
        writer.discard()
        raise
    return size, writer.entries_written


def _hand_over_records(writer: ZipWriter, path: Path, base: int, part_size: int) -> None:
    """Relocate a part's records by ``base`` and give them to the writer, a block at a time."""
    writer.advance(part_size)
    pending = b""
    with open(path, "rb") as file:
        while block := file.read(_RECORDS_BLOCK):
            block = pending + block
            records, count, used = relocate(block, base)
            writer.advance(0, records, count)
            pending = block[used:]
    if pending:
        raise ValueError(f"{path.name}: truncated central-directory records")
