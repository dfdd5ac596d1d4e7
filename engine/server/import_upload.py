"""The multipart body of an archive upload, refused with 413 past ``DSEXPORT_IMPORT_MAX_UPLOAD`` bytes.

Why here and not only in the importer: the form parser spools the whole
file to disk before the importer sees it, so the size is checked while the
body arrives. A declared ``Content-Length`` past the limit is refused before
a byte is read; a chunked body is counted and cut off when it passes it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import Message

from engine.server.import_reads import max_upload

__all__ = ["capped_form"]


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
