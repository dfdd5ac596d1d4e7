"""``dsexport store compact`` on SQLite with blobs in a bucket: dead content reclaimed, exports undisturbed."""

from __future__ import annotations

import time


from engine.store import NewItem, PageContent
from engine.store.compact import compact
from sqlite_checks import sql_all



def _dataset(store, name: str, n: int) -> tuple[str, list[bytes]]:
    ds = store.create_dataset(name, "images", default_splits=True)
    version = ds.versions[0]
    datas = [f"{name} {i} ".encode() * 20 for i in range(n)]
    store.add_items(version.id, [NewItem(name=f"i{i}", split_ids=[version.splits[0].id], data=d) for i, d in enumerate(datas)])
    return version.id, datas


def _contents(pages) -> list[bytes]:  # noqa: ANN001
    return [item.content for page in pages for item in page]


def test_compaction_reclaims_deleted_content_and_an_export_begun_before_reads_on(s3_store, s3_env):
    _dataset(s3_store, "gone", 100)
    kept_version, kept = _dataset(s3_store, "kept", 100)
    single = s3_store.create_dataset("single", "images", default_splits=True).versions[0]
    one = s3_store.create_item(single.id, name="x", blob=s3_store.put_blob(b"a pack of its own"))
    old_packs = set(s3_store.pack_usage())
    assert len(old_packs) == 3
    s3_store.delete_dataset(next(d.id for d in s3_store.list_datasets() if d.name == "gone"))

    with s3_store.reader() as reader:  # an export of "kept" that began before the compaction
        pages = reader.iter_pages(kept_version, content=PageContent.BYTES, page_size=10)
        first = next(pages)
        report = compact(s3_store, s3_store.blobs.files, grace=3600)
        assert len(report.rewritten) == 3 and len(report.written) == 1 and report.deleted == []
        assert report.kept_for_grace == 3  # retired, still readable
        rest = _contents(pages)
    assert _contents([first]) + rest == kept

    assert set(s3_store.pack_usage()) == set(report.written)
    assert sql_all(s3_store, "SELECT count(*) FROM blobs") == [(101,)]  # the deleted dataset's rows are gone
    assert _contents(s3_store.iter_pages(kept_version, content=PageContent.BYTES)) == kept
    assert s3_store.item_file(one.id)[0] == b"a pack of its own"

    later = compact(s3_store, s3_store.blobs.files, grace=3600, now=time.time() + 3601)
    assert sorted(later.deleted) == sorted(old_packs) and later.rewritten == []
    assert s3_env.keys(s3_store.bucket, "content/packs/") == [f"content/packs/{p}" for p in report.written]
    assert _contents(s3_store.iter_pages(kept_version, content=PageContent.BYTES)) == kept
    assert compact(s3_store, s3_store.blobs.files, grace=0).rewritten == []  # nothing left worth rewriting


def test_an_unrecorded_pack_is_deleted_after_the_grace_period(s3_store):
    _dataset(s3_store, "kept", 5)
    with s3_store.blobs.files.pack_writer() as writer:
        orphan = writer.add(b"sealed, then the import failed").pack
    assert compact(s3_store, s3_store.blobs.files, grace=3600).deleted == []
    assert compact(s3_store, s3_store.blobs.files, grace=0).deleted == [orphan]
    assert len(s3_store.blobs.files.list_packs()) == 1
