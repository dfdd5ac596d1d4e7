"""The HTTP service: a SeeMe-compatible dataset API over the embedded store.

    app.py        create_app(): routes, error mapping, per-request log line
    auth.py       Bearer API keys -> user; ownership checks (404, never data)
    bodies.py     msgspec request/response Structs and the JSON response class
    accounts.py   register, login, logout, applications
    datasets.py   datasets, versions, labels, splits, label stats
    items.py      items, item files, states, annotations
    download.py   the export endpoint: streaming, Content-Length, ETag, Range
    sizing.py     an archive's exact size from metadata alone
    ingest.py     import of an exported ZIP into a version (HTTP and CLI)
    openapi.py    GET /openapi.json from the routes and the Structs
    serve.py      Hypercorn on trio or uvloop
    cli.py        `dsexport serve`, `dsexport user create`, `dsexport import`
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # Lazy: ``dsexport`` loads engine.server.cli on every start; Starlette only when serving.
    if name == "create_app":
        from engine.server.app import create_app

        return create_app
    raise AttributeError(name)
