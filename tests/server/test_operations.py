"""The operations through the app in process: one worker-thread hop per request, checks before parsing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest

from engine.server import API_PREFIX
from engine.server.app import create_app
from engine.store import Store


@pytest.fixture
def setup(tmp_path):
    with Store.open(tmp_path, create=True) as store:
        _, alice = store.create_user("alice", "pw-alice")
        _, bob = store.create_user("bob", "pw-bob")
    return create_app(tmp_path), alice, bob


class Hops:
    """Counts worker-thread hops (``anyio.to_thread.run_sync`` calls)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = anyio.to_thread.run_sync

        async def counted(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return await real(fn, *args, **kwargs)

        monkeypatch.setattr(anyio.to_thread, "run_sync", counted)


def run(app, script: Callable[[httpx.AsyncClient], Any]) -> Any:
    async def main() -> Any:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test" + API_PREFIX + "/") as client:
            return await script(client)

    return anyio.run(main)


def test_each_operation_is_one_thread_hop(setup, monkeypatch):
    app, alice, _ = setup
    auth = {"Authorization": f"Bearer {alice}"}
    hops = Hops(monkeypatch)
    seen: list[tuple[str, int, int]] = []

    async def script(c: httpx.AsyncClient) -> None:
        async def call(method: str, path: str, **kw: Any) -> Any:
            before = hops.count
            r = await c.request(method, path, headers={**auth, **kw.pop("headers", {})}, **kw)
            seen.append((f"{method} {path}", r.status_code, hops.count - before))
            return r.json()

        ds = await call("POST", "datasets", json={"name": "d", "content_type": "images", "default_splits": True})
        v = ds["versions"][0]
        base = f"datasets/{ds['id']}/versions/{v['id']}"
        await call("GET", "datasets")
        await call("PUT", f"datasets/{ds['id']}", json={"description": "patched"})
        label = await call("POST", f"{base}/labels", json={"name": "cat"})
        await call("PUT", f"{base}/labels/{label['id']}", json={"color": "#ff0000"})
        item = await call("POST", f"{base}/items", json={"name": "a", "splits": [{"id": v["splits"][0]["id"]}]})
        await call("GET", f"{base}/items", params={"pageSize": "5", "pageCount": "0"})
        await call("PUT", f"{base}/items/{item['id']}", json={"name": "b"}, headers={"If-Match": '"1"'})
        ann = await call("POST", f"{base}/annotations",
                         json={"item_id": item["id"], "label_id": label["id"], "split_id": v["splits"][0]["id"]})
        await call("PUT", f"{base}/annotations/{ann['id']}", json={"coordinates": ""})
        await call("PUT", f"{base}/items/{item['id']}/state", json={"state": "done"})
        await call("DELETE", f"{base}/annotations/{ann['id']}")
        await call("GET", "applications")

    run(app, script)
    assert all(status < 300 for _, status, _ in seen), seen
    assert [hops for *_, hops in seen] == [1] * len(seen), seen


def test_patches_keep_what_the_body_leaves_out(setup):
    app, alice, _ = setup
    auth = {"Authorization": f"Bearer {alice}"}

    async def script(c: httpx.AsyncClient) -> tuple[dict, dict]:
        ds = (await c.post("datasets", headers=auth, json={"name": "d", "description": "first"})).json()
        patched = (await c.put(f"datasets/{ds['id']}", headers=auth, json={"name": "e", "description": None})).json()
        return ds, patched

    ds, patched = run(app, script)
    assert patched["name"] == "e" and patched["description"] == "first"


def test_who_is_asking_comes_before_what_is_asked(setup):
    app, alice, bob = setup

    async def script(c: httpx.AsyncClient) -> list[int]:
        ds = (await c.post("datasets", headers={"Authorization": f"Bearer {alice}"}, json={"name": "d"})).json()
        v = ds["versions"][0]
        bad_body = b'{"name": 5}'
        bad_query = {"pageSize": "0"}
        items = f"datasets/{ds['id']}/versions/{v['id']}/items"
        return [
            (await c.put(f"datasets/{ds['id']}", content=bad_body)).status_code,  # no key
            (await c.put(f"datasets/{ds['id']}", content=bad_body, headers={"Authorization": "Bearer nope"})).status_code,
            (await c.put(f"datasets/{ds['id']}", content=bad_body, headers={"Authorization": f"Bearer {bob}"})).status_code,
            (await c.get(items, params=bad_query, headers={"Authorization": f"Bearer {bob}"})).status_code,
            (await c.put(f"datasets/{ds['id']}", content=bad_body, headers={"Authorization": f"Bearer {alice}"})).status_code,
            (await c.get(items, params=bad_query, headers={"Authorization": f"Bearer {alice}"})).status_code,
        ]

    assert run(app, script) == [401, 401, 404, 404, 400, 400]
