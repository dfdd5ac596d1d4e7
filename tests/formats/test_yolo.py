"""YOLO: flat YOLO v4 layout per spec/export-datasets.txt."""

from __future__ import annotations

import json

import pytest
from formats_support import MemoryBlob, ann, item, label, make_ctx, render, render_entries, split

from engine.errors import InvalidInput
from engine.spool import SpillingClaims
from formats.boxes import num as _num
from formats.yolo import YoloFormat

CAR = label("car", color="#36dfd4")
PERSON = label("person", color="#f0699e")
TRAIN, VALID, TEST = split("train"), split("valid"), split("test")


def ctx(**kw):
    kw.setdefault("labels", [CAR, PERSON])
    kw.setdefault("splits", [TRAIN, VALID, TEST])
    return make_ctx(content_type="images", version_id="ver-9", **kw)


def test_surface():
    assert YoloFormat.name == "yolo"
    assert YoloFormat.content_types == {"images"}
    assert YoloFormat.needs_content(ctx().dataset) is True


def test_spec_layout_exact_bytes():
    items = [
        item(
            "1",
            "1",
            "jpg",
            split=TRAIN,
            content=b"img1",
            annotations=[ann(PERSON, "0.5 0.5 0.25 0.125"), ann(CAR, "0.1 0.2 0.3 0.4")],
        ),
        item("3", "3", "jpg", split=TRAIN, content=MemoryBlob(b"img3" * 5)),
        item("4", "", "png", split=VALID, content=b"img4", annotations=[ann(CAR, "1 0 1.0 0.000")]),
    ]
    files = render(YoloFormat, ctx(), items)
    assert files == {
        "1.jpg": b"img1",
        "1.txt": b"1 0.5 0.5 0.25 0.125\n0 0.1 0.2 0.3 0.4\n",
        "3.jpg": b"img3" * 5,
        "3.txt": b"",
        "4.png": b"img4",
        "4.txt": b"0 1 0 1 0\n",
        "train.txt": b"1.jpg\n3.jpg\n",
        "valid.txt": b"4.png\n",
        "test.txt": b"",
        "ver-9.names": b"car\nperson\n",
        "config.json": b'{"colors":{"car":"#36dfd4","person":"#f0699e"}}',
    }
    assert json.loads(files["config.json"]) == {"colors": {"car": "#36dfd4", "person": "#f0699e"}}


def test_entry_order_image_then_annotations_then_lists_names_config():
    paths = [
        e.path for e in render_entries(YoloFormat, ctx(), [item("1", "a", "jpg", split=TRAIN, content=b"")])
    ]
    assert paths == ["a.jpg", "a.txt", "train.txt", "valid.txt", "test.txt", "ver-9.names", "config.json"]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.5, "0.5"),
        (1.0, "1"),
        (0.0, "0"),
        (-0.0, "0"),
        (1e-05, "0.00001"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1 / 3, "0.3333333333333333"),
        (2.5e-7, "0.00000025"),
    ],
)
def test_number_format_is_exact_and_positional(value, text):
    assert _num(value) == text
    assert float(text) == value


def test_coordinates_are_normalised_and_exact():
    items = [
        item(
            "1",
            "a",
            "jpg",
            split=TRAIN,
            content=b"",
            annotations=[
                ann(CAR, "  .5\t5e-1 0.333333333333333314829616256247390992939472198486328125 1e-5 ")
            ],
        )
    ]
    line = render(YoloFormat, ctx(), items)["a.txt"].decode()
    assert line == "0 0.5 0.5 0.3333333333333333 0.00001\n"


@pytest.mark.parametrize(
    "coordinates", ["0.5 0.5 0.5", "a b c d", "0.5 0.5 0.5 1.5", "nan 0 0 0", "1 2 3 4 5"]
)
def test_bad_coordinates_name_the_item(coordinates):
    items = [item("item-77", "a", "jpg", split=TRAIN, content=b"", annotations=[ann(CAR, coordinates)])]
    with pytest.raises(InvalidInput, match="item-77"):
        render(YoloFormat, ctx(), items)


