"""The one endpoint table of the API: the Starlette routes and ``/openapi.json`` both come from it.

An :class:`Endpoint` names its method, path, summary, body Struct, query
parameters and reply, and either an ``operation`` (a sync function of
``engine.server.operations``) or, where the HTTP is special, a hand-written
``handler`` (register/login, item files, the export download, the archive
upload, the API index, this document).

An operation's request makes one thread hop (:func:`_run_operation`): the
caller's key and the path's ids are checked (``auth.authorize``), the query
and the body parsed, and the operation run, all in that worker thread. Only
the body's bytes are read before it, on the event loop (413 past the limit);
a request without a key is refused before that (401).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from engine.model import Annotation, Dataset, DatasetItem, DatasetSplit, DatasetVersion, Label
from engine.zipwriter import COMPRESSION
from engine.server import API_PREFIX, accounts, docs, exports, files, ingest
from engine.server.auth import authorize, caller_key, path_ids
from engine.server.bodies import (
    JSON,
    AnnotationIn,
    Application,
    DatasetIn,
    ItemIn,
    ItemState,
    LabelIn,
    LabelStat,
    LoginIn,
    LoginReply,
    RegisterIn,
    SplitIn,
    StateIn,
    User,
    VersionIn,
    decode_body,
    read_capped,
)
from engine.server.operations import Call, Reply
from engine.server.operations import accounts as account_ops
from engine.server.operations import datasets, items, labels
from engine.server.params import MAX_PAGE_COUNT, MAX_PAGE_SIZE, Query, parse_query
from engine.server.state import app_state
from formats import FORMATS

__all__ = ["API_PREFIX", "ENDPOINTS", "Endpoint", "api_routes", "top_level_routes"]

Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Endpoint:
    """One API operation: how it is reached, what it takes and gives, and who runs it.

    ``reply`` is a type (documented as JSON), or ``"zip"``/``"binary"``/``"json"``
    for bodies without a schema, or None. ``body`` is a request Struct,
    ``"multipart"`` (a file upload) or None.
    """

    method: str
    path: str
    summary: str
    operation: Callable[[Call], Any] | None = None
    handler: Handler | None = None
    body: Any = None
    reply: Any = None
    query: tuple[Query, ...] = ()
    status: int = 200
    #: Answered without an API key.
    public: bool = False
    #: Served at ``path`` itself rather than under :data:`API_PREFIX`.
    top_level: bool = False

    @property
    def full_path(self) -> str:
        return self.path if self.top_level else API_PREFIX + self.path

    def endpoint(self) -> Handler:
        """The ASGI request handler: the hand-written one, or the operation's runner."""
        if self.handler is not None:
            return self.handler
        return functools.partial(_run_operation, self)


async def _run_operation(endpoint: Endpoint, request: Request) -> JSON:
    """Check, parse and run ``endpoint``'s operation in one worker thread.

    Cancelled while the body is read: nothing was done. Once the worker
    thread runs it finishes on its own; a store write commits or rolls back whole.
    """
    key = caller_key(request)
    raw = await read_capped(request) if endpoint.body is not None else b""
    store = app_state(request).store
    path, given, headers = request.path_params, request.query_params, request.headers
    ids = path_ids(request)
    operation = endpoint.operation
    assert operation is not None

    def run() -> Any:
        uid = authorize(store, key, *ids)
        query = parse_query(endpoint.query, given)
        body = decode_body(raw, endpoint.body) if endpoint.body is not None else None
        return operation(Call(store, uid, key, path, query, headers, body))

    result = await anyio.to_thread.run_sync(run)
    if isinstance(result, Reply):
        return JSON(result.content, endpoint.status, headers=result.headers)
    return JSON(result, endpoint.status)


async def openapi_json(request: Request) -> Response:
    """``GET /openapi.json``: this table as an OpenAPI 3.1 document."""
    return Response(_openapi_document(), media_type="application/json")


@functools.cache
def _openapi_document() -> bytes:
    from engine.server.openapi import build_openapi

    return msgspec.json.encode(build_openapi(ENDPOINTS))


D = "/datasets/{d}"
V = D + "/versions/{v}"
I = V + "/items/{i}"  # noqa: E741

ITEM_FILTERS = (
    Query(name="splitId", description="only items in this split"),
    Query(name="labelId", description="only items annotated with this label"),
    Query(name="onlyUnlabelled", kind="bool", default=False, description="only items without annotations"),
    Query(name="onlyUnsplit", kind="bool", default=False, description="only items in no split"),
    Query(name="pageCount", kind="int", default=0, lowest=0, highest=MAX_PAGE_COUNT, description="the page, from 0"),
    Query(name="pageSize", kind="int", default=10, lowest=1, highest=MAX_PAGE_SIZE, description="items per page"),
)
FORMAT = Query(
    name="format", kind="enum", choices=tuple(FORMATS),
    description="the export format; one the dataset's content type cannot take means its natural one",
)
COMPRESSION_QUERY = Query(name="compression", kind="enum", choices=tuple(COMPRESSION), default="store")
IMPORT_FORMAT = Query(name="format", kind="enum", choices=tuple(FORMATS), description="the archive's format")

