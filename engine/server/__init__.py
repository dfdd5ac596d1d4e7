"""The HTTP service: a SeeMe-compatible dataset API over the embedded store.

    app.py          create_app(): the table's routes, error mapping, access log
    state.py        the app state: the store, export turns, archive sizes
    auth.py         Bearer API key -> user; ownership checks (404, never data), no SQL
    routes.py       the one endpoint table: Starlette routes and /openapi.json
    operations/     one sync function per SeeMe operation, one thread hop per request
    params.py       query parameters and If-Match: declared, parsed, documented
    bodies.py       msgspec request/response Structs and the JSON response class
    openapi.py      the OpenAPI document of the endpoint table
    accounts.py     register, login (special: before anyone is authorized)
    files.py        an item's file: multipart upload, streamed download
    exports.py      the export download: streaming, Content-Length, ETag, Range
    http_range.py   pure Range / If-Range / If-None-Match / ETag helpers
    snapshot.py     one read snapshot per download
    ingest.py       the archive upload: its size cap, then engine.importer in a worker thread
    docs.py         /, /docs (Swagger UI) and the API index
    serve.py        Hypercorn on trio or uvloop
    status_line.py  reason phrases on every status line
"""

from __future__ import annotations

from typing import Any

__all__ = ["API_PREFIX", "create_app"]

#: Where every API path lives (the pages for people and /openapi.json live outside it).
API_PREFIX = "/api/v1"


def __getattr__(name: str) -> Any:
    # Lazy: the CLI imports API_PREFIX on every start; Starlette only when serving.
    if name == "create_app":
        from engine.server.app import create_app

        return create_app
    raise AttributeError(name)
