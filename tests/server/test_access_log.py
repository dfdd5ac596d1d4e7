"""The server's access log, read from a real ``dsexport serve`` process on both workers.

One line per request with the status the client was really sent: a 500 from
a genuine fault (the store's blob folder replaced by a file) is logged as
500, and a client that goes away mid-upload or mid-download is one quiet
line, never an ERROR traceback.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import time
from pathlib import Path

import pytest
import requests
from servers import Server

from engine.store import NewItem, Store

pytestmark = [pytest.mark.filterwarnings("ignore::ResourceWarning")]

WORKERS = ["trio", "uvloop"]


class Served:
    def __init__(self, folder: Path, worker: str) -> None:
        store = folder / "store"
        with Store.open(store, create=True) as opened:
            ds = opened.create_dataset("wide", "images", default_splits=True)
            version = ds.versions[0]
            train = opened.resolve_split(version.id, "train")
            opened.add_items(version.id, (NewItem(name=f"i{i}", extension="bin", split_ids=[train.id],
                                                  data=os.urandom(8192)) for i in range(2000)))  # ~16 MB
            photos = opened.create_dataset("photos", "images", default_splits=True).versions[0]
            self.item = opened.create_item(photos.id, name="photo").id
            self.photos_path = f"/api/v1/datasets/{photos.dataset_id}/versions/{photos.id}"
            self.key = opened.create_user("dave", "pw")[1]
            opened.give_datasets("dave")
        self.version_path = f"/api/v1/datasets/{ds.id}/versions/{version.id}"
        self.srv = Server(store, worker=worker)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.srv.port}{path}"

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def lines_for(self, path: str, *, wait: bool = True) -> list[str]:
        """The access-log lines of ``path``; waits (bounded) until one is written."""
        deadline = time.monotonic() + 20
        while True:
            lines = [line for line in self.srv.log.read_text().splitlines()
                     if "dsexport.http" in line and f" {path}" in line]
            if lines or not wait or time.monotonic() > deadline:
                return lines
            time.sleep(0.05)

    def log_text(self) -> str:
        return self.srv.log.read_text()


@pytest.fixture(params=WORKERS)
def served(request, tmp_path):
    s = Served(tmp_path, request.param)
    yield s
    s.srv.stop()


def _status_and_bytes(line: str) -> tuple[str, int]:
    match = re.search(r'" (\S+) (\d+) [\d.]+ms$', line)
    assert match, line
    return match[1], int(match[2])


def test_a_500_from_a_broken_store_is_logged_as_500(served):
    """The error middleware's answer is what the log shows, not "-"."""
    blobs = served.srv.store / "blobs"
    shutil.rmtree(blobs)
    blobs.write_bytes(b"")  # the folder large uploads spool into is gone: a real fault, not a test hook
    path = f"{served.photos_path}/items/{served.item}/upload"
    r = requests.post(served.url(path), headers=served.auth(),
                      files={"file": ("photo.png", os.urandom(200_000), "image/png")}, timeout=30)
    assert r.status_code == 500
    lines = served.lines_for(path)
    assert len(lines) == 1, lines
    assert _status_and_bytes(lines[0]) == ("500", len(r.content))


def test_a_client_gone_mid_upload_is_one_quiet_line(served):
    path = f"{served.photos_path}/items/{served.item}/upload"
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {served.key}\r\n"
            "Content-Type: multipart/form-data; boundary=XX\r\nContent-Length: 5000000\r\n\r\n")
    part = b'--XX\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n'
    with socket.create_connection(("127.0.0.1", served.srv.port)) as s:
        s.sendall(head.encode() + part + os.urandom(500_000))  # a tenth of the announced body, then gone
    lines = served.lines_for(path)
    assert len(lines) == 1, lines
    assert _status_and_bytes(lines[0]) == ("499", 0)
    log = served.log_text()
    assert "Traceback" not in log and " ERROR " not in log, log
    assert requests.get(served.url(f"{served.photos_path}/items/{served.item}"), headers=served.auth(),
                        timeout=10).json()["extension"] == ""  # nothing half-stored


def test_a_client_gone_mid_download_is_one_quiet_line(served):
    path = f"{served.version_path}/download"
    with socket.create_connection(("127.0.0.1", served.srv.port), timeout=30) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {served.key}\r\n\r\n".encode())
        received = 0
        while received < 1_000_000:
            chunk = s.recv(65536)
            assert chunk
            received += len(chunk)
    lines = served.lines_for(path)
    assert len(lines) == 1, lines
    status, sent = _status_and_bytes(lines[0])
    size = int(requests.head(served.url(path), headers=served.auth(), timeout=30).headers["content-length"])
    assert status == "200" and 0 < sent < size
    log = served.log_text()
    assert "Traceback" not in log and " ERROR " not in log, log
