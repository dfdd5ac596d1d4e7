"""Imports beside other requests: readers never wait, a rolled-back import leaves nothing others can see.

The server runs in this process (the real app on Hypercorn, on loopback)
so an import can be held at a known point: the archive is a file whose
read of one entry's header waits on a ``threading.Event``. That read is
the importer's own (``zipfile`` opening the entry), inside the import's
write transaction.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import socket
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from engine.errors import InvalidInput
from engine.server.app import create_app
from engine.importer import import_archive
from engine.store import Store

pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

#: How long a request may take before the test calls it stuck behind the paused import.
STUCK = 20


class PausingArchive(io.BytesIO):
    """An archive file that stops when a read starts at ``offset`` until :attr:`go` is set.

    Give it where an entry's data start: only reading the entry reads there
    (the archive checks read local headers, which come before).
    """

    def __init__(self, data: bytes, offset: int) -> None:
        super().__init__(data)
        self.offset = offset
        self.reached = threading.Event()
        self.go = threading.Event()

    def read(self, size: int | None = -1) -> bytes:
        if self.tell() == self.offset and not self.reached.is_set():
            self.reached.set()
            assert self.go.wait(STUCK * 3), "the test never released the import"
        return super().read(size)


class InProcessServer:
    """The real app served by Hypercorn (asyncio worker) in a thread of this process."""

    def __init__(self, store: Path) -> None:
        from hypercorn.asyncio import serve
        from hypercorn.config import Config

        self.app = create_app(store)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.base = f"http://127.0.0.1:{port}/api/v1/"
        config = Config()
        config.bind = [f"127.0.0.1:{port}"]
        config.accesslog = None
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        started = threading.Event()

        async def main() -> None:
            """Serve until :meth:`stop`; cancelled, Hypercorn closes its connections and nothing else is left."""
            started.set()
            await serve(self.app, config, shutdown_trigger=self._stop.wait)  # type: ignore[arg-type]

        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(main(),), daemon=True)
        self._thread.start()
        started.wait(10)
        for _ in range(200):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                    break
            except OSError:
                threading.Event().wait(0.05)

    @property
    def store(self) -> Store:
        return self.app.state.service.store

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)
        self._loop.close()


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[tuple[InProcessServer, dict[str, str]]]:
    root = tmp_path / "store"
    with Store.open(root, create=True) as store:
        key = store.create_user("alice", "pw")[1]
    srv = InProcessServer(root)
    try:
        yield srv, {"Authorization": f"Bearer {key}"}
    finally:
        srv.stop()


def _dataset(srv: InProcessServer, headers: dict[str, str], content_type: str) -> tuple[str, str]:
    r = requests.post(
        srv.base + "datasets", json={"name": "d", "content_type": content_type, "multi_label": False}, headers=headers
    )
    assert r.status_code in (200, 201), r.text
    return r.json()["id"], r.json()["versions"][0]["id"]


def _folders_zip(members: dict[str, bytes]) -> tuple[bytes, dict[str, int]]:
    """A stored (uncompressed) FOLDERS archive and where each entry's data start."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    data = out.getvalue()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        offsets = {}
        for info in zf.infolist():
            header = info.header_offset  # the local header: 30 bytes, the name, the extra field
            extra = int.from_bytes(data[header + 28 : header + 30], "little")
            offsets[info.filename] = header + 30 + len(info.filename.encode()) + extra
    return data, offsets


def _break_entry(data: bytes, start: int) -> bytes:
    """Flip the first byte of a stored entry's content, so reading it fails its CRC check."""
    return data[:start] + bytes([data[start] ^ 0xFF]) + data[start + 1 :]


