"""The export endpoint over real sockets: exact Content-Length, strong ETag, Range resume.

Every archive is checked against what the CLI's export writes for the same
version, format and split: byte for byte.
"""

from __future__ import annotations

import hashlib
import http.client
import zipfile
from pathlib import Path

import pytest
import requests

from engine.store import Store
from servers import Server, auth, cli_export, store_with_demo, url

pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


def test_every_demo_dataset_matches_the_cli_with_exact_length(demo, tmp_path):
    srv, made = demo
    for d in made:
        r = requests.get(url(srv, d, fmt=d.format), headers=auth(srv))
        assert r.status_code == 200, r.text
        assert r.headers["x-dsexport-format"] == d.format
        assert int(r.headers["content-length"]) == len(r.content)
        assert r.headers["etag"].startswith('"') and r.headers["accept-ranges"] == "bytes"
        assert "attachment" in r.headers["content-disposition"] and ".zip" in r.headers["content-disposition"]
        assert r.content == cli_export(srv.store, d, d.format, tmp_path), d.name
        assert zipfile.ZipFile(__import__("io").BytesIO(r.content)).testzip() is None
        # without ?format= the default follows the content type only (boxes or not)
        default = requests.head(url(srv, d), headers=auth(srv)).headers["x-dsexport-format"]
        assert default == {"images": "folders", "text": "folders", "tabular": "csv", "ner": "spacy-ner"}[d.content_type]


def test_a_split_export_matches_the_cli(demo, tmp_path):
    srv, made = demo
    d = made[0]
    with Store.open(srv.store, create=False) as opened:
        split = opened.splits(d.version_id)[0]
    r = requests.get(url(srv, d, split.id, d.format), headers=auth(srv))
    assert r.status_code == 200 and int(r.headers["content-length"]) == len(r.content)
    assert r.content == cli_export(srv.store, d, d.format, tmp_path, split.id)


def _cut_download(srv: Server, target: str, keep: int) -> tuple[bytes, str]:
    """Read the first ``keep`` bytes of a download, then drop the connection."""
    parts = target.split("/", 3)
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    conn.request("GET", "/" + parts[3], headers=auth(srv))
    response = conn.getresponse()
    assert response.status == 200
    etag = response.getheader("etag")
    got = response.read(keep)
    conn.close()
    return got, etag