def test_unknown_label_is_invalid_input():
    ghost = label("ghost")
    with pytest.raises(InvalidInput, match=r"item 'i'.*ghost"):
        render(
            YoloFormat,
            ctx(),
            [item("i", "a", "jpg", split=TRAIN, content=b"", annotations=[ann(ghost, "0 0 0 0")])],
        )


def test_names_file_one_line_per_label_even_with_line_breaks():
    labels = [
        label("a\nb", id="1"),
        label("c\r\nd", id="2"),
        label("e\u2028f", id="3"),
        label("", id="4"),
        label("a\nb", id="5"),
    ]
    files = render(YoloFormat, ctx(labels=labels), [])
    names = files["ver-9.names"].decode()
    assert names == "a b\nc  d\ne f\n\na b\n"
    assert len(names.splitlines()) == len(labels)
    # Duplicate names share one colours key; the first colour wins.
    labels[4] = label("a\nb", id="5", color="#000000")
    assert (
        json.loads(render(YoloFormat, ctx(labels=labels), [])["config.json"])["colors"]["a\nb"] == "#123456"
    )


def test_item_in_two_splits_stored_once_listed_twice():
    items = [
        item("1", "a", "jpg", split=TRAIN, content=b"A", annotations=[ann(CAR, "0.5 0.5 0.1 0.1")]),
        item("2", "b", "jpg", split=TRAIN, content=b"B"),
        item("1", "a", "jpg", split=VALID, content=b"A", annotations=[ann(PERSON, "0.1 0.1 0.1 0.1")]),
        item("1", "a", "jpg", split=TEST, content=b"A"),
    ]
    files = render(YoloFormat, ctx(), items)
    assert files["a.jpg"] == b"A"
    assert files["a.txt"] == b"0 0.5 0.5 0.1 0.1\n"  # first occurrence's boxes
    assert files["train.txt"] == b"a.jpg\nb.jpg\n"
    assert files["valid.txt"] == b"a.jpg\n"
    assert files["test.txt"] == b"a.jpg\n"


@pytest.mark.parametrize("claims", ["memory", "spilling"])
def test_renamed_item_in_several_splits_keeps_its_renamed_path(claims):
    splits = [split(f"s{i}") for i in range(4)]
    context = ctx(splits=splits)
    if claims == "spilling":
        context.names = SpillingClaims(memory_limit=3)
    items = [
        item("x", "cat", "jpg", split=splits[0], content=b"X"),
        item("y", "cat", "jpg", split=splits[0], content=b"Y"),  # -> cat~y.jpg
        item("q", "cat~z", "jpg", split=splits[0], content=b"Q"),  # steals z's first fallback
        item("z", "cat", "jpg", split=splits[0], content=b"Z"),  # -> cat~z~2.jpg
        item("x", "cat", "jpg", split=splits[1], content=b"X"),
        item("y", "cat", "jpg", split=splits[1], content=b"Y"),
        item("z", "cat", "jpg", split=splits[1], content=b"Z"),
        item("y", "cat", "jpg", split=splits[2], content=b"Y"),
        item("z", "cat", "jpg", split=splits[2], content=b"Z"),
        item("x", "cat", "jpg", split=splits[3], content=b"X"),
        item("y", "cat", "jpg", split=splits[3], content=b"Y"),
        item("z", "cat", "jpg", split=splits[3], content=b"Z"),
        item("w", "cat", "jpg", split=None, content=b"W"),
    ]
    files = render(YoloFormat, context, items)
    images = {p: d for p, d in files.items() if p.endswith(".jpg")}
    assert images == {
        "cat.jpg": b"X",
        "cat~y.jpg": b"Y",
        "cat~z.jpg": b"Q",
        "cat~z~2.jpg": b"Z",
        "cat~w.jpg": b"W",
    }
    assert files["s0.txt"] == b"cat.jpg\ncat~y.jpg\ncat~z.jpg\ncat~z~2.jpg\n"
    assert files["s1.txt"] == b"cat.jpg\ncat~y.jpg\ncat~z~2.jpg\n"
    assert files["s2.txt"] == b"cat~y.jpg\ncat~z~2.jpg\n"
    assert files["s3.txt"] == b"cat.jpg\ncat~y.jpg\ncat~z~2.jpg\n"
    # Every listed file exists.
    for name in ("s0.txt", "s1.txt", "s2.txt", "s3.txt"):
        for line in files[name].decode().splitlines():
            assert line in files


