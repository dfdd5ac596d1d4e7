"""Scale-out with its parts in a bucket: ``--parts-dir s3://bucket/prefix -o s3://bucket/key.zip``.

Workers then need no shared file system. Each writes its part's
``.zipdata`` (the bulk of the archive) straight to the bucket as a
multipart upload, and its small files (central-directory records, claims,
spool pieces) beside it once done. The driver fetches only the small files,
settles the claims as usual, and builds the output object with server-side
copies: a multipart upload whose parts are ``UploadPartCopy`` ranges of the
workers' objects, plus the bytes the driver itself writes (the format's
closing entries and the central directory). So the archive's bytes never
pass through the driver, and its serial work is the central directory.

S3's rules shape the parts: every part but the last is at least 5 MiB and
at most 5 GiB, at most 10,000 parts. A shard's object under 5 MiB (or the
bytes before one) cannot be a part of its own, so those small pieces are
read into the driver's buffer and merged with their neighbours.

Why boto3 here: obstore has no multipart API, and in particular no
``UploadPartCopy``; boto3 is used for this assembly alone.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from engine.errors import AuthenticationFailed, OutputError, RemoteError
from engine.scaleout.parts import PartManifest, PartSpec, run_part
from engine.sources import Source
from engine.store.blobs.s3 import S3Location

__all__ = [
    "MIN_PART", "Segments", "assemble", "fetch_part_files", "new_run", "remove_run", "run_part_in_bucket",
    "stitch_to_bucket", "upload_seed",
]

MIN_PART = 5 * 1024 * 1024
"""S3's smallest part (all but the last)."""
MAX_COPY = 5 * 1024 * 1024 * 1024
"""S3's largest part, copied or uploaded."""
_FLUSH = 16 * 1024 * 1024
"""The driver's own bytes are sent as a part once this many are buffered."""


def new_run(parts_dir: str) -> str:
    """A fresh run prefix under ``parts_dir`` (an ``s3://`` URL) for one export's parts."""
    return f"{parts_dir.rstrip('/')}/.dsexport-parts-{secrets.token_hex(6)}"


def _object(url: str) -> tuple[Any, str]:
    location = S3Location.parse(url)
    return location.client(), location.prefix


def _failed(exc: BaseException, url: str, doing: str) -> Exception:
    from engine.store.blobs.s3 import s3_error

    return s3_error(exc, S3Location.parse(url), S3Location.parse(url).prefix, doing)


def _put_file(path: Path, url: str) -> None:
    import obstore

    client, key = _object(url)
    try:
        obstore.put(client, key, path)
    except Exception as exc:
        raise _failed(exc, url, "writing a part") from exc


def _get_file(url: str, path: Path) -> None:
    import obstore

    client, key = _object(url)
    try:
        result = obstore.get(client, key)
        with open(path, "wb") as out:
            for chunk in result.stream(min_chunk_size=1 << 20):
                out.write(chunk)
    except Exception as exc:
        raise _failed(exc, url, "reading a part") from exc


# -- the worker's side ---------------------------------------------------------------


def run_part_in_bucket(spec: PartSpec, source_factory: Callable[[], Source]) -> PartManifest:
    """Write ``spec``'s part with its data object in the bucket; the small files follow it there."""
    from engine.sink_s3 import S3Sink

    run_url = spec.run_dir
    local = Path(tempfile.mkdtemp(prefix=".dsexport-part-"))
    try:
        seed = None
        if spec.seed is not None:
            seed = local / "seed.sqlite3"
            _get_file(spec.seed, seed)
        here = msgspec.structs.replace(spec, run_dir=str(local), seed=None if seed is None else str(seed))
        manifest = run_part(here, source_factory, data_sink=lambda data: S3Sink(f"{run_url}/{data.name}"))
        for name in (manifest.central_directory, manifest.claims, *(p.file for p in manifest.pieces)):
            _put_file(local / name, f"{run_url}/{name}")
        return manifest
    finally:
        shutil.rmtree(local, ignore_errors=True)


# -- the driver's side ---------------------------------------------------------------


def fetch_part_files(run_url: str, part: PartManifest, run_dir: Path) -> PartManifest:
    """Bring a finished part's small files (not its data) into the driver's ``run_dir``."""
    for name in (part.central_directory, part.claims, *(p.file for p in part.pieces)):
        _get_file(f"{run_url}/{name}", run_dir / name)
    return part


def upload_seed(ledger: Path, run_url: str) -> str:
    """The claims ledger where a re-run shard's worker can read it; its URL."""
    url = f"{run_url}/seed-{secrets.token_hex(4)}.sqlite3"
    _put_file(ledger, url)
    return url


