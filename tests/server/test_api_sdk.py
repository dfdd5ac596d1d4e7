"""The HTTP API driven by the real ``seeme`` SDK (0.43.2) against a real server on loopback.

The server subprocess and SDK clients come from ``servers.py``.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
import requests

from engine.store import DB_NAME, Store
from engine.store.address import StoreAddress
from servers import Server, make_user, png, sdk_client

pytestmark = [
    # The SDK leaves uploaded files open (seeme-api.md §7.12) and imports with deprecation noise.
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request, tmp_path_factory):
    """A server on a SQLite store folder, and one on PostgreSQL (content in a folder named by --blobs)."""
    folder = tmp_path_factory.mktemp("server")
    store: Path | str = folder / "store"
    blobs = None
    if request.param == "postgresql":
        store, blobs = request.getfixturevalue("postgres").new_database("sdk"), str(folder / "content")
    StoreAddress(str(store), blobs).open(create=True).close()
    srv = Server(store, blobs=blobs, workdir=folder)
    srv.keys = {"alice": make_user(store, "alice", blobs=blobs), "bob": make_user(store, "bob", blobs=blobs)}
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client(server):
    return sdk_client(server)


def names(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


# -- the SDK end to end --------------------------------------------------------


def test_register_login_logout(server):
    from seeme import Client

    c = Client(backend=server.base, env_file="/nonexistent/.env")
    user = c.register(username="carol", email="c@example.org", password="secret", firstname="Carol", name="C")
    assert user.apikey
    with pytest.raises(ValueError, match="already taken"):
        c.register(username="carol", email="c@example.org", password="x", firstname="C", name="C")
    c.login("carol", "secret")
    assert c.get_datasets() == []
    key = c.apikey
    c.logout()
    r = requests.get(server.base + "datasets", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 401
    r = requests.post(server.base + "login", data=json.dumps({"username": "carol", "password": "nope"}))
    assert r.status_code == 401


def test_image_classification_through_the_sdk(server, client, tmp_path, monkeypatch):
    from seeme.types import (
        Annotation,
        Dataset,
        DatasetContentType,
        DatasetFormat,
        DatasetItem,
        Label,
    )

    monkeypatch.chdir(tmp_path)
    ds = client.create_dataset(Dataset(name="pets", content_type=DatasetContentType.IMAGES, default_splits=True))
    version = ds.versions[0]
    assert {s.name for s in version.splits} == {"train", "valid", "test"}
    split = {s.name: s for s in version.splits}
    cat = client.create_dataset_label(ds.id, version.id, Label(name="cat", version_id=version.id))
    dog = client.create_dataset_label(ds.id, version.id, Label(name="dog", version_id=version.id))
    assert cat.color.startswith("#") and cat.index != dog.index
    (tmp_path / "files").mkdir()
    made = []
    for n, (name, sp, label) in enumerate(
        [("a", "train", cat), ("b", "train", dog), ("c", "train", None), (None, "valid", cat), ("e", "test", dog)]
    ):
        fields = {"name": name} if name else {}  # unnamed: the SDK then sends "name": null
        item = client.create_dataset_item(ds.id, version.id, DatasetItem(splits=[split[sp]], **fields))
        (tmp_path / "files" / f"f{n}.png").write_bytes(png(n))
        item = client.upload_dataset_item_file(ds.id, version.id, item.id, str(tmp_path / "files"), f"f{n}.png")
        assert item.extension == "png"
        if label is not None:
            client.annotate(ds.id, version.id, Annotation(label_id=label.id, item_id=item.id, split_id=split[sp].id))
        made.append(item)
    client.download_dataset_item_image(ds.id, version.id, made[0].id, str(tmp_path / "got.png"))
    assert (tmp_path / "got.png").read_bytes() == png(0)

    client.download_dataset(ds.id, version.id, extract_to_folder="all", export_format=DatasetFormat.FOLDERS)
    unnamed = made[3].id
    assert names(tmp_path / "all") == sorted(
        ["train/cat/a.png", "train/dog/b.png", "train/c.png", f"valid/cat/{unnamed}.png", "test/dog/e.png"]
    )
    assert (tmp_path / "all/train/dog/b.png").read_bytes() == png(1)
    client.download_dataset(ds.id, version.id, split_id=split["train"].id, extract_to_folder="train", params={})
    assert names(tmp_path / "train") == ["train/c.png", "train/cat/a.png", "train/dog/b.png"]

    # paging and filters, with the SDK's True/False booleans
    items = client.get_dataset_items(ds.id, version.id, params={"pageSize": 2, "pageCount": 1})
    assert [i.id for i in items] == [m.id for m in made[2:4]]
    assert [i.id for i in client.get_dataset_items(ds.id, version.id, params={"onlyUnlabelled": True})] == [made[2].id]
    assert len(client.get_dataset_items(ds.id, version.id, params={"labelId": cat.id, "pageSize": 50})) == 2
    assert len(client.get_dataset_items(ds.id, version.id, params={"splitId": split["train"].id})) == 3

    stats = client.get_label_stats(ds.id, version.id, split["train"].id)
    assert client.get_stats_for_unlabelled(stats).count == 1
    assert {s.label_id: s.item_count for s in stats}[cat.id] == 1


def test_items_if_match_states_delete_and_duplicate(server, client):
    from seeme.seeme_client import PreconditionFailed
    from seeme.types import Annotation, Dataset, DatasetContentType, DatasetItem, Label

    ds = client.create_dataset(Dataset(name="t", content_type=DatasetContentType.TEXT, default_splits=True))
    version = ds.versions[0]
    train = version.splits[0]
    pos = client.create_dataset_label(ds.id, version.id, Label(name="pos", version_id=version.id))
    item = client.create_dataset_item(ds.id, version.id, DatasetItem(text="good", splits=[train]))
    ann = client.annotate(ds.id, version.id, Annotation(label_id=pos.id, item_id=item.id, split_id=train.id))
    got = client.get_dataset_item(ds.id, version.id, item.id)
    assert got.annotations[0].id == ann.id and got.splits[0].id == train.id
    r = requests.get(f"{server.base}datasets/{ds.id}/versions/{version.id}/items/{item.id}",
                     headers={"Authorization": f"Bearer {server.keys['alice']}"})
    assert "name" not in r.json() and '"name":null' not in r.text  # never "name": null
    got.text = "very good"
    updated = client.update_dataset_item(ds.id, version.id, got, if_match=got.version)
    assert updated.version == got.version + 1 and updated.text == "very good"
    with pytest.raises(PreconditionFailed) as info:
        client.update_dataset_item(ds.id, version.id, got, if_match=got.version)
    assert info.value.current_version == updated.version

    state = client.update_dataset_item_state(ds.id, version.id, item.id, "reviewed")
    assert state.state == "reviewed" and state.version == 1
    assert client.get_dataset_item_state(ds.id, version.id, item.id).state == "reviewed"
    assert [s.item_id for s in client.get_dataset_item_states(ds.id, version.id)] == [item.id]

    # a stale version PUT does not touch labels or splits
    stale = client.get_dataset_version(ds.id, version.id)
    stale.labels, stale.splits, stale.description = [], [], "described"
    client.update_dataset_version(ds.id, stale)
    fresh = client.get_dataset_version(ds.id, version.id)
    assert fresh.description == "described" and len(fresh.labels) == 1 and len(fresh.splits) == 3

    copy = client.duplicate_dataset_version(ds.id, version.id)
    assert copy.id != version.id and [l.name for l in copy.labels] == ["pos"]
    copied = client.get_dataset_items(ds.id, copy.id)
    assert [i.text for i in copied] == ["very good"] and copied[0].annotations[0].label_id == copy.labels[0].id
    assert client.get_dataset_item_state(ds.id, copy.id, copied[0].id).state == "reviewed"
    assert len(client.get_dataset_versions(ds.id)) == 2

    deleted = client.delete_annotation(ds.id, version.id, ann.id)
    assert deleted.label_id == pos.id
    client.delete_dataset_item(ds.id, version.id, train.id, item.id)
    assert client.get_dataset_items(ds.id, version.id) == []
    client.delete_dataset_version(ds.id, copy.id)
    client.delete_dataset(ds.id)
    assert ds.id not in [d.id for d in client.get_datasets()]


def test_text_detection_tabular_and_ner_exports(server, client, tmp_path, monkeypatch):
    from seeme.types import (
        Annotation,
        Dataset,
        DatasetContentType,
        DatasetFormat,
        DatasetItem,
        Label,
    )

    monkeypatch.chdir(tmp_path)

    # text classification -> folders of .txt
    ds = client.create_dataset(Dataset(name="reviews", content_type=DatasetContentType.TEXT, default_splits=True))
    v = ds.versions[0]
    train = v.splits[0]
    pos = client.create_dataset_label(ds.id, v.id, Label(name="pos", version_id=v.id))
    item = client.create_dataset_item(ds.id, v.id, DatasetItem(name="r1", text="great film", splits=[train]))
    client.annotate(ds.id, v.id, Annotation(label_id=pos.id, item_id=item.id, split_id=train.id))
    client.download_dataset(ds.id, v.id, extract_to_folder="text", params={})
    assert names(tmp_path / "text") == ["train/pos/r1.txt"]
    assert (tmp_path / "text/train/pos/r1.txt").read_text() == "great film"
    client.download_dataset(ds.id, v.id, split_id=v.splits[1].id, extract_to_folder="text-valid", params={})
    assert names(tmp_path / "text-valid") == []  # the valid split is empty

    # object detection -> yolo
    ds = client.create_dataset(Dataset(name="shapes", content_type=DatasetContentType.IMAGES, default_splits=True))
    v = ds.versions[0]
    train = v.splits[0]
    box = client.create_dataset_label(ds.id, v.id, Label(name="box", version_id=v.id))
    item = client.create_dataset_item(ds.id, v.id, DatasetItem(name="s1", splits=[train]))
    (tmp_path / "s1.png").write_bytes(png(3))
    client.upload_dataset_item_file(ds.id, v.id, item.id, str(tmp_path), "s1.png")
    client.annotate(ds.id, v.id, Annotation(label_id=box.id, item_id=item.id, split_id=train.id,
                                            coordinates="0.5 0.5 0.25 0.5"))
    with pytest.raises(requests.HTTPError):
        client.annotate(ds.id, v.id, Annotation(label_id=box.id, item_id=item.id, split_id=train.id,
                                                coordinates="1 2 3"))
    client.download_dataset(ds.id, v.id, extract_to_folder="yolo", export_format=DatasetFormat.YOLO)
    got = names(tmp_path / "yolo")
    assert {"s1.png", "s1.txt", "train.txt", "config.json", f"{v.id}.names"} <= set(got)
    assert (tmp_path / "yolo/s1.txt").read_text().split() == ["0", "0.5", "0.5", "0.25", "0.5"]
    assert json.loads((tmp_path / "yolo/config.json").read_text())["colors"]["box"].startswith("#")
    client.download_dataset(ds.id, v.id, split_id=train.id, extract_to_folder="yolo-train",
                            export_format=DatasetFormat.YOLO)
    assert set(names(tmp_path / "yolo-train")) == {"s1.png", "s1.txt", "train.txt", "config.json", f"{v.id}.names"}

    # tabular -> csv by default (no format), also through download_df
    ds = client.create_dataset(Dataset(name="iris", content_type=DatasetContentType.TABULAR, default_splits=True))
    v = ds.versions[0]
    v = client.add_columns_structured_dataset_version(v, ["a", "b"])
    train = v.splits[0]
    setosa = client.create_dataset_label(ds.id, v.id, Label(name="setosa", version_id=v.id))
    row = client.create_structured_dataset_item(v, train, {"a": 1.5, "b": 2})
    client.annotate(ds.id, v.id, Annotation(label_id=setosa.id, item_id=row.id, split_id=train.id))
    assert client.get_structured_dataset_item(ds.id, v.id, row.id)["a"] == "1.5"
    client.download_dataset(ds.id, v.id, extract_to_folder="csv", params={})
    assert names(tmp_path / "csv") == sorted(["config.json", f"{v.id}.csv"])
    assert (tmp_path / f"csv/{v.id}.csv").read_text().splitlines() == ["a,b,labels,split", "1.5,2,setosa,train"]
    client.download_dataset(ds.id, v.id, split_id=train.id, extract_to_folder="csv-train", params={})
    assert (tmp_path / f"csv-train/{v.id}.csv").read_text().splitlines()[1:] == ["1.5,2,setosa,train"]
    df = client.download_df(ds.id, v.id, download_folder=str(tmp_path / "df"))
    assert list(df.columns)[:2] == ["a", "b"]

    # ner -> spacy-ner
    ds = client.create_dataset(Dataset(name="news", content_type=DatasetContentType.NER, default_splits=True))
    v = ds.versions[0]
    train = v.splits[0]
    org = client.create_dataset_label(ds.id, v.id, Label(name="ORG", version_id=v.id))
    item = client.create_dataset_item(ds.id, v.id, DatasetItem(name="n1", text="Ünïcode ACME rises", splits=[train]))
    client.annotate(ds.id, v.id, Annotation(label_id=org.id, item_id=item.id, split_id=train.id, coordinates="8 12"))
    client.download_dataset(ds.id, v.id, extract_to_folder="ner", export_format=DatasetFormat.SPACY_NER)
    doc = json.loads((tmp_path / "ner/train.json").read_text())[0]
    span = doc["annotations"][0]
    assert doc["text"][span["start"]:span["end"]] == "ACME" and span["label"] == "ORG"
    client.download_dataset(ds.id, v.id, split_id=train.id, extract_to_folder="ner-train",
                            export_format=DatasetFormat.SPACY_NER)
    assert names(tmp_path / "ner-train") == ["config.json", "train.json"]


# -- transport quirks, auth and isolation ---------------------------------------------


def test_json_without_content_type_no_redirects_and_null_names(server):
    h = {"Authorization": f"Bearer {server.keys['alice']}"}
    body = json.dumps({"id": None, "name": "q", "content_type": "images", "multi_label": False,
                       "default_splits": False, "versions": [], "created_at": None})
    r = requests.post(server.base + "datasets", data=body, headers=h, allow_redirects=False)
    assert r.status_code in (200, 201), r.text
    ds = r.json()
    assert isinstance(ds["id"], str) and ds["versions"][0]["dataset_id"] == ds["id"]
    r = requests.get(server.base + "datasets/", headers=h, allow_redirects=False)
    assert r.status_code == 404
    r = requests.post(server.base + "datasets", data="{not json", headers=h)
    assert r.status_code == 400 and "JSON" in r.json()["message"]
    r = requests.get(server.base + "applications", headers=h)
    assert r.json() == []


def test_no_key_wrong_key_and_another_users_ids(server):
    alice = {"Authorization": f"Bearer {server.keys['alice']}"}
    bob = {"Authorization": f"Bearer {server.keys['bob']}"}
    ds = requests.post(server.base + "datasets", data=json.dumps({"name": "secret", "content_type": "text",
                                                                   "default_splits": True}), headers=alice).json()
    v = ds["versions"][0]
    split = v["splits"][0]["id"]
    item = requests.post(f"{server.base}datasets/{ds['id']}/versions/{v['id']}/items",
                         data=json.dumps({"text": "hush", "splits": [{"id": split}]}), headers=alice).json()
    paths = [
        "datasets", f"datasets/{ds['id']}", f"datasets/{ds['id']}/versions",
        f"datasets/{ds['id']}/versions/{v['id']}/items/{item['id']}",
        f"datasets/{ds['id']}/versions/{v['id']}/download",
        f"datasets/{ds['id']}/versions/{v['id']}/labels/splits/{split}",
        "applications",
    ]
    for path in paths:
        assert requests.get(server.base + path).status_code == 401, path
        assert requests.get(server.base + path, headers={"Authorization": "Bearer nope"}).status_code == 401, path
    for path in paths[1:-1]:
        r = requests.get(server.base + path, headers=bob)
        assert r.status_code == 404 and "hush" not in r.text, path
    assert ds["id"] not in requests.get(server.base + "datasets", headers=bob).text
    r = requests.put(f"{server.base}datasets/{ds['id']}", data=json.dumps({"name": "mine"}), headers=bob)
    assert r.status_code == 404
    assert requests.delete(f"{server.base}datasets/{ds['id']}", headers=bob).status_code == 404
    # bob's own dataset cannot reach alice's item through his ids either
    own = requests.post(server.base + "datasets", data=json.dumps({"name": "b", "content_type": "text"}),
                        headers=bob).json()
    r = requests.get(f"{server.base}datasets/{own['id']}/versions/{own['versions'][0]['id']}/items/{item['id']}",
                     headers=bob)
    assert r.status_code == 404
    # traversal in ids, sent raw (requests would normalise the dots away)
    import http.client

    for bad in ["..", "..%2F..%2Fstore.sqlite3", "%2e%2e", "x%00y", "..%2f..%2f..%2fetc%2fpasswd"]:
        for path in (f"/api/v1/datasets/{bad}", f"/api/v1/datasets/{ds['id']}/versions/{v['id']}/items/{bad}/download"):
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            conn.request("GET", path, headers=alice)
            response = conn.getresponse()
            body = response.read()
            conn.close()
            assert response.status in (400, 404), (path, response.status)
            assert b"root:" not in body and b"SQLite" not in body


def test_openapi_describes_every_route(server):
    r = requests.get(f"http://127.0.0.1:{server.port}/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    for path in ["/api/v1/datasets", "/api/v1/datasets/{d}/versions/{v}/items/{i}",
                 "/api/v1/datasets/{d}/versions/{v}/download/{s}", "/api/v1/datasets/{d}/versions/{v}/upload/{format}"]:
        assert path in paths, path
    schemas = doc["components"]["schemas"]
    assert {"Dataset", "DatasetVersion", "DatasetItem", "Annotation", "Label", "DatasetSplit"} <= set(schemas)
    refs = set()

    def walk(node):
        if isinstance(node, dict):
            if "$ref" in node:
                refs.add(node["$ref"].rsplit("/", 1)[-1])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    assert refs <= set(schemas)
    assert paths["/api/v1/datasets"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"] \
        .endswith("/Dataset")


def test_sigterm_stops_cleanly_during_a_download(tmp_path):
    store = tmp_path / "store"
    key = make_user(store, "dora")
    with Store.open(store, create=False) as opened:
        uid = opened.user_for_key(key)
        ds = opened.create_dataset("big-text", "text", default_splits=True, user_id=uid)
        v = ds.versions[0]
        from engine.store import NewItem

        opened.add_items(v.id, (NewItem(name=f"t{n}", text="x" * 2000, split_ids=[v.splits[n % 3].id])
                                for n in range(3000)))
    srv = Server(store)
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    conn.request("GET", f"/api/v1/datasets/{ds.id}/versions/{v.id}/download", headers={"Authorization": f"Bearer {key}"})
    response = conn.getresponse()
    assert response.status == 200
    response.read(1000)  # then stall: a slow client holds the export back
    # a disconnecting client does not hurt the server either
    other = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    other.request("GET", f"/api/v1/datasets/{ds.id}/versions/{v.id}/download", headers={"Authorization": f"Bearer {key}"})
    other.getresponse().read(10)
    other.close()
    assert requests.get(srv.base + "applications", headers={"Authorization": f"Bearer {key}"}).json() == []
    assert srv.stop() == 0
    conn.close()
    with closing(sqlite3.connect(store / DB_NAME)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with Store.open(store, create=False) as opened:
        assert opened.count_items(v.id) == 3000
    assert "Traceback" not in srv.log.read_text()
