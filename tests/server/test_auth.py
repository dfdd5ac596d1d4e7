"""Who is asking, and may they see it: answered by store questions, 401 or 404, never another's data."""

from __future__ import annotations

import pytest
from starlette.exceptions import HTTPException

from engine.errors import NotFound
from engine.server.auth import authorize, item_in_version
from engine.store import Store


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path, create=True) as opened:
        yield opened


def test_the_key_names_the_user_and_the_path_must_be_theirs(store):
    alice, alice_key = store.create_user("alice", "pw")
    _, bob_key = store.create_user("bob", "pw")
    ds = store.create_dataset("d", "text", default_splits=False, user_id=alice["id"])
    other = store.create_dataset("e", "text", default_splits=False, user_id=alice["id"])
    v = ds.versions[0]
    item = store.create_item(v.id, name="a", text="x")

    assert authorize(store, alice_key) == alice["id"]
    assert authorize(store, alice_key, ds.id, v.id, item.id) == alice["id"]

    with pytest.raises(HTTPException) as refused:
        authorize(store, "no-such-key")
    assert refused.value.status_code == 401 and refused.value.headers == {"WWW-Authenticate": "Bearer"}

    for ids, kind in [
        ((ds.id,), "dataset"),  # bob's key, alice's dataset: as if it did not exist
        ((ds.id, v.id), "dataset"),
    ]:
        with pytest.raises(NotFound, match=kind):
            authorize(store, bob_key, *ids)
    with pytest.raises(NotFound, match="unknown version"):
        authorize(store, alice_key, other.id, v.id)  # a version of another dataset
    with pytest.raises(NotFound, match="unknown item"):
        authorize(store, alice_key, other.id, other.versions[0].id, item.id)  # an item of another version
    with pytest.raises(NotFound, match="unknown dataset"):
        authorize(store, alice_key, "no-such-dataset")


def test_item_in_version(store):
    ds = store.create_dataset("d", "text", default_splits=False)
    v = ds.versions[0]
    item = store.create_item(v.id, name="a", text="x")
    item_in_version(store, v.id, item.id)
    with pytest.raises(NotFound, match="unknown item"):
        item_in_version(store, "other", item.id)
    with pytest.raises(NotFound, match="unknown item"):
        item_in_version(store, v.id, "no-such-item")


def test_version_in_dataset(store):
    a = store.create_dataset("a", "text", default_splits=False)
    b = store.create_dataset("b", "text", default_splits=False)
    assert store.version_in_dataset(a.id, a.versions[0].id)
    assert not store.version_in_dataset(b.id, a.versions[0].id)
    assert not store.version_in_dataset(a.id, "no-such-version")
