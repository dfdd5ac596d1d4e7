"""The HTTP side of the client: one pooled httpx connection pool per client.

It adds what the SeeMe SDK leaves out: timeouts on every request (the SDK
sets none, so a server that never answers hangs it), retries with
exponential backoff and jitter on timeouts, dropped connections and 5xx
answers (by stamina, for GETs only, which are idempotent), and errors that
say what went wrong in the product's own terms:

* 401/403 -> :class:`AuthenticationFailed`; 404 -> :class:`NotFound`;
  other 4xx -> :class:`InvalidInput`, each carrying the server's message;
* a server that cannot be reached, does not answer within the timeout or
  keeps answering 5xx -> :class:`RemoteError`.

A 404 from a backend URL without the ``/api/v1/`` prefix says which URL was
probably meant. Retries are logged by stamina on the ``stamina`` logger,
which gets a NullHandler here: library use prints nothing unless the
application configures logging (the CLI reports retries on stderr itself).
"""

from __future__ import annotations

import logging
import os

from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
import msgspec
import stamina

from engine.errors import AuthenticationFailed, InvalidInput, NotFound, RemoteError

__all__ = [
    "API_PREFIX",
    "DEFAULT_RETRIES",
    "DEFAULT_TIMEOUT",
    "RemoteApi",
    "TransientStatus",
    "backend_url",
    "check",
    "credentials",
    "is_transient",
    "prefix_hint",
]

#: Seconds to wait for a connection, or for the next bytes of an answer.
DEFAULT_TIMEOUT = 30.0
#: Attempts of one request (the first one included) before giving up.
DEFAULT_RETRIES = 5
#: Connections per pool ("lane"); a larger ``max_connections`` gets several pools.
LANE_CONNECTIONS = 8

_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
#: Where every SeeMe API path lives (seeme-api.md: ``B`` is ``http://HOST:PORT/api/v1/``).
API_PREFIX = "/api/v1/"

# Without a handler, Python's last-resort handler prints stamina's WARNING records as bare
# "stamina.retry_scheduled" lines; an application that configures logging still gets them.
logging.getLogger("stamina").addHandler(logging.NullHandler())


class TransientStatus(Exception):
    """A status worth retrying (5xx, 429); turned into RemoteError once retries run out."""

    def __init__(self, response: httpx.Response, message: str) -> None:
        super().__init__(f"{response.status_code} from {response.request.url}: {message}")
        self.status = response.status_code


def is_transient(exc: BaseException) -> bool:
    """What a retry may cure: timeouts, refused or dropped connections, 5xx."""
    return isinstance(exc, (httpx.TransportError, TransientStatus))


def backend_url(backend: str) -> str:
    """The API base with one trailing slash, as the SeeMe SDK builds it; InvalidInput if not http(s)."""
    if not backend.startswith(("http://", "https://")):
        raise InvalidInput(f"backend must be an http:// or https:// URL, got {backend!r}")
    return backend.rstrip("/") + "/"


def credentials(backend: str | None, apikey: str | None) -> tuple[str, str | None]:
    """The arguments, else ``$DSEXPORT_BACKEND`` and ``$DSEXPORT_API_KEY``; the URL is checked here."""
    backend = backend or os.environ.get("DSEXPORT_BACKEND")
    if not backend:
        raise InvalidInput("no backend: pass it (e.g. http://host:8000/api/v1/) or set DSEXPORT_BACKEND")
    return backend_url(backend), apikey if apikey is not None else os.environ.get("DSEXPORT_API_KEY")


