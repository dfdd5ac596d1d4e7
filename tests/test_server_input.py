"""What the HTTP API takes: integer ranges, name and body size limits, and what it says when it refuses.

A real ``dsexport serve`` on loopback, on both of its workers (trio, and
asyncio on uvloop), driven with requests, raw sockets and the real ``seeme``
SDK. Every refusal is a 400 naming the field and its valid range, or a 413
naming the limit; never a 500.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from http import HTTPStatus

import pytest
import requests
from test_server_api import Server, make_user

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
