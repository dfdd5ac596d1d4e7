"""Relocating central-directory records by an offset.

A part's records carry offsets relative to the part's start. In the stitched
archive each must point ``shift`` bytes further. Most records only need
their 4-byte offset field rewritten; a record whose new offset passes the
zip64 limit (or that already carries a zip64 extra field) is packed again by
:func:`engine.zipwriter.central_record`, the writer's own code, so it gains
exactly the zip64 extra and version fields the single-process writer gives it.
"""

from __future__ import annotations

import struct
from zipfile import ZIP64_LIMIT

from engine.zipwriter import central_record

__all__ = ["relocate"]

_FIXED = 46  # size of the fixed part of a central-directory record
_lengths = struct.Struct("<HHH")  # name, extra and comment lengths at byte 28
_offset = struct.Struct("<L")  # local header offset at byte 42
_fields = struct.Struct("<HHHHLLL")  # flags .. file size, from byte 8
_FLAG_UTF8 = 0x800


def relocate(records: bytes, shift: int) -> tuple[bytes, int, int]:
    """The whole records at the start of ``records``, every offset moved by ``shift``.

    Returns (relocated records, how many, how many bytes of ``records`` they
    took); a record cut off at the end is left for the next call.
    """
    out = bytearray()
    count = 0
    pos = 0
    done = 0  # records[done:pos] are plain ones still to be copied in one go
    limit = len(records)
    while pos + _FIXED <= limit:
        name_len, extra_len, comment_len = _lengths.unpack_from(records, pos + 28)
        end = pos + _FIXED + name_len + extra_len + comment_len
        if end > limit:
            break
        old = _offset.unpack_from(records, pos + 42)[0]
        if extra_len == 0 and old + shift <= ZIP64_LIMIT:
            out += records[done:pos + 42]
            out += _offset.pack(old + shift)
            done = pos + 46
        else:
            out += records[done:pos]
            out += _rebuild(records[pos:end], shift)
            done = end
        count += 1
        pos = end
    out += records[done:pos]
    return bytes(out), count, pos


def _rebuild(record: bytes, shift: int) -> bytes:
    """Unpack one record (zip64 extra included) and pack it again at its new offset."""
    flags, method, _time, _date, crc, csize, usize = _fields.unpack_from(record, 8)
    name_len, extra_len, comment_len = _lengths.unpack_from(record, 28)
    offset = _offset.unpack_from(record, 42)[0]
    raw_name = record[_FIXED : _FIXED + name_len]
    name = raw_name.decode("utf-8" if flags & _FLAG_UTF8 else "cp437")
    extra = record[_FIXED + name_len : _FIXED + name_len + extra_len]
    values = _zip64_values(extra)
    if usize == 0xFFFFFFFF:
        usize = values.pop(0)
    if csize == 0xFFFFFFFF:
        csize = values.pop(0)
    if offset == 0xFFFFFFFF:
        offset = values.pop(0)
    return central_record(
        name,
        flags=flags,
        compress_type=method,
        crc=crc,
        compress_size=csize,
        file_size=usize,
        offset=offset + shift,
    )


def _zip64_values(extra: bytes) -> list[int]:
    """The 8-byte values of the zip64 extra field (id 1); the writer adds no other."""
    pos = 0
    while pos + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, pos)
        if tag == 1:
            return list(struct.unpack_from(f"<{size // 8}Q", extra, pos + 4))
        pos += 4 + size
    if extra:
        raise ValueError("central-directory record has an extra field the writer does not write")
    return []
