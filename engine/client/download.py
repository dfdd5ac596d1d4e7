"""A resumable, streaming download of one export archive.

The body goes to ``<file>.part`` in 1 MiB chunks, so memory stays flat
whatever the archive's size. Beside it, ``<file>.part.json`` records the
URL and the server's ETag. When the connection drops, the server times out
or answers 5xx, the download resumes from the bytes already on disk with
``Range: bytes=N-`` and ``If-Range: <etag>``: a 206 appends, a 200 (the
archive changed since) starts over. The same holds across runs: a second
call for the same URL picks up the ``.part`` file a failed one left.

Every try that adds bytes earns a fresh set of retries; only tries that add
nothing count against the limit, so a long download over a flaky link
finishes as long as it keeps moving. When it is complete (its length equals
the server's), ``.part`` becomes the file and the record is removed.

A disk that cannot take the bytes (full, quota, size limit) ends the
download with :class:`OutputError` naming the file; what reached the disk
is kept to resume, as after a dropped connection.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import httpx
import msgspec

from engine.client.api import RemoteApi, TransientStatus, is_transient
from engine.errors import ArchiveError, OutputError, RemoteError
from engine.sinks import describe_write_error

__all__ = ["Downloaded", "download_archive"]

CHUNK = 1 << 20

ByteProgress = Callable[[int, int | None], None]
"""Called with (bytes on disk, total bytes or None while unknown)."""

_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class Downloaded(msgspec.Struct, kw_only=True):
    path: str
    bytes: int
    #: Bytes that were on disk from an earlier, interrupted try.
    resumed_from: int
    #: How many requests it took (1: no interruption).
    requests: int
    etag: str | None
    #: The export format the server used (``X-Dsexport-Format``), if it said.
    format: str | None


class _PartRecord(msgspec.Struct):
    """What ``<file>.part.json`` keeps: a resume is valid only for the same URL and ETag."""

    url: str
    etag: str | None = None
    total: int | None = None
    format: str | None = None


class _Progressed(Exception):
    """A try failed after adding bytes: retry with a fresh budget."""


class _Download:
    def __init__(self, api: RemoteApi, path: str, params: dict[str, str], target: Path, progress: ByteProgress | None):
        self.api = api
        self.path = path
        self.params = params
        self.target = target
        self.part = target.with_name(target.name + ".part")
        self.record_path = target.with_name(target.name + ".part.json")
        self.progress = progress
        self.url = str(httpx.URL(api.base).join(path).copy_merge_params(params))
        self.record = self._load_record()
        self.offset = self.part.stat().st_size if self.record.etag and self.part.exists() else 0
        self.resumed_from = self.offset
        self.requests = 0

    def _load_record(self) -> _PartRecord:
        try:
            record = msgspec.json.decode(self.record_path.read_bytes(), type=_PartRecord)
        except (OSError, msgspec.DecodeError, msgspec.ValidationError):
            return _PartRecord(url=self.url)
        return record if record.url == self.url else _PartRecord(url=self.url)

    def _save_record(self) -> None:
        with self._disk_errors(self.record_path):
            self.record_path.write_bytes(msgspec.json.encode(self.record))

    @contextmanager
    def _disk_errors(self, path: Path) -> Iterator[None]:
        """OSError of a file of ours -> OutputError naming it (httpx wraps every network OSError in its own errors)."""
        try:
            yield
        except OSError as exc:
            raise OutputError(describe_write_error(exc, str(path))) from None

    async def run(self) -> Downloaded:
        try:
            with self.api.errors():
                while True:
                    try:
                        async for attempt in self.api.retrying():
                            with attempt:
                                await self._one_try()
                        break
                    except _Progressed:
                        continue
        except BaseException as exc:
            if not self.offset:  # nothing worth resuming: leave nothing behind
                self.part.unlink(missing_ok=True)
                self.record_path.unlink(missing_ok=True)
            elif isinstance(exc, (RemoteError, OutputError)):
                raise type(exc)(f"{exc}; the {self.offset:,} bytes received are kept in {self.part} to resume") from None
            raise
        total = self.record.total
        if total is not None and self.offset != total:
            raise ArchiveError(f"download of {self.url} ended at {self.offset} of {total} bytes; run again to resume")
        with self._disk_errors(self.target):
            os.replace(self.part, self.target)
        self.record_path.unlink(missing_ok=True)
        return Downloaded(
            path=str(self.target),
            bytes=self.offset,
            resumed_from=self.resumed_from,
            requests=self.requests,
            etag=self.record.etag,
            format=self.record.format,
        )

    async def _one_try(self) -> None:
        """One request for the bytes not on disk yet; raises a transient error if the body is cut short."""
        self.requests += 1
        headers = {}
        if self.offset and self.record.etag:
            headers = {"Range": f"bytes={self.offset}-", "If-Range": self.record.etag}
        before = self.offset
        try:
            async with self.api.stream(self.path, self.params, headers) as response:
                self._start(response)
                await self._receive(response)
        except BaseException as exc:
            if self.offset > before and is_transient(exc):
                raise _Progressed from exc
            raise
        if self.record.total is not None and self.offset < self.record.total:
            raise httpx.RemoteProtocolError("the body ended early")

    def _start(self, response: httpx.Response) -> None:
        """Read the headers: append (206) or start over (200); remember the ETag and the total."""
        if response.status_code == 206:
            match = _CONTENT_RANGE.fullmatch(response.headers.get("content-range", ""))
            if match is None or int(match[1]) != self.offset:
                raise TransientStatus(response, f"unexpected Content-Range {response.headers.get('content-range')!r}")
            total = None if match[3] == "*" else int(match[3])
        else:
            self.offset = 0
            with self._disk_errors(self.part):
                self.target.parent.mkdir(parents=True, exist_ok=True)
                self.part.write_bytes(b"")
            length = response.headers.get("content-length")
            total = int(length) if length is not None and "content-encoding" not in response.headers else None
        etag = response.headers.get("etag")
        self.record = _PartRecord(
            url=self.url,
            etag=etag if etag and not etag.startswith("W/") else None,  # only a strong ETag may resume
            total=total,
            format=response.headers.get("x-dsexport-format"),
        )
        self._save_record()

    async def _receive(self, response: httpx.Response) -> None:
        """Append the body in ~1 MiB writes; what arrived before a failure is written too.

        On cancellation the bytes already received are written (shielded)
        and the file closed, so a resume starts after them.
        """
        with self._disk_errors(self.part):
            async with await anyio.open_file(self.part, "r+b") as out:
                await out.seek(self.offset)
                pending = bytearray()
                try:
                    async for chunk in response.aiter_raw():  # as it arrives: a cut loses nothing received
                        pending += chunk
                        if len(pending) >= CHUNK:
                            await self._flush(out, pending)
                finally:
                    with anyio.CancelScope(shield=True):
                        await self._flush(out, pending)

    async def _flush(self, out: anyio.AsyncFile[bytes], pending: bytearray) -> None:
        if not pending:
            return
        await out.write(bytes(pending))
        self.offset += len(pending)
        pending.clear()
        if self.progress is not None:
            self.progress(self.offset, self.record.total)


async def download_archive(
    api: RemoteApi, path: str, params: dict[str, str], target: Path, *, progress: ByteProgress | None = None
) -> Downloaded:
    """Download ``path`` (relative to the API base) to ``target``, resuming where possible."""
    return await _Download(api, path, params, target, progress).run()
