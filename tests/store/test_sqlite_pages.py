"""The SQLite back end's export read path: iter_pages order, ranges, pages and snapshots."""

from __future__ import annotations

import threading

import pytest

from engine.errors import InvalidInput, NotFound
from engine.store import (
    DB_NAME,
    PALETTE,
    BlobFile,
    NewItem,
    PageContent,
    Store,
)
from engine.store.sqlite.db import connect


def flatten(pages):
    return [(item.id, item.split.name if item.split else None) for page in pages for item in page]


# -- the export read path -------------------------------------------------------


@pytest.fixture()
def populated(store: Store, images):
    """Items in every arrangement: two splits, one split, none; with and without blobs."""
    version_id, (train, valid, test), (cats, dogs) = images
    made = {}
    made["both"] = store.create_item(
        version_id, name="both", extension="png", split_ids=[train.id, valid.id], blob=store.put_blob(b"both-bytes")
    )
    store.annotate(made["both"].id, train.id, cats.id)
    store.annotate(made["both"].id, valid.id, dogs.id)
    store.annotate(made["both"].id, valid.id, cats.id)
    made["anon"] = store.create_item(version_id, name=None, extension=None, split_ids=[train.id])
    made["valid"] = store.create_item(version_id, name="v", split_ids=[valid.id], blob=store.put_blob(b"v" * 70_000))
    made["loose1"] = store.create_item(version_id, name="loose1", text="t1")
    made["loose2"] = store.create_item(version_id, name="loose2")
    made["test"] = store.create_item(version_id, name="t", split_ids=[test.id])
    return version_id, made


def test_iter_pages_order_is_split_then_item_id_then_unsplit(store: Store, populated):
    version_id, made = populated
    pages = store.iter_pages(version_id, None, content=PageContent.NONE, include_unsplit=True)
    ids = {v.id: k for k, v in made.items()}
    assert [(ids[i], s) for i, s in flatten(pages)] == [
        ("both", "train"),
        ("anon", "train"),
        ("both", "valid"),
        ("valid", "valid"),
        ("test", "test"),
        ("loose1", None),
        ("loose2", None),
    ]


def test_an_item_in_two_splits_occurs_twice_with_per_split_annotations(store: Store, populated):
    version_id, made = populated
    items = [i for page in store.iter_pages(version_id, None, content=PageContent.BYTES, include_unsplit=False) for i in page]
    both = [i for i in items if i.id == made["both"].id]
    assert [(i.split.name, [a.label.name for a in i.annotations]) for i in both] == [
        ("train", ["cats"]),
        ("valid", ["dogs", "cats"]),
    ]
    assert all(i.content == b"both-bytes" for i in both)
    assert both[1].annotations[0].label.color == PALETTE[1]


def test_export_item_fields_and_content_kinds(store: Store, populated):
    version_id, made = populated
    items = {
        (i.id, i.split.name if i.split else None): i
        for page in store.iter_pages(version_id, None, content=PageContent.BYTES, include_unsplit=True)
        for i in page
    }
    anon = items[(made["anon"].id, "train")]
    assert (anon.name, anon.extension, anon.text, anon.content, anon.annotations) == ("", "", "", None, [])
    big = items[(made["valid"].id, "valid")].content
    assert isinstance(big, BlobFile) and big.read() == b"v" * 70_000 and big.item_id == made["valid"].id
    loose = items[(made["loose1"].id, None)]
    assert (loose.split, loose.text) == (None, "t1")
    without = [
        i.content for p in store.iter_pages(version_id, None, content=PageContent.NONE, include_unsplit=True) for i in p
    ]
    assert without == [None] * 7


def test_iter_pages_occurrence_ranges_cut_the_same_order(store: Store, populated):
    """A shard's range (start..stop) is exactly that slice of the whole order,
    across split boundaries, items in two splits and the unsplit tail."""
    version_id, _ = populated
    whole = flatten(store.iter_pages(version_id, None, content=PageContent.NONE, include_unsplit=True))
    assert len(whole) == store.count_occurrences(version_id) == 7
    for start in range(len(whole) + 2):
        for stop in sorted({start, start + 1, start + 3, max(start, len(whole)), len(whole) + 4}) + [None]:
            for page_size in (1, 2, 1000):
                pages = store.iter_pages(
                    version_id, None, content=PageContent.NONE, include_unsplit=True, page_size=page_size,
                    start=start, stop=stop,
                )
                assert flatten(pages) == whole[start:stop], (start, stop, page_size)
    with pytest.raises(InvalidInput, match="invalid occurrence range"):
        store.iter_pages(version_id, content=PageContent.NONE, start=3, stop=2)


def test_iter_pages_for_chosen_splits_and_unknown_split(store: Store, populated):
    version_id, _ = populated
    valid, train = store.resolve_split(version_id, "valid"), store.resolve_split(version_id, "train")
    got = flatten(store.iter_pages(version_id, [valid.id, train.id], content=PageContent.NONE, include_unsplit=False))
    assert [s for _, s in got] == ["valid", "valid", "train", "train"]
    with pytest.raises(NotFound, match=r"unknown split 'zzz'.*valid"):
        store.iter_pages(version_id, ["zzz"], content=PageContent.NONE, include_unsplit=False)  # raised before iterating
    with pytest.raises(InvalidInput, match="page_size"):
        store.iter_pages(version_id, None, content=PageContent.NONE, include_unsplit=False, page_size=0)


def test_keyset_pages_give_the_same_sequence_for_any_page_size(store: Store, images):
    version_id, (train, valid, test), (cats, dogs) = images
    rows = []
    for i in range(25):
        splits = [[train.id], [valid.id], [train.id, test.id], []][i % 4]
        anns = [(cats.id if i % 3 else dogs.id, s, "0.5 0.5 0.1 0.1") for s in splits]
        rows.append(NewItem(name=f"n{i}", extension="jpg", split_ids=splits, data=bytes([i]) * 10, annotations=anns))
    assert store.add_items(version_id, rows, batch=7) == 25

    def run(size: int):
        pages = list(store.iter_pages(version_id, None, content=PageContent.BYTES, include_unsplit=True, page_size=size))
        return pages, [(i.id, i.split and i.split.id, i.content, i.annotations) for p in pages for i in p]

    small_pages, small = run(2)
    big_pages, big = run(1000)
    assert small == big and len(small) == 25 + 6  # six items are in two splits
    # train 13, valid 6, test 6, unsplit 6: a page never spans two runs
    assert [len(p) for p in small_pages] == [2] * 6 + [1] + [2] * 9
    assert [len(p) for p in big_pages] == [13, 6, 6, 6]


def test_reader_reads_one_snapshot_while_the_writer_goes_on(store: Store, images):
    version_id, (train, _, _), _ = images
    store.add_items(version_id, [NewItem(name=f"a{i}", split_ids=[train.id]) for i in range(10)])
    with store.reader() as reader:
        pages = reader.iter_pages(version_id, None, content=PageContent.NONE, include_unsplit=False, page_size=3)
        first = next(pages)
        done = threading.Event()

        def write():
            store.add_items(version_id, [NewItem(name=f"b{i}", split_ids=[train.id]) for i in range(10)])
            done.set()

        threading.Thread(target=write).start()
        assert done.wait(10)
        rest = [i for page in pages for i in page]
        assert len(first) + len(rest) == 10
        assert reader.count_items(version_id) == 20
        with pytest.raises(Exception, match=r"readonly|read-only|query_only"):
            connect(store.root / DB_NAME, read_only=True).execute("DELETE FROM items")  # how a reader connects


