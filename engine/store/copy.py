"""``dsexport store copy``: a whole store from one back end to another, ids kept, every blob verified.

The source dumps itself as records (``engine.store.records``) from one
snapshot; the target loads them. Between the two, every blob is checked
against its recorded SHA-256, size and CRC-32: a small blob's bytes as they
pass, a large blob's while its content streams into the target's blob
store (never whole in memory). A blob the target has already is not read
again, and records already there are skipped, so a copy that stopped (an
error, Ctrl-C) resumes where it was when run again.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable, Iterator

import msgspec

from engine.errors import MissingBlob
from engine.store.api import BlobRef, MetadataReader, MetadataStore
from engine.store.records import BlobRecord, StoreRecord

__all__ = ["CopyReport", "copy_store"]


class CopyReport(msgspec.Struct):
    records: int = 0
    blobs: int = 0
    blob_bytes: int = 0
    blobs_already_there: int = 0


def copy_store(
    source: MetadataReader, target: MetadataStore, *, progress: Callable[[CopyReport], None] | None = None
) -> CopyReport:
    """Copy everything in ``source`` into ``target``; returns what was copied."""
    report = CopyReport()

    def verified() -> Iterator[StoreRecord]:
        for record in source.records():  # type: ignore[attr-defined]
            report.records += 1
            if isinstance(record, BlobRecord):
                _copy_blob(source, target, record, report)
            if progress is not None and report.records % 10_000 == 0:
                progress(report)
            yield record

    target.load_records(verified())  # type: ignore[attr-defined]
    return report


def _copy_blob(source: MetadataReader, target: MetadataStore, record: BlobRecord, report: CopyReport) -> None:
    expected = BlobRef(record.sha256, record.size, record.crc32)
    report.blobs += 1
    report.blob_bytes += record.size
    if record.data is not None:
        if BlobRef.of(record.data) != expected:
            raise _corrupt(record, BlobRef.of(record.data))
        return
    if target.blobs.exists(record.sha256):
        report.blobs_already_there += 1
        return
    blob = source.open_blob(expected)  # type: ignore[attr-defined]
    sha, crc, size = hashlib.sha256(), 0, 0

    def chunks() -> Iterator[bytes]:
        nonlocal crc, size
        for chunk in blob.chunks():
            sha.update(chunk)
            crc = zlib.crc32(chunk, crc)
            size += len(chunk)
            yield chunk

    written = target.blobs.write_file(chunks())
    got = BlobRef(sha.hexdigest(), size, crc)
    if got != expected or written != expected:
        raise _corrupt(record, got)


def _corrupt(record: BlobRecord, got: BlobRef) -> MissingBlob:
    return MissingBlob(
        f"blob {record.sha256} is corrupt in the source: read {got.size} bytes with SHA-256 {got.sha256},"
        f" recorded {record.size} bytes; nothing after it was copied (fix the source, then run the copy again)"
    )
