"""Import: round trips through every format, hostile archives refused, all or nothing."""

from __future__ import annotations

import io
import json
import stat
import zipfile

import pytest
import requests
from servers import Server
from typer.testing import CliRunner

from engine.cli import app as cli_app
from engine.store import Store
from import_support import make_demo_store

pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]


@pytest.fixture()
def demo_store(tmp_path):
    return make_demo_store(tmp_path)


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
