"""The OpenAPI 3.1 document of the endpoint table (``routes.ENDPOINTS``), with schemas from the Structs.

Nothing here lists a route: paths, methods, path and query parameters,
bodies and replies all come from the table the app's routes are built from,
so the document and the routing cannot drift apart. Request and reply
schemas come from ``msgspec.json.schema_components``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import msgspec

from engine.server.bodies import REPLIES

if TYPE_CHECKING:
    from engine.server.routes import Endpoint

__all__ = ["build_openapi"]

#: Bodies and replies with no JSON schema of their own.
_NO_SCHEMA = (None, "multipart", "zip", "binary", "json")


def build_openapi(endpoints: Iterable[Endpoint]) -> dict[str, Any]:
    """The document: one operation per endpoint, under its full path."""
    endpoints = list(endpoints)
    types: list[Any] = list(REPLIES)
    for e in endpoints:
        types += [t for t in (e.body, e.reply) if not (t is None or isinstance(t, str))]
    schemas, components = msgspec.json.schema_components(types, ref_template="#/components/schemas/{name}")
    index = {repr(t): s for t, s in zip(types, schemas)}
    paths: dict[str, dict[str, Any]] = {}
    for e in endpoints:
        paths.setdefault(e.full_path, {})[e.method.lower()] = _operation(e, index)
    return {
        "openapi": "3.1.0",
        "info": {"title": "dsexport", "version": "0.1.0",
                 "description": "A SeeMe-compatible dataset API (SDK 0.43.2) over the embedded store."},
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }


def _operation(e: Endpoint, index: dict[str, Any]) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": e.summary, "responses": {}}
    parameters = [
        {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
        for p in re.findall(r"\{(\w+)\}", e.path)
    ]
    parameters += [q.schema() for q in e.query]
    if parameters:
        op["parameters"] = parameters
    if not e.public:
        op["security"] = [{"bearer": []}]
        op["responses"]["401"] = {"description": "no or unknown API key"}
        op["responses"]["404"] = {"description": "unknown id, or another user's"}
    if e.body == "multipart":
        op["requestBody"] = {"content": {"multipart/form-data": {"schema": {
            "type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}}}}
    elif e.body is not None:
        op["requestBody"] = {"content": {"application/json": {"schema": index[repr(e.body)]}}}
    # Every success is documented as "200", creations (201) included: the key clients look up.
    if e.reply == "zip":
        op["responses"]["200"] = {"description": "the archive", "content": {"application/zip": {}}}
        op["responses"]["206"] = {"description": "a byte range of the archive"}
    elif e.reply in _NO_SCHEMA:
        op["responses"]["200"] = {"description": "OK"}
    else:
        op["responses"]["200"] = {"description": "OK", "content": {"application/json": {"schema": index[repr(e.reply)]}}}
    if e.method in ("POST", "PUT") or e.query:
        op["responses"]["400"] = {"description": "invalid body or value, with a message"}
    return op
