"""The embedded store: creation and validation, blobs, and the export read path."""

from __future__ import annotations

import hashlib
import re
import threading
import time
import uuid
import zlib
from pathlib import Path

import pytest

from engine.blobs import INLINE_LIMIT, BlobFile, BlobInfo
from engine.errors import InvalidInput, MissingBlob, NotFound
from engine.ids import new_id, now_iso
from engine.store import PALETTE, NewItem, Store


@pytest.fixture()
def store(tmp_path: Path):
    with Store.open(tmp_path / "store") as opened:
        yield opened


@pytest.fixture()
def images(store: Store):
    """An image dataset with default splits and two labels."""
    ds = store.create_dataset("pets", "images", default_splits=True)
    version = ds.versions[0]
    train, valid, test = version.splits
    cats = store.create_label(version.id, "cats")
    dogs = store.create_label(version.id, "dogs")
    return version.id, (train, valid, test), (cats, dogs)


def flatten(pages):
    return [(item.id, item.split.name if item.split else None) for page in pages for item in page]


# -- ids ----------------------------------------------------------------------


def test_ids_are_uuid7_and_sort_in_creation_order():
    made = [new_id() for _ in range(20_000)]  # many share a millisecond
    assert made == sorted(made) and len(set(made)) == len(made)
    parsed = uuid.UUID(made[0])
    assert (parsed.version, parsed.variant, str(parsed)) == (7, uuid.RFC_4122, made[0])
    assert abs(int(made[-1][:8] + made[-1][9:13], 16) / 1000 - time.time()) < 60
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", now_iso())


# -- opening ------------------------------------------------------------------


def test_open_without_create_on_an_empty_folder_says_how_to_make_one(tmp_path: Path):
    with pytest.raises(NotFound, match=r"no store at .*dsexport demo --store"):
        Store.open(tmp_path / "nothing", create=False)
    assert not (tmp_path / "nothing").exists()


def test_a_file_that_is_not_a_store_is_a_clear_error(tmp_path: Path):
    (tmp_path / "store.sqlite3").write_bytes(b"this is not a database" * 100)
    with pytest.raises(InvalidInput, match="is not a usable dsexport store"):
        Store.open(tmp_path, create=False)


def test_reopen_keeps_data_and_settings(tmp_path: Path):
    with Store.open(tmp_path) as store:
        ds = store.create_dataset("d", "text")
        mode = store._one("PRAGMA journal_mode")[0]
        fks = store._one("PRAGMA foreign_keys")[0]
    assert (mode, fks) == ("wal", 1)
    with Store.open(tmp_path, create=False) as store:
        assert [d.id for d in store.list_datasets()] == [ds.id]
        assert store._one("PRAGMA user_version")[0] == 1


# -- creation and validation --------------------------------------------------


def test_create_dataset_makes_a_first_version_and_default_splits(store: Store):
    ds = store.create_dataset("pets", "images", default_splits=True, multi_label=True, description="d")
    assert ds.content_type == "images" and ds.multi_label and ds.default_splits
    assert [v.name for v in ds.versions] == ["v1"]
    assert [s.name for s in ds.versions[0].splits] == ["train", "valid", "test"]
    assert all(s.version_id == ds.versions[0].id for s in ds.versions[0].splits)
    plain = store.create_dataset("plain", "text")
    assert plain.versions[0].splits == []


def test_unknown_content_type_lists_the_valid_ones(store: Store):
    with pytest.raises(InvalidInput, match=r"'video'.*images, text, tabular, ner"):
        store.create_dataset("x", "video")


def test_unknown_ids_name_the_value_and_list_choices(store: Store, images):
    version_id, (train, _, _), _ = images
    ds_id = store.list_datasets()[0].id
    with pytest.raises(NotFound, match=rf"'nope'.*known datasets: {ds_id}"):
        store.get_dataset("nope")
    with pytest.raises(NotFound, match=rf"no version 'v9'.*v1 \({version_id}\)"):
        store.get_version(ds_id, "v9")
    with pytest.raises(NotFound, match=r"'other'.*valid splits: train, valid, test"):
        store.resolve_split(version_id, "other")
    with pytest.raises(NotFound, match=rf"unknown version 'bad'.*{version_id}"):
        store.create_label("bad", "x")
    item = store.create_item(version_id, name="a", split_ids=[train.id])
    with pytest.raises(NotFound, match=r"unknown label 'zebra'.*cats .*dogs"):
        store.annotate(item.id, train.id, "zebra")
    with pytest.raises(NotFound, match=r"unknown split 'nosplit'.*train"):
        store.create_item(version_id, split_ids=["nosplit"])
    with pytest.raises(NotFound, match=r"unknown item 'ghost'"):
        store.get_item("ghost")


