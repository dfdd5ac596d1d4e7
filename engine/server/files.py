"""An item's file: multipart upload into the blob store, and its streamed download.

Special HTTP, hand-written: the upload is a multipart form spooled to disk,
the download a body streamed from a blob file in worker threads.
"""

from __future__ import annotations

import mimetypes
from collections.abc import AsyncIterator, Iterator

import anyio.to_thread
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from engine.errors import InvalidInput, NotFound
from engine.images import image_size
from engine.server.auth import authorize, caller_key, check_item
from engine.server.bodies import JSON
from engine.server.operations.items import EXTENSION
from engine.server.state import app_state

__all__ = ["download_file", "upload_file"]


async def upload_file(request: Request) -> JSON:
    """Multipart field ``file``: spooled to disk by the form parser, then streamed into the blob store.

    Cancelled while the form is read: nothing was stored. Once the worker
    thread runs it finishes on its own (the blob, then the item's link to it).
    """
    *_, item_id = await check_item(request)  # before the body: a stranger's upload is never read
    async with request.form(max_files=1, max_fields=10) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput("upload a file in the multipart field 'file'")
        filename = upload.filename or ""
        extension = filename.rpartition(".")[2] if "." in filename else ""
        if not EXTENSION.fullmatch(extension):
            raise InvalidInput(f"the uploaded file needs a name with an extension, got {filename!r}")

        def chunks() -> Iterator[bytes]:
            upload.file.seek(0)
            while chunk := upload.file.read(1 << 20):
                yield chunk

        store = app_state(request).store

        def ingest():
            upload.file.seek(0)
            size = image_size(upload.file, extension) or (None, None)  # the header only; None: not an image
            blob = store.blobs.put_stream(chunks())  # outside the lock: hashing and disk I/O
            return store.set_item_blob(item_id, blob, extension, width=size[0], height=size[1])

        item = await anyio.to_thread.run_sync(ingest)
    return JSON(item)


async def download_file(request: Request) -> Response:
    """The item's file; small ones from SQLite in one piece, others streamed with a Content-Length.

    Cancelled while streaming: the blob file is left open until the iterator is collected.
    """
    params = request.path_params
    key, store = caller_key(request), app_state(request).store
    item_id = params["i"]

    def lookup():  # the checks and the read in one thread hop: this route is a client-side export's hot path
        authorize(store, key, params["d"], params["v"], item_id)
        return store.item_file(item_id)

    found = await anyio.to_thread.run_sync(lookup)
    if found is None:
        raise NotFound(f"item {item_id} has no file")
    content, extension = found
    media = mimetypes.types_map.get("." + extension.lower(), "application/octet-stream")
    if isinstance(content, bytes):
        return Response(content, media_type=media)
    return StreamingResponse(_iterate(content.chunks()), media_type=media, headers={"content-length": str(content.size)})


async def _iterate(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    while (chunk := await anyio.to_thread.run_sync(next, chunks, None)) is not None:
        yield chunk
