"""Who is asking, and what they may see.

The SDK sends ``Authorization: Bearer <apikey>`` and nothing else, so the
key alone names the user. No key or an unknown key: 401. Every dataset
belongs to its creator; another user's dataset, and anything under it, is
answered 404 exactly like an id that does not exist, so ids cannot be probed.

The checks are questions to the store (``user_for_key``, ``owner_of``,
``version_in_dataset``, ``item_version_id``), asked in the thread that runs
the operation, so a request makes one thread hop for both.

Store calls run in worker threads, each on its own SQLite connection
(``engine.store.sqlite.db``): reads run beside writes and never wait for them,
write transactions queue on the store's write lock (exports open their own
read-only connections).
"""

from __future__ import annotations

import anyio.to_thread
from starlette.exceptions import HTTPException
from starlette.requests import Request

from engine.errors import NotFound
from engine.server.state import app_state
from engine.store import Store

__all__ = [
    "authorize",
    "bearer",
    "caller_key",
    "check_item",
    "check_version",
    "item_in_version",
    "user_id",
]


def bearer(request: Request) -> str | None:
    """The Bearer key of the request, or None."""
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return None
    return key.strip()


def caller_key(request: Request) -> str:
    """The request's API key; 401 without one (before any body is read or the store is asked)."""
    key = bearer(request)
    if key is None:
        raise HTTPException(401, "missing API key: send Authorization: Bearer <apikey>", {"WWW-Authenticate": "Bearer"})
    return key


def not_found(kind: str, value: str) -> NotFound:
    return NotFound(f"unknown {kind} {value!r}")


def authorize(
    store: Store, key: str, dataset_id: str | None = None, version_id: str | None = None, item_id: str | None = None
) -> str:
    """The caller's user id after every check the path needs, in one go. Call it in a worker thread.

    401 for an unknown key; 404 for a dataset the caller does not own, a
    version outside that dataset or an item outside that version, so another
    user's ids reveal nothing.
    """
    uid = store.user_for_key(key)
    if uid is None:
        raise HTTPException(401, "invalid API key", {"WWW-Authenticate": "Bearer"})
    if dataset_id is not None and store.owner_of(dataset_id) != uid:
        raise not_found("dataset", dataset_id)
    if version_id is not None and not store.version_in_dataset(dataset_id or "", version_id):
        raise not_found("version", version_id)
    if item_id is not None:
        item_in_version(store, version_id, item_id)
    return uid


def item_in_version(store: Store, version_id: str | None, item_id: str) -> None:
    """404 unless ``item_id`` is an item of ``version_id`` (already checked to be the caller's)."""
    if store.item_version_id(item_id) != version_id:
        raise not_found("item", item_id)


def path_ids(request: Request) -> tuple[str | None, str | None, str | None]:
    """The (dataset, version, item) ids a path names; None where it names none."""
    params = request.path_params
    return params.get("d"), params.get("v"), params.get("i")


async def _checked(request: Request, dataset_id: str | None, version_id: str | None, item_id: str | None) -> str:
    key = caller_key(request)
    store = app_state(request).store
    return await anyio.to_thread.run_sync(authorize, store, key, dataset_id, version_id, item_id)


async def user_id(request: Request) -> str:
    """The caller's user id; 401 without a valid key (one thread hop, for hand-written handlers)."""
    return await _checked(request, None, None, None)


async def check_version(request: Request) -> tuple[str, str, str]:
    """(user id, dataset id, version id) when the path's version is in the caller's dataset."""
    params = request.path_params
    uid = await _checked(request, params["d"], params["v"], None)
    return uid, params["d"], params["v"]


async def check_item(request: Request) -> tuple[str, str, str, str]:
    """(user, dataset, version, item) when the path's item is in the path's version."""
    params = request.path_params
    uid = await _checked(request, params["d"], params["v"], params["i"])
    return uid, params["d"], params["v"], params["i"]
