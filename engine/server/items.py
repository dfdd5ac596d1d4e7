"""Items (paging, filters, If-Match), item files, item states and annotations: seeme-api.md §3."""

from __future__ import annotations

import mimetypes
import re

import anyio.to_thread
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from engine.errors import InvalidInput, NotFound
from engine.server.auth import caller_key, check_item, check_version, db, owner_checks, service
from engine.server.bodies import (
    JSON,
    MAX_VERSION_NUMBER,
    AnnotationIn,
    ItemIn,
    ItemState,
    StateIn,
    read_body,
)

__all__ = ["routes"]

V = "/datasets/{d}/versions/{v}"
I = V + "/items/{i}"

_EXTENSION = re.compile(r"[A-Za-z0-9]{1,16}")
_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no", ""}


def _store(request: Request):
    return service(request).store


def _bool(value: str | None, name: str) -> bool:
    """Query booleans, case-insensitively: the SDK sends Python's ``True``/``False``."""
    text = (value or "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidInput(f"{name} must be true or false, got {value!r}")


#: ``pageSize`` runs from 1 to this. A larger page is refused rather than shortened: a client
#: that stops at the first short page would take a shortened one for the last.
MAX_PAGE_SIZE = 10_000
#: ``pageCount`` runs from 0 to this (2^31 - 1): enough pages of one item for any version,
#: and ``pageCount * pageSize`` stays far inside SQLite's 64-bit OFFSET.
MAX_PAGE_COUNT = 2**31 - 1
_INTEGER = re.compile(r"[+-]?[0-9]{1,30}")  # longer is out of every range, and slow for int()


def _clip(text: str, limit: int = 40) -> str:
    """``text`` quoted for a message, cut short: an error must not echo a megabyte back."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _int(value: str | None, name: str, default: int, lowest: int, highest: int) -> int:
    """A query integer in ``lowest..highest``; anything else is a 400 naming the field and its range."""
    if value is None or value == "":
        return default
    number = int(value) if _INTEGER.fullmatch(value) else None
    if number is None or not lowest <= number <= highest:
        raise InvalidInput(f"{name} must be an integer from {lowest} to {highest}, got {_clip(value)}")
    return number


def _if_match(request: Request) -> int | None:
    """``If-Match: "<version>"``; a version outside 0..MAX_VERSION_NUMBER can match nothing: a 400."""
    header = request.headers.get("if-match")
    if header is None:
        return None
    text = header.strip().removeprefix("W/").strip('"')
    number = int(text) if _INTEGER.fullmatch(text) else None
    if number is None or not 0 <= number <= MAX_VERSION_NUMBER:
        raise InvalidInput(
            f'If-Match must be a quoted item version from 0 to {MAX_VERSION_NUMBER} like "3", got {_clip(header)}'
        )
    return number


# -- items --------------------------------------------------------------------


async def list_items(request: Request) -> JSON:
    """A page of items. Besides SeeMe's filters, ``onlyUnsplit`` (items in no split) lets a
    client-side export visit items in the engine's order; the first page (``pageCount=0``)
    carries ``X-Total-Count``, the number of items matching the filters, for progress bars."""
    *_, version_id = await check_version(request)
    q = request.query_params
    filters = dict(
        split_id=q.get("splitId") or None,
        label_id=q.get("labelId") or None,
        only_unlabelled=_bool(q.get("onlyUnlabelled"), "onlyUnlabelled"),
        only_unsplit=_bool(q.get("onlyUnsplit"), "onlyUnsplit"),
    )
    page = _int(q.get("pageCount"), "pageCount", 0, 0, MAX_PAGE_COUNT)
    page_size = _int(q.get("pageSize"), "pageSize", 10, 1, MAX_PAGE_SIZE)
    store = _store(request)

    def read() -> tuple[list, int | None]:
        items = store.list_items(version_id, page_size=page_size, page=page, **filters)
        return items, store.count_listed_items(version_id, **filters) if page == 0 else None

    items, total = await db(request, read)
    return JSON(items, headers=None if total is None else {"x-total-count": str(total)})


async def create_item(request: Request) -> JSON:
    *_, version_id = await check_version(request)
    body = await read_body(request, ItemIn)
    extension = (body.extension or "").lstrip(".")
    if extension and not _EXTENSION.fullmatch(extension):
        raise InvalidInput(f"an extension is 1-16 letters or digits, got {body.extension!r}")
    item = await db(
        request,
        _store(request).create_item,
        version_id,
        name=body.name or None,
        extension=extension,
        text=body.text or "",
        split_ids=[s.id for s in body.splits or () if s.id],
        description=body.description or "",
    )
    return JSON(item, 201)


async def get_item(request: Request) -> JSON:
    *_, item_id = await check_item(request)
    return JSON(await db(request, _store(request).get_item, item_id))


async def update_item(request: Request) -> JSON:
    """Replaces name, description, text and split membership; ``If-Match: "<version>"`` or 412."""
    *_, item_id = await check_item(request)
    body = await read_body(request, ItemIn)
    item = await db(
        request,
        _store(request).update_item,
        item_id,
        name=body.name or None,
        description=body.description or "",
        text=body.text,
        split_ids=None if body.splits is None else [s.id for s in body.splits if s.id],
        if_match=_if_match(request),
    )
    return JSON(item)


async def delete_item(request: Request) -> JSON:
    """DELETE .../splits/{s}/items/{i}: the item must be in that split; answers the deleted item."""
    *_, item_id = await check_item(request)
    item = await db(request, _store(request).get_item, item_id)
    if request.path_params["s"] not in {s.id for s in item.splits}:
        raise NotFound(f"item {item_id} is not in split {request.path_params['s']!r}")
    return JSON(await db(request, _store(request).delete_item, item_id))


async def upload_file(request: Request) -> JSON:
    """Multipart field ``file``: spooled to disk by the form parser, then streamed into the blob store."""
    *_, item_id = await check_item(request)
    async with request.form(max_files=1, max_fields=10) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput("upload a file in the multipart field 'file'")
        filename = upload.filename or ""
        extension = filename.rpartition(".")[2] if "." in filename else ""
        if not _EXTENSION.fullmatch(extension):
            raise InvalidInput(f"the uploaded file needs a name with an extension, got {filename!r}")

        def chunks():
            upload.file.seek(0)
            while chunk := upload.file.read(1 << 20):
                yield chunk

        store = _store(request)

        def ingest():
            blob = store.blobs.put_stream(chunks())  # outside the lock: hashing and disk I/O
            return service(request).call(store.set_item_blob, item_id, blob, extension)

        item = await anyio.to_thread.run_sync(ingest)
    return JSON(item)


async def download_file(request: Request) -> Response:
    params = request.path_params
    key, store = caller_key(request), _store(request)
    item_id = params["i"]

    def lookup():  # the checks and the read in one thread hop: this route is a client-side export's hot path
        owner_checks(store, key, params["d"], params["v"], item_id)
        return store.item_file(item_id)

    found = await db(request, lookup)
    if found is None:
        raise NotFound(f"item {item_id} has no file")
    content, extension = found
    media = mimetypes.types_map.get("." + extension.lower(), "application/octet-stream")
    if isinstance(content, bytes):
        return Response(content, media_type=media)
    return StreamingResponse(_iterate(content.chunks()), media_type=media, headers={"content-length": str(content.size)})


async def _iterate(chunks):
    while (chunk := await anyio.to_thread.run_sync(next, chunks, None)) is not None:
        yield chunk


# -- states -------------------------------------------------------------------


async def get_state(request: Request) -> JSON:
    *_, version_id, item_id = await check_item(request)
    return JSON(ItemState(**await db(request, _store(request).get_state, version_id, item_id)))


async def put_state(request: Request) -> JSON:
    uid, _, version_id, item_id = await check_item(request)
    body = await read_body(request, StateIn)
    state = await db(
        request,
        _store(request).put_state,
        version_id,
        item_id,
        state=body.state or "",
        name=body.name,
        user_id=uid,
        if_match=_if_match(request),
    )
    return JSON(ItemState(**state))


async def list_states(request: Request) -> JSON:
    *_, version_id = await check_version(request)
    return JSON([ItemState(**s) for s in await db(request, _store(request).list_states, version_id)])


# -- annotations --------------------------------------------------------------


async def annotate(request: Request) -> JSON:
    body = await read_body(request, AnnotationIn)
    if not body.item_id or not body.label_id or not body.split_id:
        raise InvalidInput("an annotation needs item_id, label_id and split_id")
    *_, item_id = await check_item(request, body.item_id)
    ann = await db(
        request, _store(request).annotate, item_id, body.split_id, body.label_id, body.coordinates or ""
    )
    return JSON(ann, 201)


async def _annotation_in_version(request: Request) -> str:
    *_, version_id = await check_version(request)
    annotation_id = request.path_params["a"]
    found_version, _ = await db(request, _store(request).get_annotation, annotation_id)
    if found_version != version_id:
        raise NotFound(f"unknown annotation {annotation_id!r}")
    return annotation_id


async def get_annotation(request: Request) -> JSON:
    annotation_id = await _annotation_in_version(request)
    return JSON((await db(request, _store(request).get_annotation, annotation_id))[1])


async def update_annotation(request: Request) -> JSON:
    annotation_id = await _annotation_in_version(request)
    body = await read_body(request, AnnotationIn)
    store = _store(request)

    def update():
        _, old = store.get_annotation(annotation_id)
        return store.update_annotation(
            annotation_id,
            label_id=body.label_id or old.label_id,
            coordinates=body.coordinates if body.coordinates is not None else old.coordinates,
        )

    return JSON(await db(request, update))


async def delete_annotation(request: Request) -> JSON:
    """Answers the deleted annotation: the SDK raises on an empty body here."""
    annotation_id = await _annotation_in_version(request)
    return JSON(await db(request, _store(request).delete_annotation, annotation_id))


routes = [
    Route(V + "/items", list_items, methods=["GET"]),
    Route(V + "/items", create_item, methods=["POST"]),
    Route(I, get_item, methods=["GET"]),
    Route(I, update_item, methods=["PUT"]),
    Route(V + "/splits/{s}/items/{i}", delete_item, methods=["DELETE"]),
    Route(I + "/upload", upload_file, methods=["POST"]),
    Route(I + "/download", download_file, methods=["GET"]),
    Route(I + "/state", get_state, methods=["GET"]),
    Route(I + "/state", put_state, methods=["PUT"]),
    Route(V + "/states", list_states, methods=["GET"]),
    Route(V + "/annotations", annotate, methods=["POST"]),
    Route(V + "/annotations/{a}", get_annotation, methods=["GET"]),
    Route(V + "/annotations/{a}", update_annotation, methods=["PUT"]),
    Route(V + "/annotations/{a}", delete_annotation, methods=["DELETE"]),
]
