"""The SQLite back end's bulk load (add_items): batches, blobs, rejections, concurrency."""

from __future__ import annotations

import threading

import pytest

from engine.errors import InvalidInput, NotFound
from engine.store import (
    INLINE_LIMIT,
    BlobRef,
    NewItem,
    PageContent,
    Store,
)
from sqlite_checks import sql


# -- bulk -------------------------------------------------------------------------


def test_add_items_bulk_with_content_annotations_and_given_ids(store: Store, images):
    version_id, (train, valid, _), (cats, dogs) = images
    rows = (
        NewItem(
            id=f"item-{i:05d}",
            name=f"n{i}",
            extension="png",
            split_ids=[train.id if i % 2 else valid.id],
            data=i.to_bytes(4, "big") * 256,
            annotations=[(cats.id if i % 3 else dogs.id, train.id if i % 2 else valid.id, "")],
        )
        for i in range(2500)
    )
    assert store.add_items(version_id, rows, batch=1000) == 2500
    assert store.count_items(version_id) == 2500
    assert store.count_items(version_id, train.id) == 1250
    assert sql(store, "SELECT count(*) FROM blobs")[0] == 2500
    item = store.get_item("item-00007")
    assert [s.name for s in item.splits] == ["train"] and item.annotations[0].label_id == cats.id
    [exported] = next(store.iter_pages(version_id, [train.id], content=PageContent.BYTES, include_unsplit=False, page_size=1))
    assert exported.id == "item-00001" and exported.content == (1).to_bytes(4, "big") * 256


def test_add_items_deduplicates_blobs_within_and_across_batches(store: Store, images):
    version_id, (train, _, _), _ = images
    known = store.put_blob(b"known")
    large = b"L" * (INLINE_LIMIT + 1)
    contents = [b"known", b"new", b"new", large, b"known", b"other", large]
    rows = [NewItem(name=f"n{i}", split_ids=[train.id], data=data) for i, data in enumerate(contents)]
    rows.append(NewItem(name="ref", split_ids=[train.id], blob=known))
    assert store.add_items(version_id, rows, batch=3) == 8
    assert sql(store, "SELECT count(*) FROM blobs")[0] == 4  # known, new, large, other
    assert sql(store, "SELECT data IS NULL FROM blobs WHERE sha256 = ?", (BlobRef.of(large).sha256,))[0] == 1
    got = {
        i.name: i.content
        for p in store.iter_pages(version_id, None, content=PageContent.BYTES, include_unsplit=False)
        for i in p
    }
    assert [got[f"n{i}"] if isinstance(got[f"n{i}"], bytes) else got[f"n{i}"].read() for i in range(7)] == contents
    assert got["ref"] == b"known"


def test_add_items_rejects_a_bad_row_and_keeps_earlier_batches(store: Store, images):
    version_id, (train, valid, _), (cats, _) = images
    good = [NewItem(name=f"g{i}", split_ids=[train.id]) for i in range(4)]
    bad = NewItem(name="bad", split_ids=[train.id], annotations=[(cats.id, valid.id, "")])
    with pytest.raises(InvalidInput, match=r"row 5: annotation in split .*not in"):
        store.add_items(version_id, [*good, NewItem(name="g4", split_ids=[train.id]), bad], batch=4)
    assert sorted(
        i.name for p in store.iter_pages(version_id, None, content=PageContent.NONE, include_unsplit=True) for i in p
    ) == ["g0", "g1", "g2", "g3"]
    with pytest.raises(InvalidInput, match=r"rows 0\.\.1 were rejected: UNIQUE"):
        store.add_items(version_id, [NewItem(id="same"), NewItem(id="same")])
    with pytest.raises(InvalidInput, match="either data or blob"):
        store.add_items(version_id, [NewItem(data=b"x", blob=BlobRef.of(b"x"))])
    with pytest.raises(InvalidInput, match="row 0: annotation"):
        store.add_items(version_id, [NewItem(annotations=[(cats.id, train.id, "")])])  # the item is in no split
    with pytest.raises(NotFound, match="unknown label 'nolabel'"):
        store.add_items(version_id, [NewItem(split_ids=[train.id], annotations=[("nolabel", train.id, "")])])
    assert store.count_items(version_id) == 4


def test_a_split_deleted_during_a_bulk_load_waits_for_it_and_leaves_no_dangling_rows(store: Store):
    """add_items checks splits once and then writes without SQLite's foreign-key checks:
    a delete from another thread must wait until the load is done, not slip in between its batches."""
    ds = store.create_dataset("bulk", "images")
    version_id = ds.versions[0].id or ""
    split = store.create_split(version_id, "train")
    reached, go = threading.Event(), threading.Event()

    def rows():
        yield NewItem(name="first", split_ids=[split.id or ""], data=b"1")
        reached.set()
        assert go.wait(30)
        yield NewItem(name="second", split_ids=[split.id or ""], data=b"2")

    loading = threading.Thread(target=store.add_items, args=(version_id, rows()), kwargs={"batch": 1})
    loading.start()
    assert reached.wait(30)
    deleting = threading.Thread(target=store.delete_split, args=(version_id, split.id))
    deleting.start()
    deleting.join(2)  # the delete may run now only if nothing holds it off
    go.set()
    loading.join(30)
    deleting.join(30)
    dangling = sql(store, "SELECT count(*) FROM item_splits WHERE split_id NOT IN (SELECT id FROM splits)")[0]
    assert dangling == 0
    assert store.count_items(version_id) == 2 and store.splits(version_id) == []


def test_a_batch_of_add_items_ends_once_its_texts_reach_64_mib(store: Store):
    """Ten thousand rows of 16 MiB texts must not be one batch in memory: a batch ends at 64 MiB of text,
    which shows as the earlier batch staying when a later row is rejected."""
    ds = store.create_dataset("long texts", "text")
    version_id = ds.versions[0].id or ""
    text = "x" * (40 << 20)
    rows = [NewItem(name="a", text=text), NewItem(name="b", text=text), NewItem(name="bad", split_ids=["nosplit"])]
    with pytest.raises(NotFound, match="unknown split 'nosplit'"):
        store.add_items(version_id, rows)
    assert sorted(i.name for i in store.list_items(version_id, page_size=10)) == ["a", "b"]

