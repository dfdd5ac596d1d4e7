"""The archive upload: ``POST .../upload[/{format}]`` reads the upload within its limit and runs the importer.

Why the size is checked here and not only in the importer: the form parser
spools the whole file to disk before the importer sees it, so the size is
checked while the body arrives. A declared ``Content-Length`` past
``DSEXPORT_IMPORT_MAX_UPLOAD`` is refused with 413 before a byte is read; a
chunked body is counted and cut off when it passes it. The import itself
(:mod:`engine.importer`) runs in a worker thread.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import Message

from engine.errors import InvalidInput
from engine.importer import import_archive
from engine.importer.limits import max_upload
from engine.server.auth import check_version
from engine.server.state import app_state
from engine.server.bodies import JSON
from formats import natural_format

__all__ = ["capped_form", "routes", "upload"]


def _too_large(size: int | None, limit: int) -> HTTPException:
    told = f" of {size} bytes" if size is not None else ""
    return HTTPException(
        413, f"archive upload{told} too large: at most {limit} bytes are accepted (DSEXPORT_IMPORT_MAX_UPLOAD)"
    )


@asynccontextmanager
async def capped_form(request: Request) -> AsyncIterator[FormData]:
    """The request's form (one file, a few fields), its body at most :func:`max_upload` bytes.

    Cancelled while the body is read: the spooled part of the file is
    deleted when the form closes, and nothing was written to the store.
    """
    limit = max_upload()
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(int(declared), limit)
    seen = 0
    receive = request.receive

    async def counted() -> Message:
        """The next body message, counted; cancelled, it leaves the count as it was (nothing is stored)."""
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _too_large(None, limit)
        return message

    capped = Request(request.scope, counted)
    async with capped.form(max_files=1, max_fields=10) as form:
        yield form


async def upload(request: Request) -> JSON:
    """Multipart field ``file``, at most ``DSEXPORT_IMPORT_MAX_UPLOAD`` bytes (413 past it).

    The form parser spools the file to disk past 1 MiB; the import runs in a
    worker thread holding no lock while it plans, and the store's write lock
    for its one transaction. Cancelled (the client went away) while the body
    is read: nothing was written. Once the worker thread runs, it finishes on
    its own: the import commits or rolls back whole, and the spooled upload
    is deleted when the form closes.
    """
    _, dataset_id, version_id = await check_version(request)
    svc = app_state(request)
    async with capped_form(request) as form:
        upload_file = form.get("file")
        if not isinstance(upload_file, UploadFile):
            raise InvalidInput("upload the archive in the multipart field 'file'")
        fmt = request.path_params.get("format") or request.query_params.get("format")

        def run():
            if fmt is None:
                content_type = svc.store.get_dataset(dataset_id).content_type
                chosen = natural_format(content_type)
            else:
                chosen = fmt
            import_archive(svc.store, version_id, upload_file.file, chosen)
            return svc.store.get_version(dataset_id, version_id)

        version = await anyio.to_thread.run_sync(run)
    return JSON(version)


V = "/datasets/{d}/versions/{v}"
routes = [
    Route(V + "/upload", upload, methods=["POST"]),
    Route(V + "/upload/{format}", upload, methods=["POST"]),
]
