"""Two ``dsexport serve`` processes on one PostgreSQL database: one store, whichever process answers."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

import pytest
import requests

from engine.demo import create_demo
from engine.store.address import StoreAddress
from servers import Server

pytestmark = [pytest.mark.filterwarnings("ignore::ResourceWarning")]


@pytest.fixture(scope="module")
def pair(postgres, tmp_path_factory):
    """Two servers on one database (content in one folder), the demo datasets owned by alice."""
    folder = tmp_path_factory.mktemp("pair")
    url, blobs = postgres.new_database("pair"), str(folder / "content")
    with StoreAddress(url, blobs).open(create=True) as store:
        made = create_demo(store, items=30, seed=3)
        key = store.create_user("alice", "pw")[1]
        store.give_datasets("alice")
    one, two = Server(url, blobs=blobs, workdir=folder), Server(url, blobs=blobs, workdir=folder)
    yield one, two, key, made
    for srv in (one, two):
        assert srv.stop() == 0
        assert "Traceback" not in srv.log.read_text()


def _auth(key: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **extra}


def test_a_write_through_one_is_seen_by_the_next_request_to_the_other(pair) -> None:
    one, two, key, made = pair
    d = made[0]
    version = f"datasets/{d.dataset_id}/versions/{d.version_id}"
    created = requests.post(one.base + f"{version}/labels", json={"name": "birds"}, headers=_auth(key))
    assert created.status_code == 201, created.text
    labels = requests.get(two.base + f"{version}/labels", headers=_auth(key)).json()
    assert "birds" in [label["name"] for label in labels]
    made_ds = requests.post(one.base + "datasets", json={"name": "fresh", "content_type": "text"}, headers=_auth(key))
    assert made_ds.status_code in (200, 201), made_ds.text
    assert "fresh" in [ds["name"] for ds in requests.get(two.base + "datasets", headers=_auth(key)).json()]
    # a key issued by one process is honoured by the other
    login = requests.post(two.base + "login", json={"username": "alice", "password": "pw"})
    assert login.status_code == 200, login.text
    new_key = login.json()["apikey"]
    assert requests.get(one.base + "datasets", headers=_auth(new_key)).status_code == 200


def test_etags_agree_and_a_download_resumed_against_the_other_is_byte_identical(pair) -> None:
    one, two, key, made = pair
    for d in made:
        path = f"datasets/{d.dataset_id}/versions/{d.version_id}/download?format={d.format}"
        full = requests.get(one.base + path, headers=_auth(key))
        assert full.status_code == 200, full.text
        etag = full.headers["etag"]
        head = requests.head(two.base + path, headers=_auth(key))
        assert head.headers["etag"] == etag and int(head.headers["content-length"]) == len(full.content)
        cut = len(full.content) // 3
        first = requests.get(one.base + path, headers=_auth(key, Range=f"bytes=0-{cut - 1}"))
        rest = requests.get(two.base + path, headers=_auth(key, Range=f"bytes={cut}-", **{"If-Range": etag}))
        assert (first.status_code, rest.status_code) == (206, 206)
        assert rest.headers["etag"] == etag
        assert first.content + rest.content == full.content
        with zipfile.ZipFile(io.BytesIO(full.content)) as archive:
            assert archive.testzip() is None


def test_an_edit_through_one_changes_the_etag_both_give(pair) -> None:
    one, two, key, made = pair
    d = made[1]
    path = f"datasets/{d.dataset_id}/versions/{d.version_id}/download?format={d.format}"
    before = requests.head(two.base + path, headers=_auth(key)).headers["etag"]
    version = f"datasets/{d.dataset_id}/versions/{d.version_id}"
    assert requests.post(one.base + f"{version}/labels", json={"name": "extra"}, headers=_auth(key)).status_code == 201
    after_one = requests.head(one.base + path, headers=_auth(key)).headers["etag"]
    after_two = requests.head(two.base + path, headers=_auth(key)).headers["etag"]
    assert after_one == after_two != before
    stale = requests.get(two.base + path, headers=_auth(key, Range="bytes=10-", **{"If-Range": before}))
    assert stale.status_code == 200 and stale.headers["etag"] == after_one  # the old bytes are gone: all of the new


def test_a_database_that_goes_away_is_a_503_naming_it_and_its_return_is_served(tmp_path: Path) -> None:
    from postgres import PostgresServer, require_postgres

    require_postgres()
    database = PostgresServer()  # its own: stopping it would cut the session's other tests off
    try:
        url, blobs = database.new_database(), str(tmp_path / "content")
        with StoreAddress(url, blobs).open(create=True) as store:
            key = store.create_user("alice", "pw")[1]
        srv = Server(url, blobs=blobs, workdir=tmp_path, env={"DSEXPORT_PG_POOL_WAIT": "1"})
        try:
            assert requests.get(srv.base + "datasets", headers=_auth(key)).status_code == 200
            database.halt()
            down = requests.get(srv.base + "datasets", headers=_auth(key), timeout=30)
            assert down.status_code == 503
            assert f"127.0.0.1:{database.port}" in down.json()["message"]
            database.start()
            deadline = time.monotonic() + 60  # the pool reconnects with a backoff; clients retry a 503
            while (back := requests.get(srv.base + "datasets", headers=_auth(key), timeout=30)).status_code == 503:
                assert time.monotonic() < deadline, back.text
                time.sleep(0.5)
            assert back.status_code == 200 and back.json() == []
        finally:
            assert srv.stop() == 0
        assert "Traceback" not in srv.log.read_text()
    finally:
        database.stop()