def _run(target, *args) -> tuple[threading.Thread, dict[str, object]]:
    result: dict[str, object] = {}

    def run() -> None:
        try:
            result["value"] = target(*args)
        except BaseException as exc:  # handed to the test thread
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def test_an_upload_of_bytes_a_failing_import_wrote_is_stored_once_the_import_rolls_back(server):
    """The import writes blob X, then fails on a broken entry; an item upload of X meanwhile gets X, intact."""
    srv, headers = server
    dataset_id, version_id = _dataset(srv, headers, "images")
    blob_x = os.urandom(100 * 1024)  # a file blob (past the inline limit), written as the import reads it
    data, offsets = _folders_zip({"train/cat/x.png": blob_x, "train/cat/broken.png": os.urandom(1000)})
    archive = PausingArchive(_break_entry(data, offsets["train/cat/broken.png"]), offsets["train/cat/broken.png"])

    v = f"{srv.base}datasets/{dataset_id}/versions/{version_id}"
    r = requests.post(v + "/items", json={"name": "mine", "extension": "png"}, headers=headers)
    assert r.status_code == 201, r.text
    item_id = r.json()["id"]
    revision = srv.store.revision(version_id)

    importing, outcome = _run(import_archive, srv.store, version_id, archive, "folders")
    assert archive.reached.wait(STUCK), "the import never reached the broken entry"
    # The import has written X's row in its transaction and not committed: no other thread sees it.
    checking, seen = _run(srv.store.blobs.exists, hashlib.sha256(blob_x).hexdigest())
    checking.join(STUCK)
    assert seen == {"value": False}, "another thread saw the import's uncommitted blob row"

    uploading, answer = _run(
        lambda: requests.post(v + f"/items/{item_id}/upload", files={"file": ("x.png", blob_x)}, headers=headers,
                              timeout=STUCK * 3)
    )
    uploading.join(2)  # give the upload the time to reach the store while the import still holds its transaction
    archive.go.set()
    importing.join(STUCK * 3)
    uploading.join(STUCK * 3)

    assert isinstance(outcome.get("error"), InvalidInput), outcome
    assert "broken.png" in str(outcome["error"])
    response = answer["value"]
    assert response.status_code in (200, 201), response.text  # type: ignore[union-attr]
    back = requests.get(v + f"/items/{item_id}/download", headers=headers)
    assert back.status_code == 200 and back.content == blob_x
    # the import left the version as it was; the upload counts once
    assert srv.store.count_items(version_id) == 1
    assert srv.store.revision(version_id) == revision + 1


def test_reads_do_not_wait_for_an_import_that_is_writing(server):
    """While an import is held inside its write transaction, GET /datasets and an item listing answer."""
    srv, headers = server
    dataset_id, version_id = _dataset(srv, headers, "images")
    members = {f"train/cat/{n}.png": os.urandom(10 * 1024) for n in range(3)}  # inline blobs: read in the transaction
    data, offsets = _folders_zip(members)
    archive = PausingArchive(data, offsets["train/cat/2.png"])

    importing, outcome = _run(import_archive, srv.store, version_id, archive, "folders")
    assert archive.reached.wait(STUCK), "the import never reached its last entry"
    try:
        listed = requests.get(srv.base + "datasets", headers=headers, timeout=STUCK)
        items = requests.get(
            f"{srv.base}datasets/{dataset_id}/versions/{version_id}/items", headers=headers, timeout=STUCK
        )
        still_paused = not archive.go.is_set() and importing.is_alive()
    finally:
        archive.go.set()
        importing.join(STUCK * 3)
    assert still_paused
    assert listed.status_code == 200 and [d["id"] for d in listed.json()] == [dataset_id]
    assert items.status_code == 200 and items.json() == []  # the import's rows are not visible before its commit
    assert "error" not in outcome, outcome
    assert srv.store.count_items(version_id) == 3


def test_a_write_completes_while_an_import_is_planning(server):
    """Planning reads only the archive: run as the server runs store work (in a worker thread), it holds no lock."""
    srv, headers = server
    dataset_id, version_id = _dataset(srv, headers, "text")
    data, offsets = _folders_zip({f"train/pos/{n}.txt": f"text {n}".encode() for n in range(3)})
    archive = PausingArchive(data, offsets["train/pos/1.txt"])  # a text read while the plan is made

    importing, outcome = _run(import_archive, srv.store, version_id, archive, "folders")
    assert archive.reached.wait(STUCK), "the import never reached its second text"
    try:
        made = requests.post(
            srv.base + "datasets", json={"name": "meanwhile", "content_type": "images", "multi_label": False},
            headers=headers, timeout=STUCK,
        )
        still_paused = not archive.go.is_set() and importing.is_alive()
    finally:
        archive.go.set()
        importing.join(STUCK * 3)
    assert still_paused
    assert made.status_code == 201, made.text
    assert "error" not in outcome, outcome
    assert srv.store.count_items(version_id) == 3


def test_a_write_completes_while_an_import_writes_its_large_files(server):
    """Files of 64 KiB and more are put in place before the import's write transaction, which other writes wait for."""
    srv, headers = server
    dataset_id, version_id = _dataset(srv, headers, "images")
    data, offsets = _folders_zip({f"train/cat/{n}.png": os.urandom(100 * 1024) for n in range(3)})
    archive = PausingArchive(data, offsets["train/cat/1.png"])

    importing, outcome = _run(import_archive, srv.store, version_id, archive, "folders")
    assert archive.reached.wait(STUCK), "the import never reached its second file"
    try:
        made = requests.post(
            f"{srv.base}datasets/{dataset_id}/versions/{version_id}/labels", json={"name": "meanwhile"},
            headers=headers, timeout=STUCK,
        )
        still_paused = not archive.go.is_set() and importing.is_alive()
    finally:
        archive.go.set()
        importing.join(STUCK * 3)
    assert still_paused
    assert made.status_code in (200, 201), made.text
    assert "error" not in outcome, outcome
    assert srv.store.count_items(version_id) == 3
    assert {label.name for label in srv.store.labels(version_id)} == {"meanwhile", "cat"}
