"""Blob files the kernel copies into the archive, checked before they are copied.

A stored ZIP entry's local header needs only the name, the size and the
CRC-32, and the store recorded size and CRC-32 at ingest. So when a blob's
bytes lie in a local file (its ``file_region()``, see ``formats.base``) and
the sink can take a kernel copy (``copy_from``, see ``engine.sinks``), the
zip writer writes the header from the record and has the kernel copy the
bytes (``copy_file_range``, ``sendfile``): Python never touches them. A
sink that cannot (an HTTP response) gets files of up to
:data:`READ_IN_MAX` read into the writer's output in one read each, with
no second CRC pass.

What keeps that trustworthy is done here, in the fetch window's worker
threads while the writer copies earlier items:

* every file is opened and its size compared with the record (a missing,
  truncated or grown file is caught, as ``--skip-missing`` expects);
* with ``verify`` (the default) its CRC-32 is computed (one read of a
  small file, an ``mmap`` of a big one) and compared with the record: a
  blob that rotted on disk is caught before a byte of it is written.
  zlib-ng's ``crc32`` (SIMD, ~10 GiB/s here, the GIL released) rather than
  the standard library's (~3): it is the same function, and verifying then
  costs a fraction of the copy;
* the file's identity (device, inode, size, modification time) is kept in
  the :class:`CheckedFile` that replaces the item's content, and the writer
  compares it again when it opens the file to copy it and after the copy,
  so a file replaced or rewritten since the check is refused, not copied.

Reading the file for the CRC also brings it into the page cache, so the
kernel's copy right after reads memory, not the disk.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import anyio
import anyio.to_thread
from zlib_ng.zlib_ng import crc32

from engine.errors import ContentError
from formats.base import Blob, ExportItem, FileRegion

__all__ = ["CheckedFile", "READ_IN_MAX", "check_files", "copy_checked", "file_region_of", "read_checked"]

#: Checked files up to this size are read whole into the writer's output when the
#: sink cannot take a kernel copy (an HTTP response); larger ones stream in chunks.
READ_IN_MAX = 1 << 20

#: Files per worker-thread call at least: a hand-off costs about as much as checking 20 warm files,
#: and fewer checking threads contend less with the writer for the interpreter lock.
_GROUP_MIN = 64

#: The ``os.stat`` fields that say a file is still the one that was checked.
_Identity = tuple[int, int, int, int]


def _identity(st: os.stat_result) -> _Identity:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def file_region_of(content: object) -> FileRegion | None:
    """The file region of a blob that offers one (``formats.base.FileBacked``), else None."""
    region = getattr(content, "file_region", None)
    return region() if region is not None else None


@dataclass(frozen=True, slots=True)
class CheckedFile:
    """A blob whose file was found whole (and, if verified, matching its CRC-32): a ``Blob``.

    ``crc32`` is the recorded CRC-32, or the one computed by the check when
    the store has none. The zip writer copies ``region`` by the kernel when
    the sink can; anything else reads :meth:`chunks` as from the blob.
    """

    blob: Blob
    region: FileRegion
    size: int
    crc32: int
    identity: _Identity
    verified: bool

    @property
    def item_id(self) -> str | None:
        return getattr(self.blob, "item_id", None)

    def chunks(self) -> Iterator[bytes]:
        return self.blob.chunks()


def _check_one(blob: Blob, region: FileRegion, verify: bool) -> CheckedFile | None:
    """Open, size and (if ``verify`` or no CRC is recorded) CRC a blob's file; None if it does not match."""
    try:
        fd = os.open(region.path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if region.length != blob.size or st.st_size < region.offset + region.length:
            return None
        if region.whole_file and st.st_size != region.offset + region.length:  # a blob file that grew
            return None
        crc = blob.crc32
        if verify or crc is None:
            computed = _crc_of(fd, region)
            if crc is not None and computed != crc:
                return None
            crc = computed
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)
    return CheckedFile(blob, region, blob.size, crc, _identity(st), verify or blob.crc32 is None)


