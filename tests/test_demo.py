"""The demo datasets: real content, consistent annotations, deterministic for a seed."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from engine.demo import DemoDataset, create_demo
from engine.errors import InvalidInput
from engine.store import PageContent, Store
from formats.coordinates import parse_box, parse_span


def build(root: Path, *, items: int = 24, seed: int = 0) -> tuple[Store, list[DemoDataset]]:
    store = Store.open(root)
    return store, create_demo(store, items=items, seed=seed)


@pytest.fixture()
def demo(tmp_path: Path):
    store, made = build(tmp_path / "a")
    yield store, {d.name: d for d in made}
    store.close()


def occurrences(store: Store, d: DemoDataset):
    pages = store.iter_pages(d.version_id, None, content=PageContent.BYTES, include_unsplit=True, page_size=7)
    return [item for page in pages for item in page]


def test_five_datasets_one_per_format(demo):
    store, made = demo
    assert [(d.name, d.content_type, d.format) for d in made.values()] == [
        ("pets", "images", "folders"),
        ("reviews", "text", "folders"),
        ("shapes", "images", "yolo"),
        ("iris-like", "tabular", "csv"),
        ("news", "ner", "spacy-ner"),
    ]
    assert [d.name for d in store.list_datasets()] == list(made)
    for d in made.values():
        assert store.count_items(d.version_id) == 24
        assert store.get_version(d.dataset_id, d.version_id).dataset_id == d.dataset_id


def test_pet_images_decode_and_cover_the_corner_cases(demo):
    store, made = demo
    items = occurrences(store, made["pets"])
    assert {i.split.name for i in items} == {"train", "valid", "test"}
    formats = set()
    for item in items:
        image = Image.open(io.BytesIO(item.content))
        image.load()
        assert image.size == (64, 64)
        formats.add((item.extension, image.format))
        assert len(item.annotations) <= 1  # single-label
    assert formats == {("jpg", "JPEG"), ("png", "PNG")}
    assert len({i.content for i in items}) == len(items)  # distinct per item
    assert any(i.name == "" for i in items) and any(not i.annotations for i in items)
    assert "chat de Zoë" in {i.name for i in items}
    assert {a.label.name for i in items for a in i.annotations} == {"cats", "dogs"}
    assert store.get_dataset(made["pets"].dataset_id).multi_label is False


def test_reviews_are_texts_and_unsup_is_unlabelled(demo):
    store, made = demo
    items = occurrences(store, made["reviews"])
    assert [s.name for s in store.splits(made["reviews"].version_id)] == ["train", "test", "unsup"]
    for item in items:
        assert item.extension == "txt" and item.content is None and item.text.startswith("The ")
        assert (item.split.name == "unsup") == (not item.annotations)


def test_shapes_boxes_sit_where_shapes_are_drawn(demo):
    store, made = demo
    items = occurrences(store, made["shapes"])
    counts = {len(i.annotations) for i in items}
    assert counts <= {0, 1, 2, 3} and 0 in counts and len(counts) > 2
    for item in items:
        image = Image.open(io.BytesIO(item.content)).convert("RGB")
        background = image.getpixel((0, 0))
        for ann in item.annotations:
            box = parse_box(ann.coordinates)
            centre = (int(box.cx * image.width), int(box.cy * image.height))
            pixel = image.getpixel(centre)
            # shapes are drawn in dark colours (< 120) on a pastel background (>= 150, minus grain)
            assert max(pixel) < 120, (item.name, ann.label.name, ann.coordinates, pixel, background)


def test_iris_rows_follow_the_version_config(demo):
    store, made = demo
    d = made["iris-like"]
    config = json.loads(store.get_version(d.dataset_id, d.version_id).config)
    columns = config["column_names"].split(config["csv_separator"])
    assert columns == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    for item in occurrences(store, d):
        values = [float(v) for v in item.text.split(",")]
        assert len(values) == 4 and all(v > 0 for v in values)
        assert [a.label.name for a in item.annotations] in (["setosa"], ["versicolor"], ["virginica"])


def test_news_spans_match_their_text_in_characters(demo):
    store, made = demo
    items = occurrences(store, made["news"])
    spans = 0
    for item in items:
        for ann in item.annotations:
            span = parse_span(ann.coordinates, item.text)
            entity = item.text[span.start : span.end]
            assert entity == entity.strip() and entity[0].isupper(), (item.text, ann.coordinates)
            spans += 1
    assert spans > len(items)
    texts = " ".join(i.text for i in items)
    assert any(ch in texts for ch in "ëŁłóźüøç") and "🙂" in texts
    assert {a.label.name for i in items for a in i.annotations} == {"PERSON", "ORG", "LOC"}


def view(store: Store, made: list[DemoDataset]):
    """Everything a user sees of the demo, without ids and timestamps."""
    out = []
    for d in made:
        for item in occurrences(store, d):
            split = item.split.name if item.split else None
            labels = [(a.label.name, a.label.color, a.coordinates) for a in item.annotations]
            out.append((d.name, item.name, item.extension, item.text, split, item.content, labels))
    return out


def test_same_seed_same_content_new_ids(tmp_path: Path):
    one, made_one = build(tmp_path / "one", items=12, seed=5)
    two, made_two = build(tmp_path / "two", items=12, seed=5)
    other, made_other = build(tmp_path / "other", items=12, seed=6)
    with one, two, other:
        assert view(one, made_one) == view(two, made_two)
        assert view(one, made_one) != view(other, made_other)
        assert not {d.dataset_id for d in made_one} & {d.dataset_id for d in made_two}


def test_items_must_be_positive(tmp_path: Path):
    with Store.open(tmp_path) as store:
        with pytest.raises(InvalidInput, match="items must be a positive integer, got 0"):
            create_demo(store, items=0)
        assert store.list_datasets() == []


def test_a_second_demo_is_refused_unless_forced(tmp_path: Path):
    with Store.open(tmp_path / "s") as store:
        first = create_demo(store, items=2)
        with pytest.raises(InvalidInput, match="already has the demo datasets pets, reviews, shapes, iris-like, news"):
            create_demo(store, items=2)
        assert len(store.list_datasets()) == 5
        second = create_demo(store, items=2, force=True)
        assert [d.name for d in second] == [d.name for d in first]
        assert len(store.list_datasets()) == 10


def test_progress_counts_every_item_of_every_dataset(tmp_path: Path):
    seen: list[tuple[str, int]] = []
    with Store.open(tmp_path / "s") as store:
        create_demo(store, items=3, progress=lambda name, made: seen.append((name, made)))
    assert seen[-1] == ("news", 15)
    assert [made for _, made in seen] == sorted(made for _, made in seen)
    assert {name for name, _ in seen} == {"pets", "reviews", "shapes", "iris-like", "news"}
    assert [made for name, made in seen if name == "reviews"] == [3, 4, 5, 6]

