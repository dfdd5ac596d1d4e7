"""An archive written to a bucket (``-o s3://bucket/key.zip``): a multipart upload, completed only when whole.

The archive streams into an obstore ``WritableFile``: bytes are buffered up
to one part (8 MiB, above S3's 5 MiB minimum) and sent as parts, at most
four in flight, so memory stays near 40 MiB whatever the archive's size.
Nothing is visible at the key until :meth:`S3Sink.commit` completes the
upload, after checking that the writer's byte count was sent; any error,
Ctrl-C included, ends in :meth:`S3Sink.abort`, which aborts the upload so
no parts are left behind. (``WritableFile`` has no ``abort()``: leaving its
context with an error is how obstore aborts, so that is what we do.)

Credentials and the bucket are checked when the sink opens (one HEAD of the
key), so a wrong secret fails before the export starts.
"""

from __future__ import annotations

from typing import Any

from engine.errors import AuthenticationFailed, DsexportError, InvalidInput, OutputError

__all__ = ["PART_BYTES", "S3Sink"]

PART_BYTES = 8 * 1024 * 1024
"""Size of each uploaded part but the last."""
IN_FLIGHT = 4
"""Parts uploaded at once."""


class S3Sink:
    """Writes an archive to ``s3://bucket/key`` as one multipart upload (see the module docstring)."""

    def __init__(self, url: str) -> None:
        import obstore

        from engine.store.blobs.s3 import S3Location, s3_error

        location = S3Location.parse(url)
        if not location.prefix or url.endswith("/"):
            raise OutputError(f"cannot write {url}: name the object, e.g. s3://{location.bucket}/dataset.zip")
        self.url = url
        self._location = location
        self._key = location.prefix
        self._client = location.client()
        try:
            obstore.head(self._client, self._key)
        except FileNotFoundError:
            pass  # nothing there yet: the usual case
        except Exception as exc:
            raise _output_error(s3_error(exc, location, self._key, f"writing {url}")) from exc
        self._writer: Any = obstore.open_writer(
            self._client, self._key, buffer_size=PART_BYTES, max_concurrency=IN_FLIGHT
        )
        self.bytes_written = 0

    def write(self, data: bytes) -> None:
        assert self._writer is not None, "write after commit/abort"
        try:
            self._writer.write(data)
        except Exception as exc:
            raise self._failed(exc) from exc
        self.bytes_written += len(data)

    def commit(self, size: int | None = None) -> None:
        """Complete the upload (the archive appears at the key), if every byte of it was written."""
        assert self._writer is not None
        if size is not None and self.bytes_written != size:
            self.abort()
            raise OutputError(f"cannot write {self.url}: {self.bytes_written:,} of the archive's {size:,} bytes were written")
        writer, self._writer = self._writer, None
        try:
            writer.close()
        except Exception as exc:
            _abort(writer)
            raise self._failed(exc) from exc

    def abort(self) -> None:
        """Abort the upload: nothing at the key, no parts left."""
        writer, self._writer = self._writer, None
        if writer is not None:
            _abort(writer)

    def _failed(self, exc: BaseException) -> OutputError:
        from engine.store.blobs.s3 import s3_error

        return _output_error(s3_error(exc, self._location, self._key, f"writing {self.url}"))


def _abort(writer: Any) -> None:
    try:
        writer.__exit__(RuntimeError, RuntimeError("export aborted"), None)
    except Exception:  # noqa: BLE001 - best effort: the export's own error is what the user needs
        pass


def _output_error(error: DsexportError) -> DsexportError:
    """Credentials and missing buckets keep their kind; anything else about the output is an OutputError."""
    if isinstance(error, (InvalidInput, AuthenticationFailed)):
        return error
    return OutputError(str(error))
