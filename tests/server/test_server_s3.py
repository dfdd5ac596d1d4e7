"""The HTTP server over a store whose content is in a bucket (SeaweedFS), driven by the real SeeMe SDK,
and the other ways content gets in and out of such a store: demo, import, client-side export."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from PIL import Image

from engine.store import StoreAddress
from servers import Server, png, sdk_client

pytestmark = [
    # The SDK leaves uploaded files open (seeme-api.md §7.12) and imports with deprecation noise.
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

ROOT = Path(__file__).resolve().parents[2]


def noisy_png(seed: int, side: int = 200) -> bytes:
    """A PNG too big to be packed (random pixels do not compress): about 120 KB."""
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(out, "PNG")
    return out.getvalue()


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    full = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    full.pop("DSEXPORT_BLOBS", None)
    return subprocess.run([sys.executable, "-m", "engine", *args], capture_output=True, env=full, timeout=120)


@pytest.fixture(scope="module")
def served(tmp_path_factory, seaweed):
    folder = tmp_path_factory.mktemp("served")
    blobs = f"s3://{seaweed.create_bucket()}/content"
    store = folder / "store"
    env = seaweed.env()
    assert run("init", "--store", str(store), "--blobs", blobs, env=env).returncode == 0
    key = run("user", "create", "alice", "--store", str(store), "--blobs", blobs, env=env).stdout.decode().strip()
    srv = Server(store, blobs=blobs, env=env)
    srv.keys = {"alice": key}
    yield srv, store, blobs, env
    srv.stop()


def test_uploads_through_the_sdk_land_in_the_bucket_and_come_back(served, seaweed, tmp_path, monkeypatch):
    from seeme.types import Annotation, Dataset, DatasetContentType, DatasetFormat, DatasetItem, Label

    srv, store, blobs, env = served
    client = sdk_client(srv)
    monkeypatch.chdir(tmp_path)
    ds = client.create_dataset(Dataset(name="pets", content_type=DatasetContentType.IMAGES, default_splits=True))
    version = ds.versions[0]
    train = next(s for s in version.splits if s.name == "train")
    cat = client.create_dataset_label(ds.id, version.id, Label(name="cat", version_id=version.id))
    files = tmp_path / "files"
    files.mkdir()
    datas = {"small0": png(0), "small1": png(1), "big0": noisy_png(0), "big1": noisy_png(1)}
    for name, data in datas.items():
        item = client.create_dataset_item(ds.id, version.id, DatasetItem(name=name, splits=[train]))
        (files / f"{name}.png").write_bytes(data)
        client.upload_dataset_item_file(ds.id, version.id, item.id, str(files), f"{name}.png")
        client.annotate(ds.id, version.id, Annotation(label_id=cat.id, item_id=item.id, split_id=train.id))

    bucket = blobs.removeprefix("s3://").split("/")[0]
    keys = seaweed.keys(bucket, "content/")
    assert sum("/blobs/" in k for k in keys) == 2 and sum("/packs/" in k for k in keys) == 2  # one pack per upload
    assert not any(p.is_file() for p in (store / "blobs").rglob("*"))  # nothing in the folder

    client.download_dataset(ds.id, version.id, extract_to_folder="all", export_format=DatasetFormat.FOLDERS)
    for name, data in datas.items():
        assert (tmp_path / "all" / "train" / "cat" / f"{name}.png").read_bytes() == data

    # the same archive three ways: the server's download, the CLI from the store, the CLI from the API
    served_zip = requests.get(
        f"{srv.base}datasets/{ds.id}/versions/{version.id}/download?format=folders",
        headers={"Authorization": f"Bearer {srv.keys['alice']}"}, timeout=60,
    ).content
    local = run("export", "--store", str(store), "--blobs", blobs, ds.id, version.id, "-f", "folders",
                "-o", str(tmp_path / "store.zip"), env=env)  # fmt: skip
    remote = run("export", "--from", srv.base, "--apikey", srv.keys["alice"], ds.id, version.id, "-f", "folders",
                 "-o", str(tmp_path / "api.zip"), env=env)  # fmt: skip
    assert local.returncode == 0 and remote.returncode == 0, (local.stderr, remote.stderr)
    assert (tmp_path / "api.zip").read_bytes() == (tmp_path / "store.zip").read_bytes()
    assert served_zip == (tmp_path / "store.zip").read_bytes()


def test_demo_and_import_write_their_content_to_the_bucket(seaweed, tmp_path):
    env = seaweed.env()
    blobs = f"s3://{seaweed.create_bucket()}/d"
    made = run("demo", "--store", str(tmp_path / "s"), "--blobs", blobs, "--items", "5", "--json", env=env)
    assert made.returncode == 0, made.stderr
    pets = next(d for d in json.loads(made.stdout) if d["name"] == "pets")
    out = tmp_path / "pets.zip"
    exported = run("export", "--store", str(tmp_path / "s"), "--blobs", blobs, pets["dataset_id"], pets["version_id"],
                   "-f", "folders", "-o", str(out), env=env)  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    with StoreAddress(str(tmp_path / "s"), blobs).open() as opened:
        target = opened.create_dataset("copy", "images").versions[0]
        dataset_id = opened.list_datasets()[-1].id
    imported = run("import", "--store", str(tmp_path / "s"), "--blobs", blobs, dataset_id, target.id, str(out),
                   "-f", "folders", env=env)  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    again = tmp_path / "again.zip"
    back = run("export", "--store", str(tmp_path / "s"), "--blobs", blobs, dataset_id, target.id, "-f", "folders",
               "-o", str(again), env=env)  # fmt: skip
    assert back.returncode == 0, back.stderr
    import zipfile

    with zipfile.ZipFile(out) as a, zipfile.ZipFile(again) as b:
        media = sorted(n for n in a.namelist() if n.endswith(".png"))
        assert media and {n: a.read(n) for n in media} == {n: b.read(n) for n in media}
    bucket = blobs.removeprefix("s3://").split("/")[0]
    assert any("/packs/" in k for k in seaweed.keys(bucket)) and not any(
        p.is_file() for p in (tmp_path / "s" / "blobs").rglob("*")
    )


def test_an_upload_while_the_s3_server_is_down_is_a_503_naming_it(tmp_path):
    from seaweed import start_seaweed

    own = start_seaweed(tmp_path / "weed")  # its own server: this test kills it
    srv = None
    try:
        blobs = f"s3://{own.create_bucket()}/c"
        store = tmp_path / "store"
        assert run("init", "--store", str(store), "--blobs", blobs, env=own.env()).returncode == 0
        key = run("user", "create", "alice", "--store", str(store), "--blobs", blobs, env=own.env()).stdout.decode().strip()
        with StoreAddress(str(store), blobs).open() as opened:
            ds = opened.create_dataset("d", "images")
            opened.give_datasets("alice")
            version = ds.versions[0]
            item = opened.create_item(version.id, name="x")
        srv = Server(store, blobs=blobs, env=own.env())
        own.kill()
        reply = requests.post(
            f"{srv.base}datasets/{ds.id}/versions/{version.id}/items/{item.id}/upload",
            headers={"Authorization": f"Bearer {key}"}, files={"file": ("x.png", png(3), "image/png")}, timeout=60,
        )  # fmt: skip
        assert reply.status_code == 503, reply.text
        assert own.endpoint in reply.json()["message"]
    finally:
        own.kill()
        if srv is not None:
            srv.stop()
