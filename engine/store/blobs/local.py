"""Blobs as files in a folder: ``<root>/<aa>/<bb>/<sha256>``.

A blob is named by the SHA-256 of its bytes (lowercase hex). A put hashes
the stream while spooling it to a temporary file in the folder (same file
system), fsyncs it, then renames it into place: a crash leaves a stray temp
file, never a half-written blob. The file is in place before the metadata
back end records it, so a recorded blob never names a file that was not
written.

Only large blobs come here: the SQLite back end keeps blobs under
``INLINE_LIMIT`` inline (reading one small file costs 15-20 µs even warm,
which would cap small-item exports near 50 k items/s).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from engine.errors import MissingBlob
from engine.store.api import BlobRef

__all__ = ["READ_CHUNK", "BlobFile", "LocalBlobs"]

READ_CHUNK = 1024 * 1024
"""How much :meth:`BlobFile.chunks` reads at a time."""


@dataclass(frozen=True, slots=True)
class BlobFile:
    """A file blob as an export reads it (implements ``formats.base.Blob``).

    Reading checks the size against the one recorded at ingest; the CRC is
    left to the zip writer, which computes it anyway while streaming.
    """

    path: Path
    size: int
    crc32: int | None
    sha256: str
    item_id: str

    def chunks(self) -> Iterator[bytes]:
        """Yield the bytes in 1 MiB reads; MissingBlob if gone, unreadable or resized."""
        seen = 0
        try:
            with open(self.path, "rb") as f:
                while chunk := f.read(READ_CHUNK):
                    seen += len(chunk)
                    if seen > self.size:
                        raise self._missing("corrupt", f"longer than the recorded {self.size} bytes")
                    yield chunk
        except OSError as exc:
            raise self._missing("missing", exc.strerror or str(exc)) from exc
        if seen != self.size:
            raise self._missing("corrupt", f"{seen} bytes, expected {self.size}")

    def read(self) -> bytes:
        """The whole content at once (for callers that know it is small enough)."""
        return b"".join(self.chunks())

    def _missing(self, state: str, detail: str) -> MissingBlob:
        return MissingBlob(
            f"item {self.item_id}: blob {self.sha256} is {state} ({self.path}): {detail}", item_id=self.item_id
        )


class LocalBlobs:
    """A folder of content-addressed files (the ``blobs/`` folder of a store). Thread-safe."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    @classmethod
    def from_url(cls, url: str) -> LocalBlobs:
        """The folder a registry URL names: a plain path, or ``file:PATH``."""
        from engine.store.registry import split_url

        return cls(split_url(url)[1])

    def path_for(self, sha256: str) -> Path:
        """Where the file of a blob lives."""
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, chunks: Iterable[bytes]) -> BlobRef:
        """Hash and spool the stream, then rename it into place (also over a damaged file of the same hash)."""
        ref, temp = self._spool(chunks)
        target = self.path_for(ref.sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp, target)
        _fsync_dir(target.parent)
        return ref

    def open(self, ref: BlobRef, item_id: str) -> BlobFile:
        return BlobFile(self.path_for(ref.sha256), ref.size, ref.crc32, ref.sha256, item_id)

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def delete(self, sha256: str) -> None:
        self.path_for(sha256).unlink(missing_ok=True)

    def _spool(self, chunks: Iterable[bytes]) -> tuple[BlobRef, Path]:
        """Hash a stream into an fsync'ed temp file in the folder; nothing is left behind if it fails."""
        sha, crc, size = hashlib.sha256(), 0, 0
        self.root.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.root, prefix=".spool-")
        temp = Path(name)
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    sha.update(chunk)
                    crc = zlib.crc32(chunk, crc)
                    size += len(chunk)
                    f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return BlobRef(sha.hexdigest(), size, crc), temp


def _fsync_dir(path: Path) -> None:
    """Make a rename durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
