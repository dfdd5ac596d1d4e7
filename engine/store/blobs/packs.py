"""Pack objects: small blobs appended in ingest order into big objects (the Haystack idea).

One GET per 1 KiB object tops out at 4-7 k objects/s even on loopback;
the same blobs read out of one big object come at ~107 k/s as scattered
coalesced ranges and ~1 M/s sequentially. So blobs under ``INLINE_LIMIT``
in object storage are not objects of their own: a :class:`S3PackWriter`
appends them to ``packs/<id>`` (a multipart upload, 8 MiB parts, a few in
flight), rolling over to a new pack at ``PACK_BYTES``, and hands back each
one's :class:`~engine.store.api.PackSlot`. A pack becomes visible only when
sealed (the multipart upload completed), and the metadata back end records
the slots only after that: a recorded slot never names bytes that were not
written. Aborting (or an error inside ``with``) aborts the open upload and
deletes the packs this writer sealed, which nothing recorded yet.

Pack ids are time-ordered (UUIDv7), so listing packs is listing them in
ingest order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.errors import DsexportError
from engine.ids import new_id
from engine.store.api import PackSlot

if TYPE_CHECKING:
    from engine.store.blobs.s3 import S3Blobs

__all__ = ["PACK_BYTES", "PACK_PART_BYTES", "S3PackWriter"]

PACK_BYTES = 64 * 1024 * 1024
"""A pack is sealed and a new one begun once it would grow past this."""
PACK_PART_BYTES = 8 * 1024 * 1024
"""Multipart part size of a pack upload (memory held: a few of these)."""


class S3PackWriter:
    """Appends small blobs to new pack objects of one :class:`S3Blobs`. One thread at a time.

    ``with`` seals on success and aborts on any error (Ctrl-C included).
    """

    def __init__(self, blobs: S3Blobs, limit: int = PACK_BYTES) -> None:
        self._blobs = blobs
        self._limit = limit
        self._writer: Any = None
        self._pack = ""
        self._offset = 0
        self.sealed: list[str] = []
        """The packs this writer has sealed so far."""

    def add(self, data: bytes) -> PackSlot:
        """Append ``data`` to the open pack (beginning one if needed); where it will be once sealed."""
        if self._writer is not None and self._offset and self._offset + len(data) > self._limit:
            self._seal_open()
        if self._writer is None:
            self._begin()
        slot = PackSlot(self._pack, self._offset, len(data))
        self._guarded(lambda: self._writer.write(data), "writing")
        self._offset += len(data)
        return slot

    def seal(self) -> list[str]:
        """Complete the open pack: everything added is now readable. Returns every pack sealed."""
        if self._writer is not None:
            self._seal_open()
        return self.sealed

    def abort(self) -> None:
        """Abort the open upload (no parts left behind) and delete the packs already sealed by this writer."""
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                # WritableFile has no abort(); leaving its context with an error aborts the upload.
                writer.__exit__(RuntimeError, RuntimeError("pack aborted"), None)
            except Exception:  # noqa: BLE001 - aborting is best effort; the caller's error is what matters
                pass
        for pack in self.sealed:
            try:
                self._blobs.delete_pack(pack)
            except DsexportError:
                pass  # an unrecorded pack is deleted later by `dsexport store compact`
        self.sealed = []

    def __enter__(self) -> S3PackWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if kind is None:
            self.seal()
        else:
            self.abort()

    def _begin(self) -> None:
        import obstore

        self._pack, self._offset = new_id(), 0
        key = self._blobs.pack_key(self._pack)
        self._writer = self._guarded(
            lambda: obstore.open_writer(self._blobs.client, key, buffer_size=PACK_PART_BYTES, max_concurrency=4),
            "beginning",
        )

    def _seal_open(self) -> None:
        writer, self._writer = self._writer, None
        self._guarded(writer.close, "sealing")
        self.sealed.append(self._pack)

    def _guarded(self, call: Any, doing: str) -> Any:
        from engine.store.blobs.s3 import s3_error

        try:
            return call()
        except Exception as exc:
            raise s3_error(exc, self._blobs.location, self._blobs.pack_key(self._pack), f"{doing} pack {self._pack}") from exc