def test_resolve_split_by_id_name_and_case(store: Store, images):
    version_id, (train, valid, _), _ = images
    assert store.resolve_split(version_id, valid.id) == valid
    assert store.resolve_split(version_id, "train") == train
    assert store.resolve_split(version_id, "TRAIN") == train


def test_label_order_is_index_then_creation_and_colours_follow_position(store: Store):
    version_id = store.create_dataset("d", "images").versions[0].id
    a = store.create_label(version_id, "a", index=2)
    b = store.create_label(version_id, "b", index=0)
    c = store.create_label(version_id, "c", index=0)
    d = store.create_label(version_id, "d")  # next free index: 3
    e = store.create_label(version_id, "e", color="#ABCDEF")
    assert [label.name for label in store.labels(version_id)] == ["b", "c", "a", "d", "e"]
    assert (d.index, e.index) == (3, 4)
    assert [x.color for x in (a, b, c, d)] == list(PALETTE[:4])
    assert e.color == "#abcdef"
    assert len(set(PALETTE)) == 20 and all(len(p) == 7 and p[0] == "#" for p in PALETTE)


@pytest.mark.parametrize("color", ["red", "#12345", "#1234567", "#gggggg", "123456"])
def test_bad_colour_is_rejected_by_name(store: Store, color: str):
    version_id = store.create_dataset("d", "images").versions[0].id
    with pytest.raises(InvalidInput, match=r"#rrggbb.*" + repr(color)):
        store.create_label(version_id, "x", color=color)


def test_duplicate_label_and_split_names_are_rejected(store: Store, images):
    version_id, _, _ = images
    with pytest.raises(InvalidInput, match=r"label 'cats' already exists.*cats, dogs"):
        store.create_label(version_id, "cats")
    with pytest.raises(InvalidInput, match=r"split 'train' already exists"):
        store.create_split(version_id, "train")
    assert [label.name for label in store.labels(version_id)] == ["cats", "dogs"]


def test_versions_and_config(store: Store):
    ds = store.create_dataset("iris", "tabular")
    second = store.create_version(ds.id)
    named = store.create_version(ds.id, "final", config='{"a": 1}')
    assert [v.name for v in store.get_dataset(ds.id).versions] == ["v1", "v2", "final"]
    assert named.config == '{"a": 1}' and named.dataset_id == ds.id
    store.update_version_config(second.id, '{"column_names": "a,b", "csv_separator": ","}')
    assert store.get_version(ds.id, second.id).config == '{"column_names": "a,b", "csv_separator": ","}'


def test_annotation_on_an_item_not_in_that_split_is_rejected(store: Store, images):
    version_id, (train, valid, _), (cats, _) = images
    item = store.create_item(version_id, name="a", split_ids=[train.id])
    with pytest.raises(InvalidInput, match=rf"item {item.id} is not in split 'valid'; its splits: train"):
        store.annotate(item.id, valid.id, cats.id)
    assert store.get_item(item.id).annotations == []


def test_labels_and_splits_of_another_version_are_unknown(store: Store, images):
    version_id, (train, _, _), _ = images
    other = store.create_dataset("other", "images", default_splits=True).versions[0]
    stranger = store.create_label(other.id, "cats")
    item = store.create_item(version_id, split_ids=[train.id])
    with pytest.raises(NotFound, match="unknown label"):
        store.annotate(item.id, train.id, stranger.id)
    with pytest.raises(NotFound, match="unknown split"):
        store.annotate(item.id, other.splits[0].id, stranger.id)


@pytest.mark.parametrize(
    ("kind", "good", "bad"),
    [
        ("images", ["", "0.5 0.5 0.2 0.2", " 0.1  0.2 0.3 0.4 "], ["0.5 0.5 0.2", "1.5 0.5 0.1 0.1", "a b c d"]),
        ("text", [""], ["0.5 0.5 0.2 0.2"]),
        ("tabular", [""], ["x"]),
        ("ner", ['{"start": 0, "end": 3}', "4 9"], ["", "3 2", "0 99", "zero three"]),
    ],
)
def test_coordinates_are_checked_by_content_type(store: Store, kind: str, good: list[str], bad: list[str]):
    version_id = store.create_dataset("d", kind).versions[0].id
    split = store.create_split(version_id, "train")
    label = store.create_label(version_id, "L")
    item = store.create_item(version_id, text="Zoë went to Łódź.", split_ids=[split.id])
    for coordinates in good:
        store.annotate(item.id, split.id, label.id, coordinates)
    for coordinates in bad:
        with pytest.raises(InvalidInput) as caught:
            store.annotate(item.id, split.id, label.id, coordinates)
        message = str(caught.value)
        assert repr(coordinates) in message or "runs past the text (17 characters)" in message, message
    assert len(store.get_item(item.id).annotations) == len(good)