def _crc_of(fd: int, region: FileRegion) -> int:
    """CRC-32 of the region: read whole if small, else over read-only mappings of :data:`_WINDOW` bytes.

    Up to :data:`READ_IN_MAX`, one ``pread`` costs less than setting up and
    tearing down a mapping (measured: 40 % less CPU for 100 KiB images).
    Bigger regions are mapped, not read (no copy into Python objects), in
    windows, so a big blob is never mapped whole (mapped pages count in the
    process's RSS). No ``MADV_SEQUENTIAL``: it lets the kernel drop the
    pages just read, which the copy right after needs.
    """
    if region.length <= READ_IN_MAX:
        data = os.pread(fd, region.length, region.offset)
        if len(data) != region.length:
            raise ValueError("the file ended before the region")  # refused like a resized file
        return crc32(data)
    crc = 0
    position, end = region.offset, region.offset + region.length
    while position < end:
        start = position - position % mmap.ALLOCATIONGRANULARITY
        length = min(end, start + _WINDOW) - start
        with mmap.mmap(fd, length, access=mmap.ACCESS_READ, offset=start) as mapped:
            with memoryview(mapped) as view, view[position - start :] as part:
                crc = crc32(part, crc)
        position = start + length
    return crc


#: The largest mapping :func:`_crc_of` makes.
_WINDOW = 16 << 20


def _check_group(items: list[ExportItem], verify: bool, missing: list[ExportItem]) -> None:
    for item in items:
        blob = item.content
        checked = _check_one(blob, file_region_of(blob), verify)  # type: ignore[arg-type]
        if checked is None:
            missing.append(item)
        else:
            item.content = checked


async def check_files(items: list[ExportItem], window: int, *, verify: bool) -> list[ExportItem]:
    """Check the file blobs of ``items`` (which all offer a file region), in up to ``window`` threads.

    Each good one's content becomes a :class:`CheckedFile`; the others are
    returned (missing, resized or, with ``verify``, not matching their
    CRC-32). One worker-thread call checks a whole group, not one file: a
    thread hand-off costs more than opening a file. On cancellation some,
    all or none of the items have been checked.
    """
    missing: list[ExportItem] = []
    count = min(window, -(-len(items) // _GROUP_MIN))
    groups = [items[i::count] for i in range(count)]
    async with anyio.create_task_group() as tg:
        for group in groups:
            tg.start_soon(anyio.to_thread.run_sync, _check_group, group, verify, missing)
    return missing


def copy_checked(path: str, checked: CheckedFile, copy: Callable[[int, int, int], int]) -> None:
    """Have ``copy(fd, offset, length)`` put the checked file's bytes into the output.

    ContentError (naming the item) if the file is no longer the one checked,
    or yields fewer bytes than recorded: the entry would be corrupt.
    """
    _with_checked_file(path, checked, lambda fd, region: copy(fd, region.offset, region.length))


def read_checked(path: str, checked: CheckedFile) -> bytes:
    """The checked file's bytes, in one read (ContentError as :func:`copy_checked`)."""
    data = b""

    def read(fd: int, region: FileRegion) -> int:
        nonlocal data
        data = os.pread(fd, region.length, region.offset)
        return len(data)

    _with_checked_file(path, checked, read)
    return data


def _with_checked_file(path: str, checked: CheckedFile, move: Callable[[int, FileRegion], int]) -> None:
    """Open the checked file, check it is the same one, ``move`` its region's bytes, check again."""
    region = checked.region
    try:
        fd = os.open(region.path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise _changed(path, checked, f"it can no longer be opened: {exc.strerror or exc}") from None
    try:
        if _identity(os.fstat(fd)) != checked.identity:
            raise _changed(path, checked, "the file was replaced or modified after it was checked")
        moved = move(fd, region)
        if moved != region.length:
            raise _changed(path, checked, f"only {moved:,} of its {region.length:,} bytes could be read")
        if _identity(os.fstat(fd)) != checked.identity:
            raise _changed(path, checked, "the file was modified while it was being copied")
    finally:
        os.close(fd)


def _changed(path: str, checked: CheckedFile, why: str) -> ContentError:
    item = checked.item_id
    return ContentError(
        f"{path}: the blob file of item {item} changed on disk during the export ({why})",
        item_id=item,
    )