class RemoteApi:
    """A SeeMe-compatible API at ``backend`` (e.g. ``http://host:8000/api/v1/``).

    ``max_connections`` bounds the pool; the HTTP source sizes it to its
    fetch window so that many concurrent item downloads reuse connections.
    """

    def __init__(
        self,
        backend: str,
        apikey: str | None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        retry_wait: float = 0.25,
        max_connections: int = 64,
    ) -> None:
        if timeout <= 0 or retries < 1:
            raise InvalidInput(f"timeout must be positive and retries at least 1, got {timeout}, {retries}")
        self.base = backend_url(backend)
        self.timeout = timeout
        self.retries = retries
        self.retry_wait = retry_wait
        headers = {"Authorization": f"Bearer {apikey}"} if apikey else {}
        # httpcore 1.0's pool matches queued requests to connections in
        # O(connections x requests) per step (encode/httpcore#1035, unmerged): at
        # 64 connections that cost more CPU than the requests themselves. So a
        # large window is split into lanes, each its own small pool.
        lanes = max(1, -(-max_connections // LANE_CONNECTIONS))
        per_lane = -(-max_connections // lanes)
        self._lanes = [
            httpx.AsyncClient(
                base_url=self.base,
                headers=headers,
                timeout=httpx.Timeout(timeout),
                limits=httpx.Limits(max_connections=per_lane, max_keepalive_connections=per_lane),
                follow_redirects=False,  # SeeMe paths never redirect (seeme-api.md §1)
            )
            for _ in range(lanes)
        ]
        self._http = self._lanes[0]

    async def aclose(self) -> None:
        for lane in self._lanes:
            await lane.aclose()

    def retrying(self) -> Any:
        """stamina's retry loop for one request: ``async for attempt in api.retrying(): with attempt: ...``."""
        return stamina.retry_context(
            on=is_transient,
            attempts=self.retries,
            timeout=None,  # a long download is bounded by per-read timeouts, not a total
            wait_initial=self.retry_wait,
            wait_max=10 * self.retry_wait + 1.0,
            wait_jitter=self.retry_wait,
        )

    async def get_json(self, path: str, params: Mapping[str, Any] | None = None, *, type: Any = Any) -> Any:
        """GET ``path`` and decode its JSON body into ``type``."""
        response = await self.get(path, params)
        try:
            return msgspec.json.decode(response.content, type=type)
        except msgspec.ValidationError as exc:
            raise RemoteError(f"{response.request.url} answered JSON of an unexpected shape: {exc}") from None
        except msgspec.DecodeError:
            raise RemoteError(f"{response.request.url} did not answer JSON: {response.text[:200]!r}") from None

    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> httpx.Response:
        """GET ``path`` with retries; the whole body is read."""
        with self.errors():
            async for attempt in self.retrying():
                with attempt:
                    response = await self._http.get(path, params=params)
                    check(response, self.base)
        return response

    @asynccontextmanager
    async def stream(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        lane: int = 0,
    ) -> AsyncIterator[httpx.Response]:
        """One streaming GET, without retries (the caller resumes); error statuses raise before the body.

        ``lane``: which connection pool to use (any int; concurrent callers spread over lanes).
        """
        client = self._lanes[lane % len(self._lanes)]
        async with client.stream("GET", path, params=params, headers=headers) as response:
            if response.status_code >= 400:
                await response.aread()
                check(response, self.base)
            yield response

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Turn what is left after retries into RemoteError naming the server and the cause."""
        try:
            yield
        except httpx.TimeoutException as exc:
            raise RemoteError(
                f"{self.base} did not answer within {self.timeout:g} s "
                f"({type(exc).__name__}, {self.retries} attempts); is the server up? (--timeout sets the limit)"
            ) from None
        except httpx.TransportError as exc:
            raise RemoteError(f"cannot reach {self.base}: {exc or type(exc).__name__} ({self.retries} attempts)") from None
        except TransientStatus as exc:
            raise RemoteError(f"the server kept failing ({self.retries} attempts): {exc}") from None


def _message(response: httpx.Response) -> str:
    """The server's error message: SeeMe-style ``{"message": ...}``, else the start of the body."""
    try:
        body = msgspec.json.decode(response.content)
    except msgspec.DecodeError:
        return response.text[:200].strip() or response.reason_phrase
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"]
    return response.text[:200]


def prefix_hint(base: str) -> str | None:
    """The API base probably meant when ``base`` lacks the ``/api/v1/`` prefix; None if it has it."""
    url = httpx.URL(base)
    path = url.path.rstrip("/")
    if (path + "/").endswith(API_PREFIX):
        return None
    if API_PREFIX.startswith(path + "/"):  # "", "/api": the start of the prefix
        path = ""
    return str(url.copy_with(path=path + API_PREFIX, query=None, fragment=None))


def check(response: httpx.Response, base: str | None = None) -> None:
    """Raise the product's error for an error status; retryable statuses raise TransientStatus.

    ``base``: the API base the request was made under; a 404 below a base
    without ``/api/v1/`` names the base probably meant.
    """
    status = response.status_code
    if status < 400:
        return
    message = _message(response)
    where = f"{response.request.method} {response.request.url}"
    if status in (401, 403):
        raise AuthenticationFailed(f"the server refused the API key ({status}, {where}): {message}")
    if status == 404:
        if base is not None and (meant := prefix_hint(base)) is not None:
            raise NotFound(f"{message}: not found at {response.request.url}; did you mean {meant}?")
        raise NotFound(f"{message} ({where})")
    if status in _RETRY_STATUS:
        raise TransientStatus(response, message)
    if status < 500:
        raise InvalidInput(f"the server rejected the request ({status}, {where}): {message}")
    raise RemoteError(f"the server failed ({status}, {where}): {message}")
