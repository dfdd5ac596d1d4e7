"""Blobs in an S3-compatible bucket (``s3://bucket/prefix``), through obstore's sync API.

Why the sync API: obstore's async one runs only on asyncio, and the product
runs on trio; its sync calls release the GIL while they wait, so they are
called from worker threads like every other store call. Measured on
loopback (SeaweedFS) it fetches 3.3-6.7 k objects/s at 100-150 µs of CPU
each, about five times boto3.

Layout under the prefix:

- ``blobs/<aa>/<sha256>``: a large blob, one object each. A put streams to
  ``tmp/<uuid>`` as a multipart upload (hashing on the way, never holding
  the blob), then copies it server-side to its content address and deletes
  the temporary object: a failed put leaves no blob (obstore aborts the
  multipart upload when the stream fails).
- ``packs/<id>``: small blobs appended into pack objects
  (``engine.store.blobs.packs``), located by (pack, offset, size) in the
  metadata and read back with one coalesced ranged read per pack.

Connection settings come from the standard variables: ``AWS_ENDPOINT_URL``
(a self-hosted server; path-style addressing), ``AWS_REGION``,
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` and ``AWS_ALLOW_HTTP=true``
for a plain-http endpoint. Every obstore failure is turned into the
product's errors here (:func:`s3_error`), naming the endpoint and what was
being done.
"""

from __future__ import annotations

import hashlib
import os
import uuid
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from engine.errors import AuthenticationFailed, DsexportError, InvalidInput, MissingBlob, RemoteError
from engine.store.api import BlobRef, PackSlot
from engine.store.blobs.packs import PACK_BYTES, S3PackWriter

__all__ = ["READ_CHUNK", "S3Blob", "S3Blobs", "S3Location", "s3_error"]

READ_CHUNK = 1024 * 1024
"""The smallest piece :meth:`S3Blob.chunks` yields (all but the last)."""
PART_BYTES = 8 * 1024 * 1024
"""Multipart part size of a large blob's put (S3's minimum is 5 MiB)."""