def test_annotation_files_never_collide():
    items = [
        item("1", "cat", "jpg", split=TRAIN, content=b"1", annotations=[ann(CAR, "0 0 0 0")]),
        item("2", "cat", "png", split=TRAIN, content=b"2"),  # cat.txt is taken by item 1
        item("3", "CAT", "", split=TRAIN, content=b"3"),  # extensionless: CAT + CAT.txt
        item("4", "train", "png", split=TRAIN, content=b"4"),  # train.txt is the split list
        item("5", "notes.txt", "", split=TRAIN, content=b"5"),  # an "image" ending in .txt
        item("6", "config", "json", split=TRAIN, content=b"6"),
    ]
    files = render(YoloFormat, ctx(), items)  # render asserts no duplicates
    assert files["cat.jpg"] == b"1" and files["cat.txt"] == b"0 0 0 0 0\n"
    assert files["cat~2.png"] == b"2" and files["cat~2.txt"] == b""
    assert files["CAT~3"] == b"3" and files["CAT~3.txt"] == b""
    assert files["train~4.png"] == b"4" and files["train~4.txt"] == b""
    assert files["notes.txt"] == b"5" and files["notes.txt.txt"] == b""
    assert files["config~6.json"] == b"6"
    assert files["train.txt"] == b"cat.jpg\ncat~2.png\nCAT~3\ntrain~4.png\nnotes.txt\nconfig~6.json\n"
    assert files["config.json"].startswith(b'{"colors"')


def test_hostile_names_and_items_in_no_split():
    items = [
        item("1", "../../evil", "jpg", split=TRAIN, content=b"1"),
        item("2", "a/b\x00c", "png", split=None, content=b"2"),
        item("3", 'x<>:"|?*\x1f', "jpg", split=None, content=None),
        item("4", "é" * 300, "jpeg", split=None, content=b"4"),
    ]
    files = render(YoloFormat, ctx(), items)
    assert files["train.txt"] == b".._.._evil.jpg\n"
    assert files["a_b_c.png"] == b"2" and files["a_b_c.txt"] == b""
    assert files["x________.jpg"] == b""
    long_image = next(p for p in files if p.endswith(".jpeg"))
    assert len(long_image.encode()) <= 200 and long_image[:-5] + ".txt" in files
    assert files["valid.txt"] == b"" and files["test.txt"] == b""


def test_colliding_split_names_and_version_id_made_safe():
    a, b = split("a/b", id="s1"), split("A_B", id="s2")
    files = render(
        YoloFormat,
        make_ctx(labels=[CAR], splits=[a, b], version_id="../v"),
        [item("1", "p", "jpg", split=b, content=b"")],
    )
    assert files["a_b.txt"] == b""
    assert files["A_B~s2.txt"] == b"p.jpg\n"
    assert files[".._v.names"] == b"car\n"


def test_image_level_labels_are_left_out_and_counted():
    """A classification annotation is not a box: the image and its boxes are written, the label is counted."""
    dog = label("dog", color="#000000")
    items = [
        item("i1", "a", "jpg", split=TRAIN, content=b"A", annotations=[ann(CAR, ""), ann(CAR, "0.5 0.5 0.2 0.2")]),
        item("i2", "b", "jpg", split=TRAIN, content=b"B", annotations=[ann(dog, " ")]),
    ]
    fmt_ctx = make_ctx(content_type="images", version_id="v1", labels=[CAR, dog], splits=[TRAIN])
    fmt = YoloFormat(fmt_ctx)
    files = {e.path: e.data for it in items for e in fmt.entries(it)}
    assert files == {"a.jpg": b"A", "a.txt": b"0 0.5 0.5 0.2 0.2\n", "b.jpg": b"B", "b.txt": b""}
    assert (fmt.image_labels_left_out, fmt.boxes_written) == (2, 1)
