"""Import: round trips through every format, hostile archives refused, all or nothing."""

from __future__ import annotations

import io
import json
import stat
import zipfile
from pathlib import Path

import pytest
import requests
from servers import Server
from typer.testing import CliRunner

from engine.cli import app as cli_app
from engine.demo import create_demo
from engine.store import Store
from import_support import entries, export_bytes

pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]


@pytest.fixture()
def demo_store(tmp_path):
    store = tmp_path / "store"
    with Store.open(store, create=True) as opened:
        made = create_demo(opened, items=25, seed=3)
        key = opened.create_user("alice", "pw")[1]
        uid = opened._one("SELECT id FROM users WHERE username = 'alice'")[0]
        with opened._tx() as db:
            db.execute("UPDATE datasets SET user_id = ?", (uid,))
    return store, made, key


def _fresh_version(store: Path, dataset_id: str) -> str:
    with Store.open(store, create=False) as opened:
        return opened.create_version(dataset_id).id or ""


@pytest.mark.parametrize("which", ["pets", "reviews", "shapes", "iris-like", "news", "shapes-folders"])
def test_round_trip_through_the_cli(demo_store, tmp_path, which):
    store, made, _ = demo_store
    by_name = {d.name: d for d in made}
    d = by_name[which.removesuffix("-folders")]
    fmt = "folders" if which.endswith("-folders") else d.format
    first = export_bytes(store, d.dataset_id, d.version_id, fmt, tmp_path)
    (tmp_path / "first.zip").write_bytes(first)
    target = _fresh_version(store, d.dataset_id)
    result = CliRunner().invoke(
        cli_app, ["import", "--store", str(store), d.dataset_id, target, "--format", fmt, str(tmp_path / "first.zip")]
    )
    assert result.exit_code == 0, result.output
    second = export_bytes(store, d.dataset_id, target, fmt, tmp_path)
    assert entries(second) == entries(first, d.version_id, target)


def test_round_trip_over_http_and_the_sdk_upload(demo_store, tmp_path, monkeypatch):
    store, made, key = demo_store
    srv = Server(store)
    srv.keys = {"alice": key}
    try:
        headers = {"Authorization": f"Bearer {key}"}
        for d in made:
            first = requests.get(
                f"{srv.base}datasets/{d.dataset_id}/versions/{d.version_id}/download?format={d.format}", headers=headers
            ).content
            target = _fresh_version(store, d.dataset_id)
            r = requests.post(
                f"{srv.base}datasets/{d.dataset_id}/versions/{target}/upload/{d.format}",
                files={"file": ("dataset.zip", first, "application/x-zip-compressed")}, headers=headers,
            )
            assert r.status_code == 200, r.text
            assert r.json()["id"] == target
            second = requests.get(
                f"{srv.base}datasets/{d.dataset_id}/versions/{target}/download?format={d.format}", headers=headers
            ).content
            assert entries(second) == entries(first, d.version_id, target), d.name

        # the SDK's upload_df: a CSV zip with its own config.json
        import pandas as pd
        from seeme import Client

        monkeypatch.chdir(tmp_path)
        client = Client(username="alice", apikey=key, backend=srv.base, env_file="/nonexistent/.env")
        df = pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"], "label": ["p", "q", "p"],
                           "split": ["train", "train", "test"]})
        import inspect

        params = inspect.signature(client.upload_df).parameters
        kwargs = {k: v for k, v in {"df": df, "name": "from-df", "label_column": "label",
                                   "split_column": "split", "multi_label": False}.items() if k in params}
        version = client.upload_df(**kwargs)
        dataset_id = version.dataset_id
        rows = client.download_df(dataset_id, version.id, download_folder=str(tmp_path / "df"))
        assert list(rows["x"].astype(str)) == ["1", "2", "3"]
    finally:
        srv.stop()


def _zip(members: dict[str, bytes], *, symlink: str | None = None, deflate: bool = False) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            if name == symlink:
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED)
    return out.getvalue()