def test_ner_spans_are_stored_canonically_in_characters(store: Store):
    version_id = store.create_dataset("news", "ner").versions[0].id
    split = store.create_split(version_id, "train")
    loc = store.create_label(version_id, "LOC")
    text = "Zoë went to Łódź."
    item = store.create_item(version_id, text=text, split_ids=[split.id])
    ann = store.annotate(item.id, split.id, loc.id, "12 16")
    assert ann.coordinates == '{"start": 12, "end": 16}'
    assert text[12:16] == "Łódź"
    assert store.get_item(item.id).annotations[0].coordinates == ann.coordinates


def test_get_item_has_splits_and_annotations(store: Store, images):
    version_id, (train, valid, _), (cats, dogs) = images
    item = store.create_item(version_id, name=None, extension=".png", split_ids=[valid.id, train.id])
    store.annotate(item.id, valid.id, dogs.id)
    store.annotate(item.id, train.id, cats.id)
    got = store.get_item(item.id)
    assert got.name is None and got.extension == "png"
    assert [s.name for s in got.splits] == ["train", "valid"]  # split creation order
    assert [(a.split_id, a.label_id) for a in got.annotations] == [(valid.id, dogs.id), (train.id, cats.id)]


def test_counts(store: Store, images):
    version_id, (train, valid, test), _ = images
    store.create_item(version_id, split_ids=[train.id, valid.id])
    store.create_item(version_id, split_ids=[train.id])
    store.create_item(version_id)
    assert store.count_items(version_id) == 3
    assert [store.count_items(version_id, s.id) for s in (train, valid, test)] == [2, 1, 0]
    assert store.count_occurrences(version_id, include_unsplit=False) == 3
    assert store.count_occurrences(version_id) == 4  # a whole-version export includes the unsplit item
    assert store.count_occurrences(version_id, [valid.id]) == 1
    assert store.count_occurrences(version_id, [valid.id], include_unsplit=True) == 2
    whole = [len(p) for p in store.iter_pages(version_id, with_content=False)]
    chosen = [len(p) for p in store.iter_pages(version_id, [valid.id], with_content=False)]
    assert (sum(whole), sum(chosen)) == (4, 1)


# -- blobs ----------------------------------------------------------------------


def test_small_blobs_are_inline_and_large_ones_files(store: Store):
    small = b"s" * (INLINE_LIMIT - 1)
    large = bytes(range(256)) * 400  # 100 KiB
    s_info, l_info = store.put_blob(small), store.put_blob(large)
    assert s_info == BlobInfo(hashlib.sha256(small).hexdigest(), len(small), zlib.crc32(small))
    assert l_info == BlobInfo(hashlib.sha256(large).hexdigest(), 102_400, zlib.crc32(large))
    path = store.blobs.path_for(l_info.sha256)
    assert path == store.root / "blobs" / l_info.sha256[:2] / l_info.sha256[2:4] / l_info.sha256
    assert path.read_bytes() == large
    assert not store.blobs.path_for(s_info.sha256).exists()
    rows = dict(store._all("SELECT sha256, data FROM blobs"))
    assert rows == {s_info.sha256: small, l_info.sha256: None}
    assert [p.name for p in (store.root / "blobs").rglob("*") if p.is_file()] == [l_info.sha256]  # no temp files


def test_blobs_are_deduplicated_and_a_lost_file_is_rewritten(store: Store):
    large = b"L" * 100_000
    first = store.put_blob(large)
    assert store.put_blob(large) == first
    assert store.put_blob_stream([large[:10], large[10:]]) == first
    assert store._one("SELECT count(*) FROM blobs")[0] == 1
    store.blobs.path_for(first.sha256).unlink()
    store.put_blob(large)
    assert store.blobs.path_for(first.sha256).read_bytes() == large