E = Endpoint
ENDPOINTS: tuple[Endpoint, ...] = (
    E("GET", "/openapi.json", "This document", handler=openapi_json, reply="json", public=True, top_level=True),
    E("GET", "/", "What this API is, with links to this document and to the interactive docs (/docs)",
      handler=docs.api_index, reply="json", public=True),
    # -- accounts
    E("POST", "/register", "Create a user; answers its API key", handler=accounts.register, body=RegisterIn,
      reply=User, public=True),
    E("POST", "/login", "A new API key for a username and password", handler=accounts.login, body=LoginIn,
      reply=LoginReply, public=True),
    E("POST", "/logout", "Revoke the API key of the request", account_ops.logout),
    E("GET", "/applications", "Model applications (always [])", account_ops.applications, reply=list[Application]),
    # -- datasets and versions
    E("GET", "/datasets", "The caller's datasets", datasets.list_datasets, reply=list[Dataset]),
    E("POST", "/datasets", "Create a dataset (with a first version)", datasets.create_dataset, body=DatasetIn,
      reply=Dataset, status=201),
    E("GET", D, "A dataset", datasets.get_dataset, reply=Dataset),
    E("PUT", D, "Update a dataset", datasets.update_dataset, body=DatasetIn, reply=Dataset),
    E("DELETE", D, "Delete a dataset", datasets.delete_dataset, reply=Dataset),
    E("GET", D + "/versions", "A dataset's versions", datasets.list_versions, reply=list[DatasetVersion]),
    E("POST", D + "/versions", "Create a version", datasets.create_version, body=VersionIn, reply=DatasetVersion,
      status=201),
    E("GET", V, "A version", datasets.get_version, reply=DatasetVersion),
    E("PUT", V, "Update name, description, config", datasets.update_version, body=VersionIn, reply=DatasetVersion),
    E("DELETE", V, "Delete a version", datasets.delete_version, reply=DatasetVersion),
    E("POST", V + "/new", "Duplicate a version", datasets.duplicate_version, body=VersionIn, reply=DatasetVersion,
      status=201),
    # -- labels and splits
    E("GET", V + "/labels", "A version's labels", labels.list_labels, reply=list[Label]),
    E("POST", V + "/labels", "Create a label", labels.create_label, body=LabelIn, reply=Label, status=201),
    E("GET", V + "/labels/splits/{s}", "Label statistics of a split", labels.label_stats, reply=list[LabelStat]),
    E("GET", V + "/labels/{l}", "A label", labels.get_label, reply=Label),
    E("PUT", V + "/labels/{l}", "Update a label", labels.update_label, body=LabelIn, reply=Label),
    E("DELETE", V + "/labels/{l}", "Delete a label", labels.delete_label, reply=Label),
    E("GET", V + "/splits", "A version's splits", labels.list_splits, reply=list[DatasetSplit]),
    E("POST", V + "/splits", "Create a split", labels.create_split, body=SplitIn, reply=DatasetSplit, status=201),
    E("GET", V + "/splits/{s}", "A split", labels.get_split, reply=DatasetSplit),
    E("PUT", V + "/splits/{s}", "Update a split", labels.update_split, body=SplitIn, reply=DatasetSplit),
    E("DELETE", V + "/splits/{s}", "Delete a split", labels.delete_split, reply=DatasetSplit),
    # -- items, files, states, annotations
    E("GET", V + "/items", "A page of items; X-Total-Count on page 0", items.list_items, reply=list[DatasetItem],
      query=ITEM_FILTERS),
    E("POST", V + "/items", "Create an item", items.create_item, body=ItemIn, reply=DatasetItem, status=201),
    E("GET", I, "An item with its splits and annotations", items.get_item, reply=DatasetItem),
    E("PUT", I, 'Update an item; If-Match: "<version>" or 412', items.update_item, body=ItemIn, reply=DatasetItem),
    E("DELETE", V + "/splits/{s}/items/{i}", "Delete an item (in that split)", items.delete_item, reply=DatasetItem),
    E("POST", I + "/upload", "Upload the item's file (multipart field 'file')", handler=files.upload_file,
      body="multipart", reply=DatasetItem),
    E("GET", I + "/download", "The item's file", handler=files.download_file, reply="binary"),
    E("GET", I + "/state", "The item's state in this version", items.get_state, reply=ItemState),
    E("PUT", I + "/state", "Set the item's state; If-Match or 412", items.put_state, body=StateIn, reply=ItemState),
    E("GET", V + "/states", "Every item state of the version", items.list_states, reply=list[ItemState]),
    E("POST", V + "/annotations", "Annotate an item", items.annotate, body=AnnotationIn, reply=Annotation,
      status=201),
    E("GET", V + "/annotations/{a}", "An annotation", items.get_annotation, reply=Annotation),
    E("PUT", V + "/annotations/{a}", "Update an annotation", items.update_annotation, body=AnnotationIn,
      reply=Annotation),
    E("DELETE", V + "/annotations/{a}", "Delete an annotation; answers it", items.delete_annotation,
      reply=Annotation),
    # -- a whole version out and in
    E("GET", V + "/download", "Stream the version as a ZIP; Range, ETag", handler=exports.download, reply="zip",
      query=(FORMAT, COMPRESSION_QUERY)),
    E("GET", V + "/download/{s}", "Stream a split of the version as a ZIP; Range, ETag", handler=exports.download,
      reply="zip", query=(FORMAT, COMPRESSION_QUERY)),
    # The archive upload's routes are the importer's own (``ingest.routes``): described here.
    *(
        E("POST", route.path, "Import a ZIP into the version, all or nothing", handler=route.endpoint,
          body="multipart", reply=DatasetVersion, query=() if "{format}" in route.path else (IMPORT_FORMAT,))
        for route in ingest.routes
    ),
)


def _route(endpoint: Endpoint) -> Route:
    return Route(endpoint.path, endpoint.endpoint(), methods=[endpoint.method])


def api_routes() -> list[BaseRoute]:
    """The routes served under :data:`API_PREFIX`."""
    return [_route(e) for e in ENDPOINTS if not e.top_level]


def top_level_routes() -> list[BaseRoute]:
    """The table's routes outside :data:`API_PREFIX` (``/openapi.json``)."""
    return [_route(e) for e in ENDPOINTS if e.top_level]
