"""What the HTTP API takes: integer ranges, name and body size limits, and what it says when it refuses.

A real ``dsexport serve`` on loopback, on both of its workers (trio, and
asyncio on uvloop), driven with requests, raw sockets and the real ``seeme``
SDK. Every refusal is a 400 naming the field and its valid range, or a 413
naming the limit; never a 500.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import zipfile
from http import HTTPStatus
from pathlib import Path

import pytest
import requests
from formats_support import ann, item, label, make_ctx, render, split
from servers import ROOT, Server, make_user, png, sdk_client

from engine.errors import InvalidInput
from engine.server.bodies import MAX_JSON_BODY, MAX_VERSION_NUMBER
from engine.server.params import MAX_PAGE_COUNT, MAX_PAGE_SIZE
from engine.store import MAX_DESCRIPTION_LENGTH, MAX_LABEL_INDEX, MAX_NAME_LENGTH, Store
from formats.yolo import YoloFormat

pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]


@pytest.fixture(scope="module", params=["trio", "uvloop"])
def server(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"input-{request.param}")
    store = folder / "store"
    key = make_user(store, "alice")
    srv = Server(store, worker=request.param)
    srv.keys = {"alice": key}
    yield srv
    assert srv.stop() == 0
    log = srv.log.read_text()
    assert "Traceback" not in log and '" 500 ' not in log, log


def auth(srv: Server) -> dict[str, str]:
    return {"Authorization": f"Bearer {srv.keys['alice']}"}


@pytest.fixture(scope="module")
def made(server) -> dict[str, str]:
    """The URLs of one dataset's version, label, split and item, and the dataset's own."""
    h = auth(server)
    ds = requests.post(server.base + "datasets", data=json.dumps({"name": "limits", "content_type": "images",
                                                                 "default_splits": True}), headers=h).json()
    version = ds["versions"][0]
    v = f"{server.base}datasets/{ds['id']}/versions/{version['id']}"
    split_id = version["splits"][0]["id"]
    lab = requests.post(v + "/labels", data=json.dumps({"name": "cat"}), headers=h).json()
    it = requests.post(v + "/items", data=json.dumps({"name": "one", "splits": [{"id": split_id}]}), headers=h).json()
    return {
        "dataset": f"{server.base}datasets/{ds['id']}", "version": v, "label": f"{v}/labels/{lab['id']}",
        "split": f"{v}/splits/{split_id}", "item": f"{v}/items/{it['id']}", "split_id": split_id,
    }


def refused(response: requests.Response, status: int, *words: str) -> str:
    """The message of a refusal, checked: its status and reason phrase, and that it names ``words``."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.reason == HTTPStatus(status).phrase
    message = response.json()["message"]
    for word in words:
        assert word in message, (word, message)
    return message


