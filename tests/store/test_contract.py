"""The contract suites of ``engine.store.testing`` run against every back end and combination."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.store import LocalBlobs, MemoryBlobs, Store, open_blobs, open_store
from engine.store.testing import BlobStoreTests, MetadataStoreTests


class TestLocalBlobs(BlobStoreTests):
    @pytest.fixture()
    def blob_store(self, tmp_path: Path) -> LocalBlobs:
        return LocalBlobs(tmp_path / "blobs")


class TestMemoryBlobs(BlobStoreTests):
    @pytest.fixture()
    def blob_store(self) -> MemoryBlobs:
        return MemoryBlobs()


class TestSqliteWithLocalBlobs(MetadataStoreTests):
    @pytest.fixture()
    def metadata_store(self, tmp_path: Path):
        with Store.open(tmp_path / "store") as store:
            yield store


class TestSqliteWithMemoryBlobs(MetadataStoreTests):
    @pytest.fixture()
    def metadata_store(self, tmp_path: Path):
        with open_store(tmp_path / "store", blobs="memory:") as store:
            assert isinstance(store.blobs.files, MemoryBlobs)
            yield store

    def test_large_blobs_go_to_the_blob_store_and_small_ones_stay_inline(self, metadata_store: Store) -> None:
        small, large = metadata_store.put_blob(b"s" * 10), metadata_store.put_blob(b"L" * 100_000)
        assert metadata_store.blobs.files.exists(large.sha256)
        assert not metadata_store.blobs.files.exists(small.sha256)
        assert not (metadata_store.root / "blobs" / large.sha256[:2]).exists()


def test_registry_opens_back_ends_by_url(tmp_path: Path):
    assert isinstance(open_blobs("memory:"), MemoryBlobs)
    assert open_blobs(f"file:{tmp_path / 'b'}").root == tmp_path / "b"
    assert open_blobs(tmp_path / "c").root == tmp_path / "c"
    for url in (tmp_path / "s1", f"sqlite:{tmp_path / 's2'}"):
        with open_store(url) as store:
            assert isinstance(store, Store) and isinstance(store.blobs.files, LocalBlobs)


@pytest.mark.parametrize("url", ["mysql://db/x", "gs://bucket/prefix"])
def test_registry_refuses_an_unknown_scheme_and_lists_the_known_ones(url: str):
    from engine.errors import InvalidInput

    with pytest.raises(InvalidInput, match=r"no (store|blob) back end for '(mysql|gs)' URLs; a path or one of: "):
        open_store(url) if url.startswith("mysql") else open_blobs(url)


def test_registry_gives_an_install_hint_when_a_back_end_cannot_be_imported(monkeypatch):
    from engine.errors import InvalidInput
    from engine.store import registry

    monkeypatch.setitem(registry.BLOBS, "fancy", registry.Backend("engine.store.no_such_module:X", "dsexport[fancy]"))
    with pytest.raises(InvalidInput, match=r"fancy: blob back end is not available .*pip install dsexport\[fancy\]"):
        open_blobs("fancy://x")