@dataclass(frozen=True, slots=True)
class S3Location:
    """A bucket, a key prefix in it, and the endpoint from the environment (for messages)."""

    bucket: str
    prefix: str
    endpoint: str

    @classmethod
    def parse(cls, url: str) -> S3Location:
        """``s3://bucket/prefix`` (prefix optional); anything else is InvalidInput naming the form."""
        rest = url.removeprefix("s3://") if url.startswith("s3://") else None
        bucket, _, prefix = (rest or "").partition("/")
        if rest is None or not bucket:
            raise InvalidInput(f"not an S3 URL: {url!r}; expected s3://BUCKET or s3://BUCKET/PREFIX")
        endpoint = os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT") or "AWS S3"
        return cls(bucket, prefix.strip("/"), endpoint)

    def key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def display(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{key or self.prefix} at {self.endpoint}"

    def client(self) -> Any:
        """An obstore S3Store for the bucket: settings from the environment, path-style, bounded retries.

        Retries are bounded (10 s in all) so a server that went away is
        reported promptly rather than after object_store's default 3 minutes.
        """
        from obstore.store import S3Store

        options: dict[str, Any] = {"connect_timeout": "5s", "timeout": "60s"}
        if os.environ.get("AWS_ALLOW_HTTP", "").lower() in ("1", "true", "yes"):
            options["allow_http"] = True
        config: dict[str, Any] = {"virtual_hosted_style_request": False}
        if os.environ.get("AWS_ENDPOINT_URL"):
            config["endpoint"] = os.environ["AWS_ENDPOINT_URL"]
        if not os.environ.get("AWS_REGION") and not os.environ.get("AWS_DEFAULT_REGION"):
            config["region"] = "us-east-1"
        retry = {"max_retries": 3, "retry_timeout": timedelta(seconds=10),
                 "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=2)}}
        try:
            return S3Store(self.bucket, config=config, client_options=options, retry_config=retry)
        except Exception as exc:  # obstore's configuration errors
            raise InvalidInput(f"cannot use {self.display()}: {exc}") from exc


def s3_error(exc: BaseException, where: S3Location, key: str, doing: str, item_id: str | None = None) -> DsexportError:
    """The product's error for an obstore failure: what was done, where, and (for content) which item."""
    from obstore.exceptions import PermissionDeniedError, UnauthenticatedError

    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    place = where.display(key)
    subject = f"item {item_id}: " if item_id else ""
    if "NoSuchBucket" in str(exc):
        return InvalidInput(f"{doing}: there is no bucket {where.bucket!r} at {where.endpoint}; create it first")
    if isinstance(exc, FileNotFoundError):
        return MissingBlob(f"{subject}{doing}: no object {place}", item_id=item_id)
    if isinstance(exc, (PermissionDeniedError, UnauthenticatedError)):
        return AuthenticationFailed(
            f"{subject}{doing}: {place} refused the credentials (check AWS_ACCESS_KEY_ID and"
            f" AWS_SECRET_ACCESS_KEY): {text}"
        )
    # The server failed or went away: not the item's fault, so not MissingBlob (--skip-missing must not skip it).
    return RemoteError(f"{subject}{doing} failed ({place}): {text}")


@dataclass(frozen=True, slots=True)
class S3Blob:
    """A large blob in a bucket as an export reads it (implements ``formats.base.Blob``): streamed, never whole."""

    blobs: S3Blobs
    key: str
    size: int
    crc32: int | None
    sha256: str
    item_id: str

    def chunks(self) -> Iterator[bytes]:
        """Yield the bytes in pieces of at least 1 MiB; MissingBlob (naming the item) if gone or resized."""
        import obstore

        where, seen = self.blobs.location, 0
        try:
            result = obstore.get(self.blobs.client, self.key)
            for piece in result.stream(min_chunk_size=READ_CHUNK):
                chunk = bytes(piece)
                seen += len(chunk)
                if seen > self.size:
                    raise MissingBlob(
                        f"item {self.item_id}: blob {self.sha256} is corrupt ({where.display(self.key)}):"
                        f" longer than the recorded {self.size} bytes", item_id=self.item_id)
                yield chunk
        except DsexportError:
            raise
        except Exception as exc:
            raise s3_error(exc, where, self.key, f"reading blob {self.sha256}", self.item_id) from exc
        if seen != self.size:
            raise MissingBlob(
                f"item {self.item_id}: blob {self.sha256} is corrupt ({where.display(self.key)}):"
                f" {seen} bytes, expected {self.size}", item_id=self.item_id)

    def read(self) -> bytes:
        return b"".join(self.chunks())


class _Hashing:
    """Wraps a stream of chunks, hashing them as obstore pulls them."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it = iter(chunks)
        self.sha, self.crc, self.size = hashlib.sha256(), 0, 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._it:
            self.sha.update(chunk)
            self.crc = zlib.crc32(chunk, self.crc)
            self.size += len(chunk)
            yield chunk

    def ref(self) -> BlobRef:
        return BlobRef(self.sha.hexdigest(), self.size, self.crc)


class S3Blobs:
    """Content by SHA-256 in a bucket, with the optional packs capability. Thread-safe (obstore clients are)."""

    def __init__(self, location: S3Location, *, pack_bytes: int = PACK_BYTES) -> None:
        self.location = location
        self.client = location.client()
        self.pack_bytes = pack_bytes

    @classmethod
    def from_url(cls, url: str) -> S3Blobs:
        return cls(S3Location.parse(url))

    def url(self) -> str:
        return f"s3://{self.location.bucket}/{self.location.prefix}".rstrip("/")

    def key_for(self, sha256: str) -> str:
        return self.location.key("blobs", sha256[:2], sha256)

    # -- BlobStore ---------------------------------------------------------------

    def put(self, chunks: Iterable[bytes]) -> BlobRef:
        """Stream to a temporary object (multipart), then copy it server-side to its content address."""
        import obstore

        from obstore.exceptions import BaseError

        temp = self.location.key("tmp", uuid.uuid4().hex)
        stream = _Hashing(chunks)
        try:
            obstore.put(self.client, temp, iter(stream), chunk_size=PART_BYTES, max_concurrency=4)
        except BaseError as exc:  # a failing source stream raises its own error, passed on as it is
            raise s3_error(exc, self.location, temp, "writing a blob") from exc
        ref = stream.ref()
        try:
            if not self.exists(ref.sha256):
                self._call(obstore.copy, temp, self.key_for(ref.sha256), doing="storing a blob")
        finally:
            self._delete_quietly(temp)
        return ref

    def open(self, ref: BlobRef, item_id: str) -> S3Blob:
        return S3Blob(self, self.key_for(ref.sha256), ref.size, ref.crc32, ref.sha256, item_id)

    def exists(self, sha256: str) -> bool:
        import obstore

        try:
            self._call(obstore.head, self.key_for(sha256), doing="looking up a blob")
        except MissingBlob:
            return False
        return True

    def delete(self, sha256: str) -> None:
        import obstore

        self._call(obstore.delete, self.key_for(sha256), doing="deleting a blob")

    # -- the packs capability (engine.store.api.PackedBlobs) ---------------------

    def pack_writer(self) -> S3PackWriter:
        """A writer appending small blobs into new pack objects (see ``engine.store.blobs.packs``)."""
        return S3PackWriter(self, self.pack_bytes)

    def read_packed(self, slots: Sequence[PackSlot], item_ids: Sequence[str]) -> list[bytes]:
        """The bytes of each slot, with one coalesced ranged read (``get_ranges``) per pack."""
        import obstore

        out: list[bytes | None] = [None] * len(slots)
        by_pack: dict[str, list[int]] = {}
        for n, slot in enumerate(slots):
            by_pack.setdefault(slot.pack, []).append(n)
        for pack, members in by_pack.items():
            key = self.pack_key(pack)
            try:
                got = obstore.get_ranges(
                    self.client, key, starts=[slots[n].offset for n in members],
                    lengths=[slots[n].size for n in members],
                )
            except Exception as exc:
                first = item_ids[members[0]]
                more = f" (and {len(members) - 1} more items of that pack)" if len(members) > 1 else ""
                raise s3_error(exc, self.location, key, f"reading pack {pack}{more}", first) from exc
            for n, data in zip(members, got):
                out[n] = bytes(data)
        return out  # type: ignore[return-value]

    def pack_key(self, pack: str) -> str:
        return self.location.key("packs", pack)

    def list_packs(self) -> dict[str, float]:
        """Every pack object with its last-modified time (seconds since the epoch)."""
        import obstore

        prefix = self.location.key("packs") + "/"
        try:
            return {
                meta["path"].rsplit("/", 1)[-1]: meta["last_modified"].timestamp()
                for batch in obstore.list(self.client, prefix)
                for meta in batch
            }
        except Exception as exc:
            raise s3_error(exc, self.location, prefix, "listing packs") from exc

    def delete_pack(self, pack: str) -> None:
        import obstore

        self._call(obstore.delete, self.pack_key(pack), doing=f"deleting pack {pack}")

    # -- helpers -----------------------------------------------------------------

    def _call(self, function: Any, key: str, *args: Any, doing: str) -> Any:
        try:
            return function(self.client, key, *args)
        except Exception as exc:
            raise s3_error(exc, self.location, key, doing) from exc

    def _delete_quietly(self, key: str) -> None:
        import obstore

        try:
            obstore.delete(self.client, key)
        except Exception:  # noqa: BLE001 - a leftover temporary object is harmless; the put's own outcome matters
            pass
