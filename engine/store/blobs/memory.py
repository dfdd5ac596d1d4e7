"""Blobs in a dict: the blob back end for tests (and the contract suite's second subject).

Nothing survives the process. Thread-safe: a put builds the whole value
before one dict assignment, so readers see a blob wholly or not at all.
"""

from __future__ import annotations

import hashlib
import threading
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from engine.errors import MissingBlob
from engine.store.api import BlobRef

__all__ = ["MemoryBlob", "MemoryBlobs"]

_CHUNK = 1024 * 1024


_NAMED: dict[str, MemoryBlobs] = {}
_NAMED_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class MemoryBlob:
    """A blob of a :class:`MemoryBlobs`, read lazily like a file blob (implements ``formats.base.Blob``)."""

    store: MemoryBlobs
    sha256: str
    size: int
    crc32: int | None
    item_id: str

    def chunks(self) -> Iterator[bytes]:
        data = self.store._data.get(self.sha256)
        if data is None:
            raise MissingBlob(f"item {self.item_id}: blob {self.sha256} is missing (memory)", item_id=self.item_id)
        if len(data) != self.size:
            raise MissingBlob(
                f"item {self.item_id}: blob {self.sha256} is corrupt ({len(data)} bytes, expected {self.size})",
                item_id=self.item_id,
            )
        for start in range(0, len(data), _CHUNK):
            yield data[start : start + _CHUNK]

    def read(self) -> bytes:
        return b"".join(self.chunks())


class MemoryBlobs:
    """Content by SHA-256 in memory."""

    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}

    @classmethod
    def from_url(cls, url: str) -> MemoryBlobs:
        """``memory:`` is a new, empty store; ``memory:NAME`` the one of that name in this process.

        A name lets a writer and a reader opened separately (a store and an
        export's reader) see the same content.
        """
        name = url.partition(":")[2].removeprefix("//")
        if not name:
            return cls()
        with _NAMED_LOCK:
            return _NAMED.setdefault(name, cls())

    def put(self, chunks: Iterable[bytes]) -> BlobRef:
        data = b"".join(chunks)
        ref = BlobRef(hashlib.sha256(data).hexdigest(), len(data), zlib.crc32(data))
        self._data[ref.sha256] = data
        return ref

    def open(self, ref: BlobRef, item_id: str) -> MemoryBlob:
        return MemoryBlob(self, ref.sha256, ref.size, ref.crc32, item_id)

    def exists(self, sha256: str) -> bool:
        return sha256 in self._data

    def delete(self, sha256: str) -> None:
        self._data.pop(sha256, None)
