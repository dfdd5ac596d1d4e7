"""The endpoint table: the Starlette routes and the OpenAPI document are both generated from it."""

from __future__ import annotations

import anyio
import httpx
import msgspec
import pytest
from starlette.routing import Mount, Route

from engine.server import API_PREFIX
from engine.server.app import create_app
from engine.server.openapi import build_openapi
from engine.server.params import MAX_PAGE_COUNT, MAX_PAGE_SIZE
from engine.server.routes import ENDPOINTS
from formats import FORMATS


def _served(routes, prefix: str = "") -> set[tuple[str, str]]:
    """(method, path) of every route the app answers and describes (HEAD is Starlette's own)."""
    out: set[tuple[str, str]] = set()
    for route in routes:
        if isinstance(route, Mount):
            out |= _served(route.routes or getattr(route.app, "routes", []), prefix + route.path)
        elif isinstance(route, Route) and route.include_in_schema:
            out |= {(m, prefix + route.path) for m in route.methods or () if m != "HEAD"}
    return out


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return create_app(tmp_path_factory.mktemp("store"))


@pytest.fixture(scope="module")
def document():
    return build_openapi(ENDPOINTS)


def test_every_route_is_in_the_document_and_every_operation_is_served(app, document):
    served = _served(app.routes)
    described = {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}
    assert served == described
    assert len(served) == len(ENDPOINTS)  # one route per table row, no row twice


def test_the_document_is_what_the_app_serves(app, document):
    async def fetch() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            return await client.get("/openapi.json")

    served = anyio.run(fetch)
    assert served.status_code == 200
    assert served.json() == msgspec.json.decode(msgspec.json.encode(document))


def test_each_row_is_an_operation_or_a_handler():
    for e in ENDPOINTS:
        assert (e.operation is None) != (e.handler is None), (e.method, e.path)
        assert e.top_level or not e.path.startswith(API_PREFIX), e.path  # the prefix is added once, by the table


def test_the_format_enum_is_the_registry(document):
    download = document["paths"][API_PREFIX + "/datasets/{d}/versions/{v}/download"]["get"]
    (fmt,) = [p for p in download["parameters"] if p["name"] == "format"]
    assert fmt["in"] == "query" and fmt["schema"]["enum"] == list(FORMATS)
    upload = document["paths"][API_PREFIX + "/datasets/{d}/versions/{v}/upload"]["post"]
    assert [p["schema"]["enum"] for p in upload["parameters"] if p["name"] == "format"] == [list(FORMATS)]


def test_item_query_parameters_are_declared_with_types_and_ranges(document):
    listing = document["paths"][API_PREFIX + "/datasets/{d}/versions/{v}/items"]["get"]
    query = {p["name"]: p["schema"] for p in listing["parameters"] if p["in"] == "query"}
    assert query["pageSize"] == {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": 10}
    assert query["pageCount"] == {"type": "integer", "minimum": 0, "maximum": MAX_PAGE_COUNT, "default": 0}
    assert query["onlyUnlabelled"]["type"] == query["onlyUnsplit"]["type"] == "boolean"
    assert query["splitId"] == query["labelId"] == {"type": "string"}
    assert "400" in listing["responses"]


def test_public_operations_ask_for_no_key(document):
    public = {(m, p) for p, ops in document["paths"].items() for m, op in ops.items() if "security" not in op}
    assert public == {
        ("get", "/openapi.json"),
        ("get", API_PREFIX + "/"),
        ("post", API_PREFIX + "/register"),
        ("post", API_PREFIX + "/login"),
    }
