"""The pages a person meets first: ``/``, ``/docs`` (interactive API docs) and ``/api/v1/``.

``/docs`` is Swagger UI over ``/openapi.json``. Its scripts and styles
come from the ``swagger-ui-py`` package and are served by this server
(``/docs/assets/``), so the docs work offline and the page loads nothing
from another host; its Content-Security-Policy says so to the browser too.
Swagger UI's online validator badge is turned off for the same reason.

URLs are built from the ASGI ``root_path``, so the pages also work behind a
proxy that mounts the service under a prefix.
"""

from __future__ import annotations

import html

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from engine.server import API_PREFIX
from engine.server.bodies import JSON

__all__ = ["api_index", "routes"]

#: Where the bundled Swagger UI files are served.
ASSETS = "/docs/assets"

#: Only this origin: the page works without the internet and leaks nothing to another host.
#: Swagger UI sets inline styles and shows inline SVG icons as data: URLs.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)

#: Starts Swagger UI on the page's ``#swagger-ui`` element, with the document URL the page names.
_INIT_JS = """\
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapi,
    domNode: root,
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
  });
});
"""

_DOCS_PAGE = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>dsexport API</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png" sizes="32x32">
</head>
<body>
<div id="swagger-ui" data-openapi="{openapi}"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{docs}/init.js"></script>
</body>
</html>
"""

_HOME_PAGE = """\
<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>dsexport</title></head>
<body>
<h1>dsexport</h1>
<p>A SeeMe-compatible dataset API with streaming ZIP exports.</p>
<ul>
<li><a href="{docs}">Interactive API docs</a></li>
<li><a href="{api}">The API</a> (base URL for the SeeMe SDK: <code>{api}</code>)</li>
<li><a href="{openapi}">The OpenAPI document</a></li>
</ul>
</body>
</html>
"""


def _root(request: Request) -> str:
    """The prefix the whole app is served under (a Mount's own prefix is not part of it)."""
    scope = request.scope
    return scope.get("app_root_path", scope.get("root_path", "")).rstrip("/")


async def home(request: Request) -> Response:
    """``/``: a small page linking the docs and the API."""
    root = html.escape(_root(request))
    return HTMLResponse(_HOME_PAGE.format(docs=f"{root}/docs", api=f"{root}{API_PREFIX}/", openapi=f"{root}/openapi.json"))


async def docs_page(request: Request) -> Response:
    """``/docs``: Swagger UI over ``/openapi.json``, every asset from this server."""
    root = html.escape(_root(request))
    page = _DOCS_PAGE.format(assets=root + ASSETS, docs=f"{root}/docs", openapi=f"{root}/openapi.json")
    return HTMLResponse(page, headers={"content-security-policy": _CSP})


async def docs_init(request: Request) -> Response:
    """``/docs/init.js``: a file of its own, so the page's CSP can forbid inline scripts."""
    return Response(_INIT_JS, media_type="text/javascript")


async def api_index(request: Request) -> Response:
    """``/api/v1/``: what this API is, and where its description and docs are."""
    root = _root(request)
    return JSON({
        "name": "dsexport",
        "description": "A SeeMe-compatible dataset API (SDK 0.43.2) over the embedded store.",
        "version": "v1",
        "openapi": f"{root}/openapi.json",
        "docs": f"{root}/docs",
    })


#: Pages for people, not API operations: left out of the OpenAPI document.
routes = [
    Route("/", home, methods=["GET"], include_in_schema=False),
    Route("/docs", docs_page, methods=["GET"], include_in_schema=False),
    Route("/docs/init.js", docs_init, methods=["GET"], include_in_schema=False),
    Mount(ASSETS, app=StaticFiles(packages=[("swagger_ui", "static")]), name="docs-assets"),
]
