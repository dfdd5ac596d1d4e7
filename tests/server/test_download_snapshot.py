"""A download's ETag, length and bytes describe one state of the version, even when a write lands mid-way.

The write is made to commit at the worst moment every time: after the
server has decided the response's status, ETag and Content-Length, before
the export reads its first page (``write_between_server.py``). A 206 may
then only carry bytes of the state its ETag names; a client resuming
across the write ends with one consistent archive, never a splice.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
import requests
from servers import cli_export
from write_between_server import WriteBetweenServer

from bench.proxy import ImpairedProxy
from engine import Client
from engine.demo import create_demo
from engine.store import PageContent
from engine.store.address import StoreAddress

pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


@pytest.fixture(params=["sqlite", "postgresql"])
def served(request, tmp_path):
    """A fresh demo store (the tests change it) behind the server with the write hook: a SQLite
    folder, or a PostgreSQL database with its content in a folder."""
    store: Path | str = tmp_path / "store"
    blobs = None
    if request.param == "postgresql":
        store, blobs = request.getfixturevalue("postgres").new_database("snap"), str(tmp_path / "content")
    with StoreAddress(str(store), blobs).open(create=True) as opened:
        made = create_demo(opened, items=30, seed=1)
        key = opened.create_user("alice", "pw")[1]
        opened.give_datasets("alice")
    srv = WriteBetweenServer(store, blobs=blobs, workdir=tmp_path)
    yield srv, key, made[0]  # images in FOLDERS: cats/... and dogs/...
    srv.stop()


def relabel_the_first_labelled_item(srv: WriteBetweenServer, version_id: str) -> None:
    """Arm a write that changes the archive's bytes but not its length.

    The first labelled item in export order moves between "cats" and "dogs":
    its path changes, in its local header near the start and in the central
    directory at the end, by as many bytes as it had. A length check cannot
    notice a splice then; only the bytes can.
    """
    with srv.address.open(create=False) as opened:
        labels = {label.id: label.name for label in opened.labels(version_id)}
        pages = opened.iter_pages(version_id, content=PageContent.NONE)
        first = next(item for page in pages for item in page if item.annotations)
        annotation = opened.get_item(first.id).annotations[0]
    other = next(label_id for label_id in labels if label_id != annotation.label_id)
    assert sorted(labels.values()) == ["cats", "dogs"]
    srv.arm("update_annotation", annotation.id, label_id=other, coordinates="")


def download_url(srv: WriteBetweenServer, d) -> str:
    return f"{srv.base}datasets/{d.dataset_id}/versions/{d.version_id}/download"


@pytest.mark.parametrize("ranged", [True, False], ids=["resume", "full"])
def test_a_write_between_the_etag_and_the_first_page_does_not_reach_the_response(served, ranged):
    srv, key, d = served
    auth = {"Authorization": f"Bearer {key}"}
    before = requests.get(download_url(srv, d), headers=auth)
    assert before.status_code == 200
    old_etag, old_bytes = before.headers["etag"], before.content
    offset = len(old_bytes) // 3

    relabel_the_first_labelled_item(srv, d.version_id)
    headers = {**auth, "Range": f"bytes={offset}-", "If-Range": old_etag} if ranged else auth
    during = requests.get(download_url(srv, d), headers=headers)
    assert srv.write_landed

    after = requests.get(download_url(srv, d), headers=auth)
    assert after.status_code == 200 and after.headers["etag"] != old_etag
    assert len(after.content) == len(old_bytes) and after.content != old_bytes
    # The response is all of one state: the old one under the old ETag, or the new one under the new.
    if during.headers["etag"] == old_etag:
        expected = old_bytes[offset:] if ranged else old_bytes
        assert during.status_code == (206 if ranged else 200)
    else:
        assert during.headers["etag"] == after.headers["etag"] and during.status_code == 200
        expected = after.content
    assert int(during.headers["content-length"]) == len(during.content)
    assert during.content == expected


def test_the_client_resuming_across_a_write_ends_with_one_consistent_archive(served, tmp_path):
    srv, key, d = served
    old_archive = cli_export(srv.store, d, d.format, tmp_path, blobs=srv.blobs)
    zip_path = tmp_path / "dataset.zip"
    target = dict(extract_to_dir=str(tmp_path / "data"), download_file=str(zip_path), export_format=d.format)
    with ImpairedProxy(srv.port, cuts=[len(old_archive) // 2] + [1] * 10) as proxy:
        client = Client(proxy.base(), key, timeout=5.0, retries=2, retry_wait=0.01)
        with pytest.raises(Exception, match="to resume"):
            client.download_dataset(d.dataset_id, d.version_id, **target)
        kept = (tmp_path / "dataset.zip.part").stat().st_size
        assert 0 < kept < len(old_archive)

        relabel_the_first_labelled_item(srv, d.version_id)  # lands while the resume's bytes are being prepared
        proxy.cuts.clear()
        result = client.download_dataset(d.dataset_id, d.version_id, remove_download_file=False, **target)
    assert srv.write_landed
    (tmp_path / "after").mkdir()
    new_archive = cli_export(srv.store, d, d.format, tmp_path / "after", blobs=srv.blobs)
    assert new_archive != old_archive
    got = zip_path.read_bytes()
    assert got in (old_archive, new_archive)
    assert result.resumed_from == kept  # it did resume: the If-Range request was the one the write met
    with zipfile.ZipFile(io.BytesIO(got)) as z:
        assert z.testzip() is None