def http_exchange(server: Server, head: bytes, body_chunks: list[bytes] | tuple = (), finish: bool = True) -> bytes:
    """Send ``head`` then ``body_chunks`` from a thread (``finish``: then end the request); the whole
    response, read here until the server closes."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)

    def send() -> None:
        try:
            sock.sendall(head)
            for chunk in body_chunks:
                sock.sendall(chunk)
            if finish:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server answered and closed: the rest is not wanted

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    response = b""
    try:
        while chunk := sock.recv(65536):
            response += chunk
    except ConnectionResetError:
        pass
    sender.join(30)
    sock.close()
    return response


def request_head(server: Server, path: str, **headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}", f"Authorization: Bearer {server.keys['alice']}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def status_and_message(response: bytes) -> tuple[bytes, str]:
    head, _, body = response.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head.lower():
        size, _, rest = body.partition(b"\r\n")
        body = rest[: int(size, 16)]
    return head.split(b"\r\n", 1)[0], json.loads(body)["message"]


def status_line(server: Server, method: str, path: str, authorised: bool = True) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request(method, path, headers=auth(server) if authorised else {})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response.status, response.reason


# -- integers out of range: 400 naming the field and its range -------------------------------------

TOO_BIG_FOR_SQLITE = 2**63
QUERY_INTEGERS = [
    ("pageSize", 1, MAX_PAGE_SIZE),
    ("pageCount", 0, MAX_PAGE_COUNT),
]
BAD_QUERY_VALUES = ["-1", str(10**18), str(TOO_BIG_FOR_SQLITE), "9" * 5000, "abc", "1.5", "1e3", "0x10", " 5"]


@pytest.mark.parametrize(("field", "lowest", "highest"), QUERY_INTEGERS)
@pytest.mark.parametrize("value", [*BAD_QUERY_VALUES, "below", "above"])
def test_query_integers_out_of_range_are_400_naming_field_and_range(server, made, field, lowest, highest, value):
    value = {"below": str(lowest - 1), "above": str(highest + 1)}.get(value, value)
    r = requests.get(made["version"] + "/items", params={field: value}, headers=auth(server))
    message = refused(r, 400, field, f"from {lowest} to {highest}")
    assert len(message) < 200  # a 5000-digit value is not echoed back whole


@pytest.mark.parametrize(("field", "lowest", "highest"), QUERY_INTEGERS)
def test_query_integers_at_their_bounds_are_taken(server, made, field, lowest, highest):
    for value in (lowest, highest, ""):  # empty: the default
        r = requests.get(made["version"] + "/items", params={field: str(value)}, headers=auth(server))
        assert r.status_code == 200, r.text
        assert isinstance(r.json(), list)


def body_integers(made: dict[str, str]) -> list[tuple[str, str, str, dict[str, str], int, int]]:
    """(method, url, field, rest of the body, lowest, highest) of every integer body field."""
    return [
        ("POST", made["version"] + "/labels", "index", {"name": "new"}, 0, MAX_LABEL_INDEX),
        ("PUT", made["label"], "index", {"name": "cat"}, 0, MAX_LABEL_INDEX),
        ("POST", made["version"] + "/items", "version", {"name": "x"}, 0, MAX_VERSION_NUMBER),
        ("PUT", made["item"], "version", {"name": "one"}, 0, MAX_VERSION_NUMBER),
        ("PUT", made["item"] + "/state", "version", {"state": "done"}, 0, MAX_VERSION_NUMBER),
    ]


@pytest.mark.parametrize("case", range(5))
@pytest.mark.parametrize("value", ["below", "above", TOO_BIG_FOR_SQLITE, -(2**63) - 1, 10**40, "3", 1.5, True])
def test_body_integers_out_of_range_are_400_naming_field_and_range(server, made, case, value):
    method, url, field, rest, lowest, highest = body_integers(made)[case]
    if value in ("below", "above"):
        value = lowest - 1 if value == "below" else highest + 1
    r = requests.request(method, url, data=json.dumps({**rest, field: value}), headers=auth(server))
    refused(r, 400, field, f"from {lowest} to {highest}")


def test_label_index_at_its_bound_is_taken(server, made):
    r = requests.post(made["version"] + "/labels", data=json.dumps({"name": "last", "index": MAX_LABEL_INDEX}),
                      headers=auth(server))
    assert r.status_code == 201, r.text
    assert r.json()["index"] == MAX_LABEL_INDEX


@pytest.mark.parametrize("path", ["item", "state"])
@pytest.mark.parametrize("header", ['"-1"', f'"{TOO_BIG_FOR_SQLITE}"', '"' + "9" * 5000 + '"', '"x"', "W/\"1.5\""])
def test_if_match_out_of_range_is_400_naming_header_and_range(server, made, path, header):
    url = made["item"] + ("/state" if path == "state" else "")
    r = requests.put(url, data=json.dumps({"name": "one", "state": "s"}), headers={**auth(server), "If-Match": header})
    refused(r, 400, "If-Match", f"from 0 to {MAX_VERSION_NUMBER}")


def test_store_refuses_a_label_index_sqlite_cannot_hold(tmp_path):
    with Store.open(tmp_path / "s") as store:
        ds = store.create_dataset("d", "images")
        for index in (TOO_BIG_FOR_SQLITE, MAX_LABEL_INDEX + 1, -1):
            with pytest.raises(InvalidInput, match=f"label index must be an integer from 0 to {MAX_LABEL_INDEX}"):
                store.create_label(ds.versions[0].id, "cat", index=index)
        made_label = store.create_label(ds.versions[0].id, "cat", index=MAX_LABEL_INDEX)
        with pytest.raises(InvalidInput, match="label index"):
            store.update_label(ds.versions[0].id, made_label.id, name="cat", description="", color="",
                               index=TOO_BIG_FOR_SQLITE, shortcut="")


# -- body size (413), name and description lengths (400) -------------------------------------------


#: (method, where, rest of the body) of every call that takes a name and a description.
NAMED = [
    ("POST", "datasets", {"name": "d", "content_type": "images"}),
    ("PUT", "dataset", {"name": "d"}),
    ("POST", "versions", {"name": "v"}),
    ("PUT", "version", {"name": "v"}),
    ("POST", "labels", {"name": "l"}),
    ("PUT", "label", {"name": "cat"}),
    ("POST", "splits", {"name": "s"}),
    ("PUT", "split", {"name": "train"}),
    ("POST", "items", {"name": "i"}),
    ("PUT", "item", {"name": "one"}),
]
#: (method, where, field, rest of the body, longest) of every name and description the API takes.
TEXT_FIELDS = [
    *[(m, w, "name", rest, MAX_NAME_LENGTH) for m, w, rest in NAMED],
    *[(m, w, "description", rest, MAX_DESCRIPTION_LENGTH) for m, w, rest in NAMED],
    ("PUT", "state", "name", {"state": "s"}, MAX_NAME_LENGTH),
    *[("POST", "register", f, {"username": "u", "password": "p"}, MAX_NAME_LENGTH)
      for f in ("username", "email", "name", "firstname")],
    ("POST", "login", "username", {"password": "p"}, MAX_NAME_LENGTH),
]


def where(server: Server, made: dict[str, str], place: str) -> str:
    v = made["version"]
    return {
        "datasets": server.base + "datasets", "versions": v.rsplit("/", 1)[0], "labels": v + "/labels",
        "splits": v + "/splits", "items": v + "/items", "state": made["item"] + "/state",
        "register": server.base + "register", "login": server.base + "login",
    }.get(place) or made[place]


@pytest.mark.parametrize(("method", "place", "field", "rest", "longest"), TEXT_FIELDS)
def test_names_and_descriptions_over_their_limit_are_400_naming_field_and_limit(
    server, made, method, place, field, rest, longest
):
    body = json.dumps({**rest, field: "n" * (longest + 1)})
    r = requests.request(method, where(server, made, place), data=body, headers=auth(server))
    refused(r, 400, field, f"at most {longest} characters")


def test_names_and_descriptions_at_their_limit_are_taken(server, made):
    h = auth(server)
    body = {"name": "n" * MAX_NAME_LENGTH, "description": "d" * MAX_DESCRIPTION_LENGTH, "content_type": "text"}
    r = requests.post(server.base + "datasets", data=json.dumps(body), headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["name"] == body["name"]
    r = requests.post(made["version"] + "/labels", data=json.dumps({"name": "é" * MAX_NAME_LENGTH}), headers=h)
    assert r.status_code == 201, r.text


def test_store_refuses_a_name_over_the_limit(tmp_path):
    with Store.open(tmp_path / "s") as store:
        with pytest.raises(InvalidInput, match=f"at most {MAX_NAME_LENGTH} characters"):
            store.create_dataset("n" * (MAX_NAME_LENGTH + 1), "images")
        ds = store.create_dataset("n" * MAX_NAME_LENGTH, "images")
        for make in (store.create_split, store.create_label):
            with pytest.raises(InvalidInput, match=f"at most {MAX_NAME_LENGTH} characters"):
                make(ds.versions[0].id, "s" * (MAX_NAME_LENGTH + 1))


def test_a_declared_length_over_the_limit_is_413_before_any_byte_is_read(server):
    # 10 GB announced, nothing sent: only a server that refuses before reading can answer.
    head = request_head(server, "/api/v1/datasets", Content_Length=str(10 * 2**30))
    response = http_exchange(server, head, finish=False)
    status, message = status_and_message(response)
    assert status == b"HTTP/1.1 413 " + HTTPStatus(413).phrase.encode()
    assert f"{MAX_JSON_BODY} bytes" in message


def test_a_chunked_body_is_refused_once_it_passes_the_limit(server):
    # 10 MiB in 64 KiB chunks and never the last chunk: a server that read the body to its end
    # before refusing would wait forever; the 413 comes while the body is still arriving.
    piece = b"x" * 65536
    chunks = [b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(160)]
    head = request_head(server, "/api/v1/datasets", Transfer_Encoding="chunked")
    response = http_exchange(server, head, chunks, finish=False)
    status, message = status_and_message(response)
    assert status == b"HTTP/1.1 413 " + HTTPStatus(413).phrase.encode()
    assert f"{MAX_JSON_BODY} bytes" in message


@pytest.mark.parametrize(("key", "status"), [(True, 413), (False, 401)])
def test_a_refused_body_still_being_sent_holds_neither_client_nor_server(server, key, status):
    # 10 MiB sent in full, as requests does: the reply must come, the connection close, and the
    # request end on the server (its log line), though the body is never read to its end.
    path = f"/api/v1/datasets?case=refused-{status}"
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}", f"Content-Length: {10 * 2**20}"]
    if key:
        lines.append(f"Authorization: Bearer {server.keys['alice']}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    response = http_exchange(server, head, [b"x" * 2**20] * 10)
    assert response.startswith(b"HTTP/1.1 %d %s\r\n" % (status, HTTPStatus(status).phrase.encode()))
    deadline = time.monotonic() + 20
    while f'"POST {path}" {status}' not in server.log.read_text():
        assert time.monotonic() < deadline, "the request never ended on the server"
        time.sleep(0.05)


def test_a_ten_megabyte_name_is_413_in_the_sdk_too(server):
    from requests import HTTPError
    from seeme.types import Dataset

    client = sdk_client(server)
    with pytest.raises(HTTPError) as raised:
        client.create_dataset(Dataset(name="n" * 10_000_000, content_type="images", multi_label=False,
                                      default_splits=False))
    assert f"413 Client Error: {HTTPStatus(413).phrase}" in str(raised.value)
    assert raised.value.response.json()["message"].endswith(f"{MAX_JSON_BODY} bytes for JSON bodies")


def test_item_file_uploads_are_not_held_to_the_json_limit(server, made):
    picture = png(3) + b"\0" * (2 * MAX_JSON_BODY)  # a PNG with a long tail: still one file
    r = requests.post(made["item"] + "/upload", files={"file": ("big.png", picture, "image/png")}, headers=auth(server))
    assert r.status_code == 200, r.text
    got = requests.get(made["item"] + "/download", headers=auth(server))
    assert got.content == picture


def test_an_uploaded_image_gets_its_size_and_other_content_none(server, made):
    h = auth(server)
    r = requests.post(made["item"] + "/upload", files={"file": ("p.png", png(3), "image/png")}, headers=h)
    assert r.status_code == 200, r.text
    assert (r.json()["width"], r.json()["height"]) == (7, 3)
    assert requests.get(made["item"], headers=h).json()["width"] == 7  # kept, not only answered
    r = requests.post(made["item"] + "/upload", files={"file": ("notes.bin", b"not an image", "application/x")},
                      headers=h)
    assert r.status_code == 200 and (r.json()["width"], r.json()["height"]) == (None, None)  # replaced, not kept


# -- box formats of image-level labels -------------------------------------------------------------
# A classification annotation (no box) is not a box: YOLO, Ultralytics and COCO write the images and
# leave such labels out, saying how many (this used to be a 400 naming the label).


def test_yolo_leaves_an_image_level_label_out_and_counts_it():
    cat, train = label("cat"), split("train")
    ctx = make_ctx(content_type="images", version_id="v", labels=[cat], splits=[train])
    items = [item("item-5", "a", "jpg", split=train, content=b"A", annotations=[ann(cat, "")])]
    files = render(YoloFormat, ctx, items)
    assert (files["a.jpg"], files["a.txt"]) == (b"A", b"")


@pytest.fixture(scope="module")
def classification(server) -> dict[str, str]:
    """An image-classification version of two labelled images, through the SDK."""
    from seeme.types import Annotation, Dataset, DatasetItem, Label

    client = sdk_client(server)
    ds = client.create_dataset(Dataset(name="pets", content_type="images", multi_label=False, default_splits=True))
    version = ds.versions[0]
    train = version.splits[0]
    cat = client.create_dataset_label(ds.id, version.id, Label(name="cat", version_id=version.id))
    folder = Path(server.store).parent
    for n in range(2):
        it = client.create_dataset_item(ds.id, version.id, DatasetItem(name=f"p{n}", splits=[train]))
        (folder / f"p{n}.png").write_bytes(png(n))
        client.upload_dataset_item_image(ds.id, version.id, it.id, folder=str(folder), filename=f"p{n}.png")
        client.annotate(ds.id, version.id, Annotation(label_id=cat.id, item_id=it.id, split_id=train.id))
    return {"dataset": ds.id, "version": version.id, "first_item": it.id}


@pytest.mark.parametrize("fmt", ["yolo", "ultralytics", "coco"])
def test_a_box_format_of_a_classification_dataset_exports_and_says_what_it_left_out(server, classification, fmt):
    url = f"{server.base}datasets/{classification['dataset']}/versions/{classification['version']}/download"
    r = requests.get(url, params={"format": fmt}, headers=auth(server))
    assert r.status_code == 200, r.text
    assert r.headers["x-dsexport-format"] == fmt
    assert r.headers["x-dsexport-image-labels-left-out"] == "2"
    assert "folders" in r.headers["x-dsexport-warning"] and "no boxes" in r.headers["x-dsexport-warning"]
    names = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
    assert sum(name.endswith(".png") for name in names) == 2  # both images are there
    folders = requests.get(url, params={"format": "folders"}, headers=auth(server))
    assert folders.status_code == 200 and "x-dsexport-image-labels-left-out" not in folders.headers


def test_the_sdk_downloads_yolo_of_a_classification_dataset(server, classification, tmp_path):
    from seeme.types import DatasetFormat

    client = sdk_client(server)
    client.download_dataset(classification["dataset"], classification["version"], export_format=DatasetFormat.YOLO,
                            download_file=str(tmp_path / "d.zip"), extract_to_folder=str(tmp_path / "x"), params={})
    assert sorted(p.name for p in (tmp_path / "x").iterdir() if p.suffix == ".png") == ["p0.png", "p1.png"]


def test_the_cli_exports_and_names_the_fitting_format(server, classification, tmp_path):
    out = tmp_path / "pets.zip"

    def export(fmt: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "engine", "export", "--store", str(server.store), classification["dataset"],
             classification["version"], "--format", fmt, "-o", str(out), "--no-progress"],
            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120,
        )

    done = export("yolo")
    assert done.returncode == 0, done.stderr
    assert "left out 2 image-level label(s)" in done.stderr and "the folders format" in done.stderr
    names = zipfile.ZipFile(out).namelist()
    assert [n for n in names if n.startswith("p")] == ["p0.png", "p0.txt", "p1.png", "p1.txt"]
    assert zipfile.ZipFile(out).read("p0.txt") == b""  # the image-level label is not a box line
    done = export("folders")
    assert done.returncode == 0, done.stderr
    assert "image-level" not in done.stderr
    assert len(zipfile.ZipFile(out).namelist()) == 2


# -- reason phrases -------------------------------------------------------------------------------


def test_every_status_line_carries_its_reason_phrase(server, made):
    version_path = made["version"].removeprefix(f"http://127.0.0.1:{server.port}")
    for method, path, authorised, status in [
        ("GET", "/api/v1/datasets", True, 200),
        ("GET", "/api/v1/datasets", False, 401),
        ("GET", "/api/v1/datasets/nope", True, 404),
        ("GET", version_path + "/items?pageSize=0", True, 400),
        ("GET", "/api/v1/datasets/", True, 404),
        ("DELETE", "/openapi.json", True, 405),
    ]:
        assert status_line(server, method, path, authorised) == (status, HTTPStatus(status).phrase), (method, path)
    # Hypercorn's own answer to a request it cannot parse
    response = http_exchange(server, b"NOT A REQUEST\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 400 Bad Request\r\n")
