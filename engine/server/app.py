"""The ASGI app: the endpoint table's routes, errors as JSON, one log line per request.

Errors: ``NotFound`` 404, ``InvalidInput`` 400, a failed If-Match 412 with
``{"current_version": n}`` (what the SDK reads), anything unexpected 500.
Paths are matched exactly: no redirect on a trailing slash (a redirected
POST loses its body in requests).
"""

from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager
import os

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.routing import Mount, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.errors import DsexportError, InvalidInput, NotFound, RemoteError
from engine.server import API_PREFIX, docs
from engine.server.bodies import ErrorReply
from engine.server.routes import api_routes, top_level_routes
from engine.server.state import AppState
from engine.store import StoreAddress, VersionConflict

__all__ = ["API_PREFIX", "create_app"]

log = logging.getLogger("dsexport.http")


async def _http_error(request: Request, exc: Exception) -> ErrorReply:
    assert isinstance(exc, HTTPException)
    return ErrorReply({"message": exc.detail}, exc.status_code, headers=exc.headers)


async def _product_error(request: Request, exc: Exception) -> ErrorReply:
    if isinstance(exc, VersionConflict):
        return ErrorReply({"message": str(exc), "current_version": exc.current}, 412)
    if isinstance(exc, NotFound):
        return ErrorReply({"message": str(exc)}, 404)
    if isinstance(exc, InvalidInput):
        return ErrorReply({"message": str(exc)}, 400)
    if isinstance(exc, RemoteError):  # the store's database or object storage is down or unreachable: try again later
        return ErrorReply({"message": str(exc)}, 503)
    return ErrorReply({"message": str(exc)}, 500)


#: Logged for a request whose client went away before it was answered (nginx's "client closed request").
CLIENT_GONE = 499


class AccessLog:
    """One line per request: client, method, path, status, body bytes, milliseconds.

    It wraps the whole app, error middleware included (:class:`LoggedStarlette`),
    so a 500 the error middleware sends is logged as 500; a request answered
    with nothing because its client went away is logged as :data:`CLIENT_GONE`.
    A request cancelled by the server (shutdown) is still logged, with the
    status and bytes sent until then.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status, sent = 0, 0

        async def send_logged(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_logged)
        finally:
            client = scope.get("client") or ("-", 0)
            log.info(
                '%s "%s %s" %d %d %.1fms',
                client[0],
                scope["method"],
                scope["path"] + ("?" + scope["query_string"].decode("latin-1") if scope.get("query_string") else ""),
                status or CLIENT_GONE,
                sent,
                (time.perf_counter() - started) * 1000,
            )


class ClientGone:
    """A client that disconnects while its request body is read is not a server error.

    Starlette raises ``ClientDisconnect`` from the body read; unhandled, the
    error middleware would "answer" the vanished client with a 500 and the
    server would log a traceback. Here it ends the request quietly instead:
    nothing is sent, and whatever the handler left half-done is cleaned up by
    its own ``finally``/transaction, as for any cancellation.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except ClientDisconnect:
            log.debug("client went away mid-request: %s %s", scope.get("method"), scope.get("path"))


class LoggedStarlette(Starlette):
    """Starlette with :class:`AccessLog` outside its error middleware (``add_middleware`` puts it inside)."""

    def build_middleware_stack(self) -> ASGIApp:
        return AccessLog(super().build_middleware_stack())


def create_app(store: StoreAddress | str | os.PathLike[str]) -> Starlette:
    """The app over ``store`` (a ``StoreAddress``, or a folder path; created if absent)."""
    service = AppState(StoreAddress.of(store))

    @asynccontextmanager
    async def lifespan(app: Starlette):
        try:
            yield
        finally:
            service.close()

    api = Router(routes=api_routes(), redirect_slashes=False)
    app = LoggedStarlette(
        routes=[
            *top_level_routes(),  # /openapi.json
            *docs.routes,  # /, /docs and its assets
            Mount(API_PREFIX, app=api),
        ],
        exception_handlers={HTTPException: _http_error, DsexportError: _product_error},
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False
    app.state.service = service
    app.add_middleware(ClientGone)
    return app
