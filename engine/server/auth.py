"""Who is asking, and what they may see.

The SDK sends ``Authorization: Bearer <apikey>`` and nothing else, so the
key alone names the user. No key or an unknown key: 401. Every dataset
belongs to its creator; another user's dataset, and anything under it, is
answered 404 exactly like an id that does not exist, so ids cannot be probed.

Store calls run in worker threads, each on its own SQLite connection
(``engine.store.sqlite.db``): reads run beside writes and never wait for them,
write transactions queue on the store's write lock (exports open their own
read-only connections).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
from starlette.exceptions import HTTPException
from starlette.requests import Request

from engine.errors import NotFound
from engine.store import Store
from engine.turns import CpuTurns

#: Export batches formatted at once (``DSEXPORT_EXPORT_TURNS``): the interpreter lock runs one
#: thread at a time, so more turns only add contention (16 downloads: 32 s with 1, 45 s with 2).
EXPORT_TURNS = int(os.environ.get("DSEXPORT_EXPORT_TURNS", "1"))

__all__ = [
    "Service",
    "caller_key",
    "check_dataset",
    "check_item",
    "check_version",
    "db",
    "owner_checks",
    "service",
    "user_id",
]

T = TypeVar("T")


class SizeCache:
    """ETag -> archive size, the most recent :attr:`LIMIT` of them (sizes of old revisions age out)."""

    LIMIT = 4096

    def __init__(self) -> None:
        self._sizes: OrderedDict[str, int] = OrderedDict()

    def get(self, etag: str) -> int | None:
        size = self._sizes.get(etag)
        if size is not None:
            self._sizes.move_to_end(etag)
        return size

    def __setitem__(self, etag: str, size: int) -> None:
        self._sizes[etag] = size
        self._sizes.move_to_end(etag)
        while len(self._sizes) > self.LIMIT:
            self._sizes.popitem(last=False)


class Service:
    """What the app shares between requests: the store and the export size cache."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.store = Store.open(self.root, create=True)
        #: ETag -> exact archive size, filled by sizing passes and by finished exports.
        self.sizes = SizeCache()
        #: Concurrent exports take turns at the interpreter (``engine.turns``).
        self.cpu = CpuTurns(EXPORT_TURNS)

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a store call; the store gives each thread its own connection, so no lock is taken here.

        Reads never wait for a write (SQLite WAL); writes queue on the store's
        write lock for one transaction each.
        """
        return fn(*args, **kwargs)

    async def size_of(self, etag: str) -> int | None:
        """The archive size for an export ETag: memory first, then the store (survives restarts)."""
        size = self.sizes.get(etag)
        if size is None:
            size = await anyio.to_thread.run_sync(lambda: self.call(self.store.archive_size, etag))
            if size is not None:
                self.sizes[etag] = size
        return size

    async def remember_size(self, etag: str, version_id: str, revision: int, size: int) -> None:
        self.sizes[etag] = size
        await anyio.to_thread.run_sync(
            lambda: self.call(self.store.remember_archive_size, etag, version_id, revision, size)
        )

    def close(self) -> None:
        self.store.close()


def service(request: Request) -> Service:
    return request.app.state.service


async def db(request: Request, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a store call in a worker thread."""
    svc = service(request)
    return await anyio.to_thread.run_sync(lambda: svc.call(fn, *args, **kwargs))


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return None
    return key.strip()


def caller_key(request: Request) -> str:
    """The request's API key; 401 without one."""
    key = bearer(request)
    if key is None:
        raise HTTPException(401, "missing API key: send Authorization: Bearer <apikey>", {"WWW-Authenticate": "Bearer"})
    return key


def owner_checks(
    store: Store, key: str, dataset_id: str | None, version_id: str | None, item_id: str | None
) -> str:
    """The caller's user id after every check the path needs, in one go (one thread hop per request).

    401 for an unknown key; 404 for a dataset the caller does not own, a
    version outside that dataset or an item outside that version, so another
    user's ids reveal nothing.
    """
    uid = store.user_for_key(key)
    if uid is None:
        raise HTTPException(401, "invalid API key", {"WWW-Authenticate": "Bearer"})
    if dataset_id is not None and store.owner_of(dataset_id) != uid:
        raise _not_found("dataset", dataset_id)
    if version_id is not None and store._one(
        "SELECT 1 FROM versions WHERE id = ? AND dataset_id = ?", (version_id, dataset_id)
    ) is None:
        raise _not_found("version", version_id)
    if item_id is not None and store.item_version_id(item_id) != version_id:
        raise _not_found("item", item_id)
    return uid


async def _checked(request: Request, *, dataset: bool, version: bool = False, item: str | None = None) -> str:
    params = request.path_params
    key = caller_key(request)
    return await db(
        request,
        owner_checks,
        service(request).store,
        key,
        params["d"] if dataset else None,
        params["v"] if version else None,
        item,
    )


async def user_id(request: Request) -> str:
    """The caller's user id; 401 without a valid key."""
    return await _checked(request, dataset=False)


def _not_found(kind: str, value: str) -> NotFound:
    return NotFound(f"unknown {kind} {value!r}")


async def check_dataset(request: Request) -> tuple[str, str]:
    """(user id, dataset id) when the caller owns the path's dataset; else 404."""
    uid = await _checked(request, dataset=True)
    return uid, request.path_params["d"]


async def check_version(request: Request) -> tuple[str, str, str]:
    """(user id, dataset id, version id) when the path's version is in the caller's dataset."""
    uid = await _checked(request, dataset=True, version=True)
    return uid, request.path_params["d"], request.path_params["v"]


async def check_item(request: Request, item_id: str | None = None) -> tuple[str, str, str, str]:
    """(user, dataset, version, item) when the item is in the path's version."""
    item_id = item_id if item_id is not None else request.path_params["i"]
    uid = await _checked(request, dataset=True, version=True, item=item_id)
    return uid, request.path_params["d"], request.path_params["v"], item_id
