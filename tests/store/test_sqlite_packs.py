"""SQLite metadata with blobs in a bucket (SeaweedFS): small blobs packed, read a page at a time."""

from __future__ import annotations


import obstore
import pytest

from engine.errors import MissingBlob
from engine.store import INLINE_LIMIT, NewItem, PageContent
from engine.store.testing import MetadataStoreTests
from sqlite_checks import sql_all



class TestSqliteWithS3Blobs(MetadataStoreTests):
    @pytest.fixture()
    def metadata_store(self, s3_store):
        return s3_store


def _pets(store):
    ds = store.create_dataset("pets", "images", default_splits=True)
    version = ds.versions[0]
    return version.id, version.splits


def test_a_bulk_load_packs_its_small_blobs_in_ingest_order(s3_store, s3_env):
    version_id, (train, _, _) = _pets(s3_store)
    datas = [f"item {n} ".encode() * (n + 1) for n in range(300)]
    large = b"L" * (INLINE_LIMIT + 5)
    rows = [NewItem(name=f"n{n}", split_ids=[train.id], data=d) for n, d in enumerate(datas)]
    s3_store.add_items(version_id, [*rows, NewItem(name="big", split_ids=[train.id], data=large)])
    packed = sql_all(s3_store, "SELECT pack, pack_offset, size, data FROM blobs WHERE pack IS NOT NULL ORDER BY id")
    assert len(packed) == 300 and {r[3] for r in packed} == {None}  # not inline
    assert len({r[0] for r in packed}) == 1  # one batch: one pack
    assert [r[1] for r in packed] == [sum(len(d) for d in datas[:n]) for n in range(300)]  # appended in order
    keys = s3_env.keys(s3_store.bucket)
    assert f"content/packs/{packed[0][0]}" in keys and len(keys) == 2  # the pack and the one large blob
    pages = list(s3_store.iter_pages(version_id, content=PageContent.BYTES, page_size=128))
    got = [item.content if isinstance(item.content, bytes) else item.content.read() for p in pages for item in p]
    assert got == [*datas, large]


def test_an_export_page_reads_each_pack_once(s3_store, monkeypatch):
    version_id, (train, _, _) = _pets(s3_store)
    for batch in range(3):  # three batches: three packs
        s3_store.add_items(version_id, [NewItem(name=f"b{batch}-{n}", split_ids=[train.id], data=f"{batch}/{n}".encode()) for n in range(50)])
    calls: list[int] = []
    real = obstore.get_ranges

    def counted(store, path, **kw):  # noqa: ANN001, ANN003
        calls.append(len(kw["starts"]))
        return real(store, path, **kw)

    monkeypatch.setattr(obstore, "get_ranges", counted)
    pages = list(s3_store.iter_pages(version_id, content=PageContent.BYTES, page_size=100))
    assert [len(p) for p in pages] == [100, 50]
    assert calls == [50, 50, 50]  # page 1 spans packs 1-2, page 2 is pack 3
    assert [i.content for p in pages for i in p][60] == b"1/10"


def test_content_is_stored_once_and_single_puts_pack_too(s3_store):
    version_id, (train, _, _) = _pets(s3_store)
    ref = s3_store.put_blob(b"tiny")
    assert s3_store.put_blob(b"tiny") == ref and s3_store.put_blob_stream([b"ti", b"ny"]) == ref
    s3_store.add_items(version_id, [NewItem(name="again", split_ids=[train.id], data=b"tiny")])
    assert sql_all(s3_store, "SELECT count(*), count(pack) FROM blobs") == [(1, 1)]
    item = s3_store.create_item(version_id, name="one", extension="txt", blob=ref)
    assert s3_store.item_file(item.id) == (b"tiny", "txt")


def test_a_missing_pack_names_the_item(s3_store):
    version_id, (train, _, _) = _pets(s3_store)
    s3_store.add_items(version_id, [NewItem(id="item-lost", name="x", split_ids=[train.id], data=b"gone soon")])
    (pack,), = sql_all(s3_store, "SELECT pack FROM blobs")
    s3_store.blobs.files.delete_pack(pack)
    with pytest.raises(MissingBlob, match="item item-lost.*pack") as caught:
        list(s3_store.iter_pages(version_id, content=PageContent.BYTES))
    assert caught.value.item_id == "item-lost"
