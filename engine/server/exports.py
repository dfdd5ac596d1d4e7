"""The export endpoint: ``GET .../versions/{v}/download[/{s}]?format=``.

The archive streams as the engine writes it. The pipeline's writer thread
calls :meth:`_AsgiSink.write`, which hands each ~1 MiB chunk to the event
loop with ``anyio.from_thread.run(send, ...)`` and waits until the server
has taken it: a slow client blocks the writer thread, which stalls the
producer (one-slot channel), so memory per export stays at a few batches.
A disconnect (``http.disconnect``) cancels the export; the sink then
refuses further writes so the writer thread stops at once.

Headers:

* ``ETag``: strong, a hash of (version id, the version's revision counter,
  format, split, compression). The store bumps the revision on every change
  to the version, and the archive is deterministic, so equal ETags mean
  byte-identical archives. The revision, the size and the bytes are read in
  one snapshot (``snapshot.py``), so a write during a download never puts
  bytes of the new state under the old ETag.
* ``Content-Length``: exact. Stored archives are sized from metadata
  (``sizing.py``) up front when the version is small (at most
  :data:`SIZE_UP_FRONT` items) or a Range is asked for; a large
  version's first download streams at once without a length (chunked), and
  its size, known when that export ends, is kept per ETag so every later
  download and every resume has it. Sizes are kept in the store
  (``archive_sizes``, through ``state.AppState``), so they survive a restart;
  a version's change drops the sizes of its older revisions. Deflated archives are sized only by a
  completed export.
* The format: ``?format=`` if it fits the dataset's content type, else the
  natural one (images and text: folders; tabular: csv; ner: spacy-ner), so
  the SDK's sticky ``params={}`` default (seeme-api.md §7.1) cannot break
  ``download_df``. ``X-Dsexport-Format`` says which was used; an unknown
  format name is a 400.
* ``Range``/``If-Range``: one ``bytes=`` range answered 206 (the header
  rules are pure functions in ``http_range.py``). The archive is regenerated
  and the bytes outside the range are dropped; the export stops as soon as
  the range end has been sent.
"""

from __future__ import annotations

import logging
import os
import re
import unicodedata
from urllib.parse import quote

import anyio
import anyio.from_thread
import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from engine.errors import InvalidInput, OutputError
from engine.pipeline import ExportOptions, check_options, export
from engine.sizing import archive_size
from engine.sources import resolve_plan
from engine.server.box_notes import box_headers
from engine.turns import CpuTurns
from engine.server.auth import check_version
from engine.server.http_range import (
    content_range,
    etag_of,
    if_none_match_hits,
    if_range_holds,
    parse_range,
    unsatisfied_range,
)
from engine.server.snapshot import DownloadSnapshot
from engine.server.state import AppState, app_state
from formats import FORMATS, get_format, natural_format

__all__ = ["SIZE_UP_FRONT", "download"]

log = logging.getLogger("dsexport.http")

#: Versions with at most this many item occurrences are sized before streaming (sizing measured ~10 µs per item: ~0.2 s).
SIZE_UP_FRONT = int(os.environ.get("DSEXPORT_SIZE_UP_FRONT", "20000"))
#: Bumped whenever the engine's output for the same data changes.
ARCHIVE_GENERATION = "dsx1"


class _RangeDone(Exception):
    """The last byte of the requested range has been sent: stop the export."""