def test_range_resume_at_several_offsets_gives_the_full_archive(demo, tmp_path):
    srv, made = demo
    d = made[0]  # images: file blobs and inline blobs
    full = requests.get(url(srv, d), headers=auth(srv)).content
    digest = hashlib.sha256(full).hexdigest()
    assert digest == hashlib.sha256(cli_export(srv.store, d, d.format, tmp_path)).hexdigest()
    for keep in (1, 1000, len(full) // 3, len(full) - 22, len(full) - 1):
        first, etag = _cut_download(srv, url(srv, d), keep)
        assert len(first) == keep
        r = requests.get(url(srv, d), headers=auth(srv, Range=f"bytes={keep}-", **{"If-Range": etag}))
        assert r.status_code == 206
        assert r.headers["content-range"] == f"bytes {keep}-{len(full) - 1}/{len(full)}"
        assert int(r.headers["content-length"]) == len(r.content) == len(full) - keep
        assert hashlib.sha256(first + r.content).hexdigest() == digest, keep


def test_range_forms_and_preconditions(demo):
    srv, made = demo
    d = made[1]
    r = requests.get(url(srv, d), headers=auth(srv))
    full, etag = r.content, r.headers["etag"]
    r = requests.get(url(srv, d), headers=auth(srv, Range="bytes=10-19"))
    assert r.status_code == 206 and r.content == full[10:20]
    r = requests.get(url(srv, d), headers=auth(srv, Range="bytes=-7"))
    assert r.status_code == 206 and r.content == full[-7:]
    r = requests.get(url(srv, d), headers=auth(srv, Range=f"bytes={len(full)}-"))
    assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{len(full)}"
    r = requests.get(url(srv, d), headers=auth(srv, Range="bytes=5-", **{"If-Range": '"stale"'}))
    assert r.status_code == 200 and r.content == full
    r = requests.get(url(srv, d), headers=auth(srv, Range="pages=1"))
    assert r.status_code == 400
    r = requests.get(url(srv, d), headers=auth(srv, **{"If-None-Match": etag}))
    assert r.status_code == 304
    r = requests.head(url(srv, d), headers=auth(srv))
    assert r.status_code == 200 and int(r.headers["content-length"]) == len(full) and r.content == b""


def test_etag_is_stable_and_changes_with_content(demo):
    srv, made = demo
    d = made[1]
    first = requests.head(url(srv, d), headers=auth(srv)).headers["etag"]
    assert requests.head(url(srv, d), headers=auth(srv)).headers["etag"] == first
    assert requests.head(url(srv, d, fmt="folders"), headers=auth(srv)).headers["etag"] == first
    r = requests.post(f"{srv.base}datasets/{d.dataset_id}/versions/{d.version_id}/labels",
                      data='{"name": "brand-new"}', headers=auth(srv))
    assert r.status_code == 201
    assert requests.head(url(srv, d), headers=auth(srv)).headers["etag"] != first


def test_errors_before_the_first_byte(demo):
    srv, made = demo
    d = made[0]
    r = requests.get(url(srv, d, fmt="nope"), headers=auth(srv))
    assert r.status_code == 400 and "valid formats" in r.json()["message"]
    r = requests.get(url(srv, d, split="no-such-split"), headers=auth(srv))
    assert r.status_code == 404


def _server_sizing_nothing_up_front(store: Path, key: str) -> Server:
    """A server for which every version is "large": first downloads stream without a length."""
    import os

    os.environ["DSEXPORT_SIZE_UP_FRONT"] = "0"
    try:
        srv = Server(store)
    finally:
        del os.environ["DSEXPORT_SIZE_UP_FRONT"]
    srv.keys = {"alice": key}
    return srv


def test_large_versions_stream_at_once_then_learn_their_length(tmp_path):
    """Above the up-front sizing limit the first download is chunked; its size is then cached."""
    store, key, made = store_with_demo(tmp_path, "alice")
    srv = _server_sizing_nothing_up_front(store, key)
    try:
        d = made[0]
        r = requests.get(url(srv, d), headers=auth(srv))
        assert r.status_code == 200 and "content-length" not in r.headers
        assert r.headers.get("transfer-encoding") == "chunked"
        again = requests.get(url(srv, d), headers=auth(srv))
        assert int(again.headers["content-length"]) == len(r.content) and again.content == r.content
        # a Range on a cold cache sizes the archive first
        other = made[1]
        r = requests.get(url(srv, other), headers=auth(srv, Range="bytes=3-"))
        assert r.status_code == 206
        full = requests.get(url(srv, other), headers=auth(srv)).content
        assert r.content == full[3:]
    finally:
        srv.stop()
    # the learnt sizes are kept in the store: a restarted server still has them
    srv = _server_sizing_nothing_up_front(store, key)
    try:
        r = requests.head(url(srv, made[0]), headers=auth(srv))
        assert int(r.headers["content-length"]) == len(again.content)
    finally:
        srv.stop()


def test_uvloop_worker_serves_the_same_bytes(demo, tmp_path):
    srv, made = demo
    other = Server(srv.store, worker="uvloop")
    other.keys = srv.keys
    try:
        for d in made[:2]:
            assert requests.get(url(other, d), headers=auth(other)).content == \
                requests.get(url(srv, d), headers=auth(srv)).content
    finally:
        assert other.stop() == 0


def test_a_stalled_client_does_not_stall_other_downloads(tmp_path):
    """Exports take turns at the interpreter; one waiting on a client that stopped reading gives its turn away."""
    import os
    import socket
    import time

    from engine.store import NewItem

    store = tmp_path / "store"
    with Store.open(store, create=True) as opened:
        ds = opened.create_dataset("wide", "images", default_splits=True)
        version = ds.versions[0]
        train = opened.resolve_split(version.id, "train")
        opened.add_items(version.id, (NewItem(name=f"i{i}", extension="bin", split_ids=[train.id],
                                              data=os.urandom(8192)) for i in range(4000)))  # ~33 MB
        key = opened.create_user("dave", "pw")[1]
        opened.give_datasets("dave")
    srv = Server(store)
    stalled = socket.create_connection(("127.0.0.1", srv.port))
    try:
        path = f"/api/v1/datasets/{ds.id}/versions/{version.id}/download"
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\r\n".encode())
        assert stalled.recv(4096).startswith(b"HTTP/1.1 200")  # then it reads no more
        time.sleep(1.0)  # its export fills the socket buffers and waits
        started = time.monotonic()
        r = requests.get(srv.base.rstrip("/").removesuffix("/api/v1") + path,
                         headers={"Authorization": f"Bearer {key}"}, timeout=30)
        assert r.status_code == 200 and len(r.content) == int(r.headers["content-length"]) > 30_000_000
        assert time.monotonic() - started < 30
    finally:
        stalled.close()
        srv.stop()
