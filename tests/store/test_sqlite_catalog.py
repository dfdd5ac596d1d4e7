"""The SQLite back end: ids, creation and validation of datasets, versions, labels, splits and items."""

from __future__ import annotations

import re
import time
import uuid

import pytest

from engine.errors import InvalidInput, NotFound
from engine.ids import new_id, now_iso
from engine.store import (
    PALETTE,
    PageContent,
    Store,
)


# -- ids ----------------------------------------------------------------------


def test_ids_are_uuid7_and_sort_in_creation_order():
    made = [new_id() for _ in range(20_000)]  # many share a millisecond
    assert made == sorted(made) and len(set(made)) == len(made)
    parsed = uuid.UUID(made[0])
    assert (parsed.version, parsed.variant, str(parsed)) == (7, uuid.RFC_4122, made[0])
    assert abs(int(made[-1][:8] + made[-1][9:13], 16) / 1000 - time.time()) < 60
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", now_iso())


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
    whole = [len(p) for p in store.iter_pages(version_id, content=PageContent.NONE)]
    chosen = [len(p) for p in store.iter_pages(version_id, [valid.id], content=PageContent.NONE)]
    assert (sum(whole), sum(chosen)) == (4, 1)