class _AsgiSink:
    """A pipeline sink writing into an ASGI response, keeping only bytes in [start, end]."""

    def __init__(self, send: Send, start: int, end: int | None, cpu: CpuTurns) -> None:
        self._send = send
        self._cpu = cpu
        self._start = start
        self._end = end  # inclusive; None: to the end
        self._pos = 0
        self.gone = False
        self._sending: anyio.CancelScope | None = None

    def write(self, data: bytes) -> None:
        """Called from the writer thread; blocks until the server has taken the chunk."""
        if self.gone:
            raise OutputError("the client went away")
        pos, self._pos = self._pos, self._pos + len(data)
        lo = max(self._start - pos, 0)
        hi = len(data) if self._end is None else min(self._end + 1 - pos, len(data))
        if lo < hi:
            chunk = data if (lo, hi) == (0, len(data)) else data[lo:hi]
            with self._cpu.paused():  # waiting on the client: let other exports run meanwhile
                anyio.from_thread.run(self._send_chunk, chunk)
        if self._end is not None and self._pos > self._end:
            raise _RangeDone

    async def _send_chunk(self, chunk: bytes) -> None:
        """Runs on the event loop; :meth:`close` cancels it (a stalled client, a shutdown)."""
        with anyio.CancelScope() as scope:
            self._sending = scope
            if not self.gone:
                await self._send({"type": "http.response.body", "body": chunk, "more_body": True})
        self._sending = None
        if scope.cancelled_caught or self.gone:
            raise OutputError("the client went away")

    def close(self) -> None:
        """Refuse further writes and cut a send in progress (on the event loop's thread)."""
        self.gone = True
        if self._sending is not None:
            self._sending.cancel()

    def commit(self, size: int | None = None) -> None:
        pass

    def abort(self) -> None:
        pass