def test_put_blob_stream_stores_files_and_small_blobs(store: Store):
    chunk = bytes(range(256)) * 4096  # 1 MiB
    whole = b"".join(bytes([i]) + chunk[1:] for i in range(8))
    info = store.put_blob_stream(bytes([i]) + chunk[1:] for i in range(8))
    assert info == BlobInfo.of(whole)
    assert store.blobs.path_for(info.sha256).read_bytes() == whole
    assert not list((store.root / "blobs").glob(".spool-*"))
    small = store.put_blob_stream(iter([b"ab", b"", b"c"]))
    assert small == BlobInfo.of(b"abc")
    assert store._one("SELECT data FROM blobs WHERE sha256 = ?", (small.sha256,))[0] == b"abc"


def test_put_blob_stream_keeps_memory_flat(store: Store):
    import tracemalloc

    chunk = b"x" * (1 << 20)
    tracemalloc.start()
    try:
        info = store.put_blob_stream(chunk for _ in range(32))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.size == 32 << 20
    assert peak < 8 << 20, f"peak {peak} bytes for a 32 MiB stream"


def test_a_failed_stream_leaves_no_temp_file(store: Store):
    def broken():
        yield b"x" * INLINE_LIMIT
        raise OSError("source went away")

    with pytest.raises(OSError, match="went away"):
        store.put_blob_stream(broken())
    assert [p for p in (store.root / "blobs").rglob("*") if p.is_file()] == []


def test_blob_file_reads_checks_size_and_names_the_item(tmp_path: Path):
    path = tmp_path / "blob"
    path.write_bytes(b"0123456789")
    blob = BlobFile(path, 10, zlib.crc32(b"0123456789"), "ab" * 32, "item-1")
    assert blob.read() == b"0123456789" and b"".join(blob.chunks()) == b"0123456789"
    path.write_bytes(b"01234")
    with pytest.raises(MissingBlob, match=r"item item-1: blob (ab)+ is corrupt .*5 bytes, expected 10"):
        blob.read()
    path.write_bytes(b"0123456789ab")
    with pytest.raises(MissingBlob, match=r"corrupt .*longer than the recorded 10 bytes"):
        next(blob.chunks())  # nothing past the recorded size is handed out
    path.unlink()
    with pytest.raises(MissingBlob, match=rf"item item-1: blob (ab)+ is missing \({path}\)") as caught:
        blob.read()
    assert caught.value.item_id == "item-1"


def test_missing_file_blob_in_an_export_names_the_item(store: Store, images):
    version_id, (train, _, _), _ = images
    info = store.put_blob(b"z" * 100_000)
    item = store.create_item(version_id, name="big", extension="bin", split_ids=[train.id], blob=info)
    [[exported]] = list(store.iter_pages(version_id, [train.id], with_content=True, include_unsplit=False))
    assert isinstance(exported.content, BlobFile)
    assert (exported.content.size, exported.content.crc32) == (info.size, info.crc32)
    store.blobs.path_for(info.sha256).unlink()
    with pytest.raises(MissingBlob, match=item.id) as caught:
        exported.content.read()
    assert caught.value.item_id == item.id


def test_unknown_blob_is_rejected(store: Store, images):
    version_id, _, _ = images
    with pytest.raises(NotFound, match="unknown blob"):
        store.create_item(version_id, blob=BlobInfo("f" * 64, 1, 0))
    assert store.count_items(version_id) == 0


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
    pages = store.iter_pages(version_id, None, with_content=False, include_unsplit=True)
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
    items = [i for page in store.iter_pages(version_id, None, with_content=True, include_unsplit=False) for i in page]
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
        for page in store.iter_pages(version_id, None, with_content=True, include_unsplit=True)
        for i in page
    }
    anon = items[(made["anon"].id, "train")]
    assert (anon.name, anon.extension, anon.text, anon.content, anon.annotations) == ("", "", "", None, [])
    big = items[(made["valid"].id, "valid")].content
    assert isinstance(big, BlobFile) and big.read() == b"v" * 70_000 and big.item_id == made["valid"].id
    loose = items[(made["loose1"].id, None)]
    assert (loose.split, loose.text) == (None, "t1")
    without = [
        i.content for p in store.iter_pages(version_id, None, with_content=False, include_unsplit=True) for i in p
    ]
    assert without == [None] * 7