def remove_run(run_url: str) -> None:
    """Delete every object of the run (best effort: a failure here must not hide the export's outcome)."""
    import obstore

    client, prefix = _object(run_url)
    try:
        keys = [meta["path"] for batch in obstore.list(client, prefix + "/") for meta in batch]
        if keys:
            obstore.delete(client, keys)
    except Exception:  # noqa: BLE001
        pass


class Segments:
    """The archive as the stitch writes it: copies of part objects and the driver's own bytes, in order."""

    def __init__(self) -> None:
        self.items: list[tuple[str, int] | bytearray] = []

    def write(self, data: bytes) -> None:
        if data:
            if not self.items or not isinstance(self.items[-1], bytearray):
                self.items.append(bytearray())
            self.items[-1] += data  # type: ignore[operator]

    def copy(self, key: str, size: int) -> None:
        if size:
            self.items.append((key, size))


def _boto_client() -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
        region_name=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3, "mode": "standard"}),
    )


def stitch_to_bucket(
    plan: Any, options: Any, parts: list[PartManifest], run_dir: Path, run_url: str, output_url: str
) -> tuple[int, int]:
    """The stitch of ``engine.scaleout.stitch`` with the parts' data in the bucket; (archive bytes, entries)."""
    from engine.scaleout.stitch import write_archive

    segments = Segments()
    run = S3Location.parse(run_url)
    size, entries = write_archive(
        plan, options, parts, run_dir, segments.write, lambda part: segments.copy(run.key(part.data), part.size), None
    )
    assemble(segments, output_url, run_url)
    return size, entries


def assemble(segments: Segments, output_url: str, run_url: str) -> int:
    """Build ``output_url`` from ``segments`` as one multipart upload; aborted (nothing left) on any error.

    Returns the number of parts.
    """
    location = S3Location.parse(output_url)
    source = S3Location.parse(run_url)  # the segments' keys are in its bucket
    client = _boto_client()
    bucket, key = location.bucket, location.prefix
    try:
        upload = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    except Exception as exc:
        raise _boto_error(exc, location, "writing") from exc
    parts: list[dict[str, Any]] = []
    buffer = bytearray()

    def send(data: bytes | bytearray) -> None:
        got = client.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=len(parts) + 1, Body=bytes(data))
        parts.append({"PartNumber": len(parts) + 1, "ETag": got["ETag"]})

    def copy(object_key: str, start: int, end: int) -> None:  # end exclusive
        got = client.upload_part_copy(
            Bucket=bucket, Key=key, UploadId=upload, PartNumber=len(parts) + 1,
            CopySource={"Bucket": source.bucket, "Key": object_key}, CopySourceRange=f"bytes={start}-{end - 1}",
        )  # fmt: skip
        parts.append({"PartNumber": len(parts) + 1, "ETag": got["CopyPartResult"]["ETag"]})

    def read(object_key: str, start: int, end: int) -> bytes:
        got = client.get_object(Bucket=source.bucket, Key=object_key, Range=f"bytes={start}-{end - 1}")
        with got["Body"] as body:
            return body.read()

    try:
        for item in segments.items:
            if isinstance(item, bytearray):
                buffer += item
                while len(buffer) >= _FLUSH:
                    send(buffer[:_FLUSH])
                    del buffer[:_FLUSH]
                continue
            object_key, size = item
            offset = 0
            if buffer:  # the bytes before this copy are a part only with at least 5 MiB: top them up from it
                take = min(size, max(0, MIN_PART - len(buffer)))
                buffer += read(object_key, 0, take) if take else b""
                offset = take
                if len(buffer) >= MIN_PART:
                    send(buffer)
                    buffer = bytearray()
            while size - offset >= MIN_PART:  # server-side copies of at most 5 GiB each
                end = min(size, offset + MAX_COPY)
                copy(object_key, offset, end)
                offset = end
            if offset < size:  # a small remainder: merged into the next part
                buffer += read(object_key, offset, size)
        if buffer or not parts:
            send(buffer)
        if len(parts) > 10_000:
            raise OutputError(f"cannot write {output_url}: {len(parts)} parts, more than S3's 10,000")
        client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts})
    except BaseException as exc:
        try:
            client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload)
        except Exception:  # noqa: BLE001 - best effort; the error below is what matters
            pass
        if isinstance(exc, Exception) and not isinstance(exc, OutputError):
            raise _boto_error(exc, location, "assembling") from exc
        raise
    finally:
        client.close()
    return len(parts)


def _boto_error(exc: BaseException, location: S3Location, doing: str) -> Exception:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "") if hasattr(exc, "response") else ""
    where = location.display(location.prefix)
    if code in ("SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied"):
        return AuthenticationFailed(f"{doing} {where}: the server refused the credentials ({code})")
    if code:
        return OutputError(f"{doing} {where} failed: {code}: {exc}")
    return RemoteError(f"{doing} {where} failed: {exc}")
