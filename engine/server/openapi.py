"""``GET /openapi.json``: every route, with schemas generated from the msgspec Structs.

Paths come from the app's own routing table, so a route cannot be added
without appearing here; request and reply schemas come from
``msgspec.json.schema_components`` over the Structs the handlers use.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from engine.model import (
    Annotation,
    Dataset,
    DatasetItem,
    DatasetSplit,
    DatasetVersion,
    Label,
)
from engine.server import bodies

__all__ = ["build_openapi", "openapi_json"]

#: (method, path suffix pattern) -> (request Struct or None, reply type or None, summary)
_SPEC: list[tuple[str, str, Any, Any, str]] = [
    ("POST", r"/register$", bodies.RegisterIn, bodies.User, "Create a user; answers its API key"),
    ("POST", r"/login$", bodies.LoginIn, bodies.LoginReply, "A new API key for a username and password"),
    ("POST", r"/logout$", None, None, "Revoke the API key of the request"),
    ("GET", r"/applications$", None, list[bodies.Application], "Model applications (always [])"),
    ("GET", r"/datasets$", None, list[Dataset], "The caller's datasets"),
    ("POST", r"/datasets$", bodies.DatasetIn, Dataset, "Create a dataset (with a first version)"),
    ("GET", r"/datasets/\{d\}$", None, Dataset, "A dataset"),
    ("PUT", r"/datasets/\{d\}$", bodies.DatasetIn, Dataset, "Update a dataset"),
    ("DELETE", r"/datasets/\{d\}$", None, Dataset, "Delete a dataset"),
    ("GET", r"/versions$", None, list[DatasetVersion], "A dataset's versions"),
    ("POST", r"/versions$", bodies.VersionIn, DatasetVersion, "Create a version"),
    ("GET", r"/versions/\{v\}$", None, DatasetVersion, "A version"),
    ("PUT", r"/versions/\{v\}$", bodies.VersionIn, DatasetVersion, "Update name, description, config"),
    ("DELETE", r"/versions/\{v\}$", None, DatasetVersion, "Delete a version"),
    ("POST", r"/new$", bodies.VersionIn, DatasetVersion, "Duplicate a version"),
    ("GET", r"/labels$", None, list[Label], "A version's labels"),
    ("POST", r"/labels$", bodies.LabelIn, Label, "Create a label"),
    ("GET", r"/labels/splits/\{s\}$", None, list[bodies.LabelStat], "Label statistics of a split"),
    ("GET", r"/labels/\{l\}$", None, Label, "A label"),
    ("PUT", r"/labels/\{l\}$", bodies.LabelIn, Label, "Update a label"),
    ("DELETE", r"/labels/\{l\}$", None, Label, "Delete a label"),
    ("GET", r"/splits$", None, list[DatasetSplit], "A version's splits"),
    ("POST", r"/splits$", bodies.SplitIn, DatasetSplit, "Create a split"),
    ("GET", r"/splits/\{s\}$", None, DatasetSplit, "A split"),
    ("PUT", r"/splits/\{s\}$", bodies.SplitIn, DatasetSplit, "Update a split"),
    ("DELETE", r"/splits/\{s\}$", None, DatasetSplit, "Delete a split"),
    ("DELETE", r"/splits/\{s\}/items/\{i\}$", None, DatasetItem, "Delete an item (in that split)"),
    ("GET", r"/items$", None, list[DatasetItem], "A page of items (pageSize, pageCount, splitId, labelId, onlyUnlabelled, onlyUnsplit); X-Total-Count on page 0"),
    ("POST", r"/items$", bodies.ItemIn, DatasetItem, "Create an item"),
    ("GET", r"/items/\{i\}$", None, DatasetItem, "An item with its splits and annotations"),
    ("PUT", r"/items/\{i\}$", bodies.ItemIn, DatasetItem, 'Update an item; If-Match: "<version>" or 412'),
    ("POST", r"/items/\{i\}/upload$", "multipart", DatasetItem, "Upload the item's file (multipart field 'file')"),
    ("GET", r"/items/\{i\}/download$", None, "binary", "The item's file"),
    ("GET", r"/items/\{i\}/state$", None, bodies.ItemState, "The item's state in this version"),
    ("PUT", r"/items/\{i\}/state$", bodies.StateIn, bodies.ItemState, "Set the item's state; If-Match or 412"),
    ("GET", r"/states$", None, list[bodies.ItemState], "Every item state of the version"),
    ("POST", r"/annotations$", bodies.AnnotationIn, Annotation, "Annotate an item"),
    ("GET", r"/annotations/\{a\}$", None, Annotation, "An annotation"),
    ("PUT", r"/annotations/\{a\}$", bodies.AnnotationIn, Annotation, "Update an annotation"),
    ("DELETE", r"/annotations/\{a\}$", None, Annotation, "Delete an annotation; answers it"),
    ("GET", r"/download(/\{s\})?$", None, "zip", "Stream the version (or a split) as a ZIP; Range, ETag"),
    ("POST", r"/upload(/\{format\})?$", "multipart", DatasetVersion, "Import a ZIP into the version, all or nothing"),
    ("GET", r"^/openapi.json$", None, "json", "This document"),
    ("GET", r"^/api/v1/$", None, "json", "What this API is, with links to this document and to the interactive docs (/docs)"),
]


#: Paths answered without an API key.
_PUBLIC = {"/openapi.json", "/api/v1/"}


def _routes(routes: list, prefix: str = "") -> list[tuple[str, list[str]]]:
    out = []
    for route in routes:
        if isinstance(route, Mount):
            inner = route.routes or getattr(route.app, "routes", [])
            out += _routes(inner, prefix + route.path)
        elif isinstance(route, Route) and route.include_in_schema:
            out.append((prefix + route.path, sorted(m for m in route.methods or () if m != "HEAD")))
    return out


def _describe(method: str, path: str) -> tuple[Any, Any, str]:
    for m, pattern, request, reply, summary in _SPEC:
        if m == method and re.search(pattern, path):
            return request, reply, summary
    raise LookupError(f"no OpenAPI description for {method} {path}")


def build_openapi(app_routes: list) -> dict[str, Any]:
    routes = _routes(app_routes)
    types: list[Any] = []
    for _, _, request, reply, _ in _SPEC:
        for t in (request, reply):
            if t is not None and not isinstance(t, str):
                types.append(t)
    schemas, components = msgspec.json.schema_components(types, ref_template="#/components/schemas/{name}")
    index = {repr(t): s for t, s in zip(types, schemas)}
    paths: dict[str, dict[str, Any]] = {}
    for path, methods in routes:
        for method in methods:
            request, reply, summary = _describe(method, path)
            op: dict[str, Any] = {"summary": summary, "responses": {}}
            params = re.findall(r"\{(\w+)\}", path)
            if params:
                op["parameters"] = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in params]
            if path not in _PUBLIC and not path.endswith(("/register", "/login")):
                op["security"] = [{"bearer": []}]
                op["responses"]["401"] = {"description": "no or unknown API key"}
                op["responses"]["404"] = {"description": "unknown id, or another user's"}
            if request == "multipart":
                op["requestBody"] = {"content": {"multipart/form-data": {"schema": {
                    "type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}}}}
            elif request is not None:
                op["requestBody"] = {"content": {"application/json": {"schema": index[repr(request)]}}}
            if reply == "zip":
                op["responses"]["200"] = {"description": "the archive", "content": {"application/zip": {}}}
                op["responses"]["206"] = {"description": "a byte range of the archive"}
                op["parameters"] = op.get("parameters", []) + [
                    {"name": "format", "in": "query", "schema": {"enum": ["folders", "yolo", "csv", "spacy-ner"]}}
                ]
            elif reply in ("binary", "json") or reply is None:
                op["responses"]["200"] = {"description": "OK"}
            else:
                op["responses"]["200"] = {
                    "description": "OK", "content": {"application/json": {"schema": index[repr(reply)]}}
                }
            if method in ("POST", "PUT"):
                op["responses"]["400"] = {"description": "invalid body or value, with a message"}
            paths.setdefault(path, {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "dsexport", "version": "0.1.0",
                 "description": "A SeeMe-compatible dataset API (SDK 0.43.2) over the embedded store."},
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }


async def openapi_json(request: Request) -> Response:
    document = build_openapi(request.app.routes)
    return Response(msgspec.json.encode(document), media_type="application/json")
