"""StoreAddress: how every command, the server and an export's source name a store."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from engine.errors import NotFound
from engine.store import LocalBlobs, MemoryBlobs, PageContent, StoreAddress, StoreReader, open_blobs


def test_options_win_over_the_environment_which_wins_over_the_default(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("DSEXPORT_STORE", raising=False)
    monkeypatch.delenv("DSEXPORT_BLOBS", raising=False)
    assert StoreAddress.from_options(None, None) == StoreAddress("dsexport-data", None)
    monkeypatch.setenv("DSEXPORT_STORE", "env-store")
    monkeypatch.setenv("DSEXPORT_BLOBS", "env-blobs")
    assert StoreAddress.from_options(None, None) == StoreAddress("env-store", "env-blobs")
    assert StoreAddress.from_options("opt-store", "opt-blobs") == StoreAddress("opt-store", "opt-blobs")
    monkeypatch.setenv("DSEXPORT_BLOBS", "")
    assert StoreAddress.from_options("s", None).blobs is None  # an empty variable means "not set"


def test_of_takes_an_address_as_it_is_and_a_path_as_a_folder_store(tmp_path: Path):
    address = StoreAddress("a", "b")
    assert StoreAddress.of(address) is address
    assert StoreAddress.of(tmp_path) == StoreAddress(str(tmp_path))


def test_display_never_shows_a_password():
    shown = StoreAddress("postgresql://ada:s3cret@db.example:5432/data", "s3://k:v@bucket/prefix").display()
    assert "s3cret" not in shown and ":v@" not in shown
    assert "postgresql://ada:***@db.example:5432/data" in shown and "bucket/prefix" in shown
    assert StoreAddress("/srv/store").display() == "/srv/store"
    query = StoreAddress("postgresql://db.example/data?sslmode=require&password=s3cret&user=ada").display()
    assert query == "postgresql://db.example/data?sslmode=require&password=***&user=ada"


def test_an_address_is_picklable_for_workers_of_other_processes():
    address = StoreAddress("postgresql://db/x", "s3://bucket/p")
    assert pickle.loads(pickle.dumps(address)) == address


def test_the_writer_and_the_reader_keep_content_where_the_blobs_url_says(tmp_path: Path):
    address = StoreAddress(str(tmp_path / "meta"), str(tmp_path / "content"))
    with address.open(create=True) as store:
        ds = store.create_dataset("d", "images")
        version = ds.versions[0]
        large = store.put_blob(b"L" * 100_000)
        store.create_item(version.id, name="big", extension="bin", blob=large)
    assert LocalBlobs(tmp_path / "content").exists(large.sha256)
    assert not (tmp_path / "meta" / "blobs" / large.sha256[:2]).exists()
    reader = address.reader()
    try:
        assert isinstance(reader, StoreReader)
        [page] = reader.iter_pages(version.id, content=PageContent.BYTES)
        assert b"".join(page[0].content.chunks()) == b"L" * 100_000
    finally:
        reader.close()


def test_a_reader_never_creates_a_store(tmp_path: Path):
    with pytest.raises(NotFound, match="dsexport init --store"):
        StoreAddress(str(tmp_path / "absent")).reader()
    assert not (tmp_path / "absent").exists()


def test_a_named_memory_blob_store_is_shared_within_the_process():
    first, again, fresh = open_blobs("memory:shared-test"), open_blobs("memory:shared-test"), open_blobs("memory:")
    assert isinstance(first, MemoryBlobs) and first is again and fresh is not first
    ref = first.put([b"x" * 10])
    assert again.exists(ref.sha256) and not fresh.exists(ref.sha256)