class ExportResponse(Response):
    """Streams one export from the snapshot its status and headers were decided in.

    The response owns the snapshot and releases it when it ends, however it ends.
    """

    def __init__(
        self,
        svc: AppState,
        snapshot: DownloadSnapshot,
        dataset_id: str,
        version_id: str,
        options: ExportOptions,
        *,
        status: int,
        headers: dict[str, str],
        start: int = 0,
        end: int | None = None,
        etag: str,
        revision: int,
        record_size: bool,
    ) -> None:
        super().__init__(status_code=status, headers=headers, media_type="application/zip")
        if "content-length" not in headers:  # Response adds "0" for its empty body: stream chunked instead
            self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        self._svc = svc
        self._snapshot = snapshot
        self._ids = (dataset_id, version_id)
        self._options = options
        self._start, self._end = start, end
        self._etag = etag
        self._revision = revision
        self._record_size = record_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """On cancellation the export is stopped and the snapshot released; the body is left unfinished."""
        try:
            await self._respond(scope, receive, send)
        finally:
            await self._snapshot.aclose()

    async def _respond(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the headers, then the export's bytes; cancelled, it leaves the body unfinished."""
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        if scope["method"] == "HEAD":
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        sink = _AsgiSink(send, self._start, self._end, self._svc.cpu)
        finished = False
        learnt: int | None = None
        async with anyio.create_task_group() as tg:

            async def watch_disconnect() -> None:
                # Also the guard against a stalled client at shutdown: when the server
                # cancels this request, the finally clause unblocks the writer thread,
                # which a thread wait cannot be cancelled out of otherwise.
                try:
                    while True:
                        message = await receive()
                        if message["type"] == "http.disconnect":
                            sink.close()
                            tg.cancel_scope.cancel()
                            return
                finally:
                    if not finished:
                        sink.close()

            tg.start_soon(watch_disconnect)
            source = self._snapshot.source(self._svc.cpu)
            try:
                result = await export(source, *self._ids, sink, self._options, cpu=self._svc.cpu)
                finished = True
                if self._record_size:
                    learnt = result.bytes
                    self._svc.learn_size(self._etag, learnt)  # before the last byte leaves
            except _RangeDone:
                finished = True
            except Exception as exc:  # noqa: BLE001 (headers are sent: log it and cut the stream)
                if not sink.gone:
                    log.error("export of version %s failed mid-stream: %s", self._ids[1], exc)
            finally:
                with anyio.CancelScope(shield=True):
                    await source.aclose()
            tg.cancel_scope.cancel()
        if finished:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        if learnt is not None:  # persisted after the last byte: the store lock may be busy (an import)
            await self._svc.remember_size(self._etag, self._ids[1], self._revision, learnt)
        # Otherwise the response is left unfinished: the server closes the connection, and
        # the client sees a short body (Content-Length) or a missing last chunk, never a
        # truncated archive passed off as complete.


def _filename(*parts: str) -> str:
    text = "-".join(p for p in parts if p)
    return re.sub(r"[^\w.-]+", "_", text, flags=re.UNICODE).strip("._") or "dataset"


def _disposition(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode() or "dataset.zip"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"


async def download(request: Request) -> Response:
    """The archive of a version (or split): 200, 206 for a Range, 304, 416; never a mix of two revisions.

    Everything is decided inside one read snapshot that the response keeps
    until its last byte; if this handler fails, is cancelled or answers
    without a body, the snapshot is released here.
    """
    _, dataset_id, version_id = await check_version(request)
    svc = app_state(request)
    snapshot = await DownloadSnapshot.open(svc.store)
    try:
        response = await _respond(request, svc, snapshot, dataset_id, version_id)
    except BaseException:
        await snapshot.aclose()
        raise
    if not isinstance(response, ExportResponse):
        await snapshot.aclose()
    return response


async def _respond(
    request: Request, svc: AppState, snapshot: DownloadSnapshot, dataset_id: str, version_id: str
) -> Response:
    """Status and headers from the snapshot's state; the caller releases the snapshot on cancellation."""
    q = request.query_params
    split = request.path_params.get("s")
    compression = (q.get("compression") or "store").lower()
    reader = snapshot.reader

    def prepare():
        plan = resolve_plan(reader, dataset_id, version_id, split, count_up_to=SIZE_UP_FRONT)
        natural = natural_format(plan.dataset.content_type)
        fmt = get_format(q["format"]).name if q.get("format") else natural
        if plan.dataset.content_type not in FORMATS[fmt].content_types:
            # The SDK's download_dataset keeps the last format in a shared default dict
            # (seeme-api.md §7.1), so download_df of a tabular version can arrive with
            # ?format=yolo: a format that cannot export this content type means the natural one.
            fmt = natural
        options = ExportOptions(format=fmt, split=split, compression=compression)
        check_options(plan, options)
        revision = reader.revision(version_id)
        split_id = plan.split.id if plan.split else ""
        etag = etag_of(f"{ARCHIVE_GENERATION}:{version_id}:{revision}:{options.format}:{split_id}:{compression}")
        return plan, options, revision, etag, svc.size_of(etag), box_headers(reader, plan, options.format)

    plan, options, revision, etag, size, notes = await anyio.to_thread.run_sync(prepare)
    name = _filename(plan.dataset.name, plan.version.name, plan.split.name if plan.split else "", options.format)
    headers = {
        "etag": etag,
        "accept-ranges": "bytes",
        "content-disposition": _disposition(name + ".zip"),
        "cache-control": "private, no-cache",
        "x-dsexport-format": options.format,
        **notes,
    }
    if if_none_match_hits(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    range_header = request.headers.get("range")
    if range_header is not None and not if_range_holds(request.headers.get("if-range"), etag):
        range_header = None  # the archive changed: send all of it
    if size is None and compression == "store" and (range_header is not None or plan.total <= SIZE_UP_FRONT):
        size = await archive_size(reader, dataset_id, version_id, options, cpu=svc.cpu)
        await svc.remember_size(etag, version_id, revision, size)
    if range_header is not None and size is not None:
        try:
            wanted = parse_range(range_header, size)
        except ValueError:
            raise InvalidInput(f"malformed Range header {range_header!r}; expected bytes=START-[END]") from None
        if wanted is None:
            return Response(status_code=416, headers={**headers, "content-range": unsatisfied_range(size)})
        start, end = wanted
        headers["content-range"] = content_range(start, end, size)
        headers["content-length"] = str(end - start + 1)
        return ExportResponse(
            svc, snapshot, dataset_id, version_id, options, status=206, headers=headers, start=start, end=end,
            etag=etag, revision=revision, record_size=False,
        )
    if size is not None:
        headers["content-length"] = str(size)
    return ExportResponse(
        svc, snapshot, dataset_id, version_id, options, status=200, headers=headers, etag=etag, revision=revision,
        record_size=size is None,
    )