def test_iter_pages_occurrence_ranges_cut_the_same_order(store: Store, populated):
    """A shard's range (start..stop) is exactly that slice of the whole order,
    across split boundaries, items in two splits and the unsplit tail."""
    version_id, _ = populated
    whole = flatten(store.iter_pages(version_id, None, with_content=False, include_unsplit=True))
    assert len(whole) == store.count_occurrences(version_id) == 7
    for start in range(len(whole) + 2):
        for stop in sorted({start, start + 1, start + 3, max(start, len(whole)), len(whole) + 4}) + [None]:
            for page_size in (1, 2, 1000):
                pages = store.iter_pages(
                    version_id, None, with_content=False, include_unsplit=True, page_size=page_size,
                    start=start, stop=stop,
                )
                assert flatten(pages) == whole[start:stop], (start, stop, page_size)
    with pytest.raises(InvalidInput, match="invalid occurrence range"):
        store.iter_pages(version_id, with_content=False, start=3, stop=2)


def test_iter_pages_for_chosen_splits_and_unknown_split(store: Store, populated):
    version_id, _ = populated
    valid, train = store.resolve_split(version_id, "valid"), store.resolve_split(version_id, "train")
    got = flatten(store.iter_pages(version_id, [valid.id, train.id], with_content=False, include_unsplit=False))
    assert [s for _, s in got] == ["valid", "valid", "train", "train"]
    with pytest.raises(NotFound, match=r"unknown split 'zzz'.*valid"):
        store.iter_pages(version_id, ["zzz"], with_content=False, include_unsplit=False)  # raised before iterating
    with pytest.raises(InvalidInput, match="page_size"):
        store.iter_pages(version_id, None, with_content=False, include_unsplit=False, page_size=0)


def test_keyset_pages_give_the_same_sequence_for_any_page_size(store: Store, images):
    version_id, (train, valid, test), (cats, dogs) = images
    rows = []
    for i in range(25):
        splits = [[train.id], [valid.id], [train.id, test.id], []][i % 4]
        anns = [(cats.id if i % 3 else dogs.id, s, "0.5 0.5 0.1 0.1") for s in splits]
        rows.append(NewItem(name=f"n{i}", extension="jpg", split_ids=splits, data=bytes([i]) * 10, annotations=anns))
    assert store.add_items(version_id, rows, batch=7) == 25

    def run(size: int):
        pages = list(store.iter_pages(version_id, None, with_content=True, include_unsplit=True, page_size=size))
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
        pages = reader.iter_pages(version_id, None, with_content=False, include_unsplit=False, page_size=3)
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
            reader._db.execute("DELETE FROM items")


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
    assert store._one("SELECT count(*) FROM blobs")[0] == 2500
    item = store.get_item("item-00007")
    assert [s.name for s in item.splits] == ["train"] and item.annotations[0].label_id == cats.id
    [exported] = next(store.iter_pages(version_id, [train.id], with_content=True, include_unsplit=False, page_size=1))
    assert exported.id == "item-00001" and exported.content == (1).to_bytes(4, "big") * 256


def test_add_items_deduplicates_blobs_within_and_across_batches(store: Store, images):
    version_id, (train, _, _), _ = images
    known = store.put_blob(b"known")
    large = b"L" * (INLINE_LIMIT + 1)
    contents = [b"known", b"new", b"new", large, b"known", b"other", large]
    rows = [NewItem(name=f"n{i}", split_ids=[train.id], data=data) for i, data in enumerate(contents)]
    rows.append(NewItem(name="ref", split_ids=[train.id], blob=known))
    assert store.add_items(version_id, rows, batch=3) == 8
    assert store._one("SELECT count(*) FROM blobs")[0] == 4  # known, new, large, other
    assert store._one("SELECT data IS NULL FROM blobs WHERE sha256 = ?", (BlobInfo.of(large).sha256,))[0] == 1
    got = {
        i.name: i.content
        for p in store.iter_pages(version_id, None, with_content=True, include_unsplit=False)
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
        i.name for p in store.iter_pages(version_id, None, with_content=False, include_unsplit=True) for i in p
    ) == ["g0", "g1", "g2", "g3"]
    with pytest.raises(InvalidInput, match=r"rows 0\.\.1 were rejected: UNIQUE"):
        store.add_items(version_id, [NewItem(id="same"), NewItem(id="same")])
    with pytest.raises(InvalidInput, match="either data or blob"):
        store.add_items(version_id, [NewItem(data=b"x", blob=BlobInfo.of(b"x"))])
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
    dangling = store._one("SELECT count(*) FROM item_splits WHERE split_id NOT IN (SELECT id FROM splits)")[0]
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
