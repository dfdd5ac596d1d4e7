"""Import limits: a text past its limit, too many entries, an upload too large; each refused cleanly.

The limits are read from the environment when the server or the CLI starts,
so each test starts a real one (a subprocess) with its own setting.
"""

from __future__ import annotations

import io
import os
import string
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import requests
from servers import ROOT, Server

from engine.store import Store

pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


@pytest.fixture()
def text_version(tmp_path: Path) -> tuple[Path, str, str, str]:
    """A store with alice's text dataset (one version, empty): (store, dataset, version, key)."""
    root = tmp_path / "store"
    with Store.open(root, create=True) as store:
        user, key = store.create_user("alice", "pw")
        dataset = store.create_dataset("texts", "text", user_id=user["id"])
    return root, dataset.id or "", dataset.versions[0].id or "", key


def _state(root: Path, version_id: str) -> tuple[int, int, int, int]:
    with Store.open(root, create=False) as store:
        return (
            store.revision(version_id), store.count_items(version_id),
            len(store.labels(version_id)), len(store.splits(version_id)),
        )


def _texts(members: dict[str, str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return out.getvalue()


def _cli_import(root: Path, dataset_id: str, version_id: str, archive: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "engine", "import", "--store", str(root), dataset_id, version_id,
         "--format", "folders", str(archive)],
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "400", **env}, capture_output=True, text=True,
    )


def test_a_text_past_the_default_limit_is_refused_by_the_cli(text_version, tmp_path):
    root, dataset_id, version_id, _ = text_version
    big = (string.ascii_letters * ((16 << 20) // 52 + 1))[: (16 << 20) + 1]  # 16 MiB + 1 byte, stored as is
    archive = tmp_path / "big.zip"
    archive.write_bytes(_texts({"train/pos/small.txt": "fine", "train/pos/big.txt": big}))
    before = _state(root, version_id)
    done = _cli_import(root, dataset_id, version_id, archive)
    assert done.returncode == 2, done.stderr
    message = " ".join(done.stderr.split())
    assert "train/pos/big.txt" in message and "16 MiB" in message and "DSEXPORT_IMPORT_MAX_TEXT" in message
    assert _state(root, version_id) == before


def test_a_text_past_the_operator_limit_is_a_400_over_http(text_version, monkeypatch):
    root, dataset_id, version_id, key = text_version
    monkeypatch.setenv("DSEXPORT_IMPORT_MAX_TEXT", "4096")
    srv = Server(root)
    try:
        before = _state(root, version_id)
        url = f"{srv.base}datasets/{dataset_id}/versions/{version_id}/upload/folders"
        headers = {"Authorization": f"Bearer {key}"}
        archive = _texts({"train/pos/a.txt": "x" * 4096, "train/neg/b.txt": "y" * 4097})
        r = requests.post(url, files={"file": ("t.zip", archive)}, headers=headers)
        assert r.status_code == 400, r.text
        assert "train/neg/b.txt" in r.json()["message"] and "4096" in r.json()["message"]
        assert _state(root, version_id) == before
        # at the limit exactly: imported
        r = requests.post(url, files={"file": ("t.zip", _texts({"train/pos/a.txt": "x" * 4096}))}, headers=headers)
        assert r.status_code == 200, r.text
        assert _state(root, version_id)[1] == 1
    finally:
        srv.stop()


def test_an_archive_with_more_entries_than_the_operator_allows_is_refused(text_version, tmp_path):
    root, dataset_id, version_id, _ = text_version
    archive = tmp_path / "many.zip"
    archive.write_bytes(_texts({f"train/pos/{n}.txt": "t" for n in range(11)}))
    before = _state(root, version_id)
    done = _cli_import(root, dataset_id, version_id, archive, DSEXPORT_IMPORT_MAX_ENTRIES="10")
    assert done.returncode == 2, done.stderr
    message = " ".join(done.stderr.split())
    assert "11 entries" in message and "at most 10" in message and "DSEXPORT_IMPORT_MAX_ENTRIES" in message
    assert _state(root, version_id) == before
    done = _cli_import(root, dataset_id, version_id, archive, DSEXPORT_IMPORT_MAX_ENTRIES="11")
    assert done.returncode == 0, done.stderr
    assert _state(root, version_id)[1] == 11


def test_an_upload_past_the_operator_limit_is_a_413(text_version, monkeypatch):
    root, dataset_id, version_id, key = text_version
    monkeypatch.setenv("DSEXPORT_IMPORT_MAX_UPLOAD", "20000")
    srv = Server(root)
    try:
        before = _state(root, version_id)
        url = f"{srv.base}datasets/{dataset_id}/versions/{version_id}/upload/folders"
        headers = {"Authorization": f"Bearer {key}"}
        archive = _texts({f"train/pos/{n}.txt": os.urandom(600).hex() for n in range(20)})  # about 26 kB
        r = requests.post(url, files={"file": ("t.zip", archive)}, headers=headers)
        assert r.status_code == 413, r.text
        assert "20000" in r.json()["message"] and "DSEXPORT_IMPORT_MAX_UPLOAD" in r.json()["message"]

        def chunked():  # no Content-Length: counted as it arrives
            body = b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"t.zip\"\r\n\r\n" + archive
            for start in range(0, len(body), 4096):
                yield body[start : start + 4096]
            yield b"\r\n--b--\r\n"

        r = requests.post(url, data=chunked(), headers={**headers, "Content-Type": "multipart/form-data; boundary=b"})
        assert r.status_code == 413, r.text
        assert _state(root, version_id) == before
    finally:
        srv.stop()