HOSTILE = {
    "dotdot": (_zip({"train/../../evil.txt": b"x"}), "'..'"),
    "absolute": (_zip({"/etc/evil.txt": b"x"}), "absolute"),
    "symlink": (_zip({"train/pos/link.txt": b"/etc/passwd"}, symlink="train/pos/link.txt"), "symbolic link"),
    "bomb": (_zip({"train/pos/big.txt": b"\0" * (64 << 20)}, deflate=True), "zip bomb"),
    "not a zip": (b"PK\x03\x04 this is not a zip", "not a readable ZIP"),
    "too deep": (_zip({"a/b/c/d.txt": b"x"}), "at most"),
    "not text": (_zip({"train/pos/a.png": b"\x89PNG"}), ".txt files only"),
    "wrong format": (_zip({"config.json": b'{"splits": ["train"]}', "train.json": b"[]"}), ".txt files only"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archives_leave_the_version_as_it_was(demo_store, tmp_path, case):
    store, made, _ = demo_store
    d = next(m for m in made if m.name == "reviews")
    data, message = HOSTILE[case]
    (tmp_path / "bad.zip").write_bytes(data)
    with Store.open(store, create=False) as opened:
        before = (opened.revision(d.version_id), opened.count_items(d.version_id), len(opened.labels(d.version_id)))
    result = CliRunner().invoke(
        cli_app, ["import", "--store", str(store), d.dataset_id, d.version_id, "--format", "folders",
                  str(tmp_path / "bad.zip")]
    )
    assert result.exit_code == 2
    assert message in result.output.replace("\n", " "), result.output
    with Store.open(store, create=False) as opened:
        after = (opened.revision(d.version_id), opened.count_items(d.version_id), len(opened.labels(d.version_id)))
    assert after == before


def test_a_failure_late_in_the_ingest_rolls_everything_back(demo_store, tmp_path):
    """New labels and splits made before a bad NER span are rolled back with it."""
    store, made, _ = demo_store
    d = next(m for m in made if m.name == "news")
    docs = [{"id": "a", "name": "a", "text": "ACME rises", "annotations": [{"start": 0, "end": 4, "label": "NEW"}]},
            {"id": "b", "name": "b", "text": "short", "annotations": [{"start": 2, "end": 99, "label": "ORG"}]}]
    data = _zip({"config.json": json.dumps({"splits": ["brand-new"], "colors": {}}).encode(),
                 "brand-new.json": json.dumps(docs).encode()})
    with Store.open(store, create=False) as opened:
        before = (opened.revision(d.version_id), opened.count_items(d.version_id),
                  [l.name for l in opened.labels(d.version_id)], [s.name for s in opened.splits(d.version_id)])
        from engine.errors import InvalidInput
        from engine.importer import import_archive

        with pytest.raises(InvalidInput, match="rejected archive"):
            import_archive(opened, d.version_id, io.BytesIO(data), "spacy-ner")
        after = (opened.revision(d.version_id), opened.count_items(d.version_id),
                 [l.name for l in opened.labels(d.version_id)], [s.name for s in opened.splits(d.version_id)])
    assert after == before


def test_hostile_upload_over_http_is_a_400(demo_store):
    store, made, key = demo_store
    srv = Server(store)
    try:
        d = next(m for m in made if m.name == "reviews")
        r = requests.post(
            f"{srv.base}datasets/{d.dataset_id}/versions/{d.version_id}/upload/folders",
            files={"file": ("x.zip", HOSTILE["dotdot"][0], "application/x-zip-compressed")},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert r.status_code == 400 and "'..'" in r.json()["message"]
        r = requests.post(
            f"{srv.base}datasets/{d.dataset_id}/versions/{d.version_id}/upload/yolo",
            files={"file": ("x.zip", HOSTILE["dotdot"][0], "application/x-zip-compressed")},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert r.status_code == 400 and "cannot be imported" in r.json()["message"]
    finally:
        srv.stop()
