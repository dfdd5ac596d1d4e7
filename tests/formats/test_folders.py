"""FOLDERS: ``<split>/<label>/<file>`` per spec/export-datasets.txt."""

from __future__ import annotations

from formats.base import Entry
from formats.folders import FoldersFormat
from formats_support import (
    MemoryBlob,
    ann,
    item,
    label,
    make_ctx,
    render,
    render_entries,
    split,
)

CATS, DOGS = label("cats"), label("dogs")
TRAIN, VALID, TEST = split("train"), split("valid"), split("test")


def images_ctx(**kw):
    kw.setdefault("labels", [CATS, DOGS])
    kw.setdefault("splits", [TRAIN, VALID, TEST])
    return make_ctx(content_type="images", **kw)


def test_needs_content_only_for_images():
    assert FoldersFormat.needs_content(make_ctx(content_type="images").dataset) is True
    assert FoldersFormat.needs_content(make_ctx(content_type="text").dataset) is False
    assert FoldersFormat.content_types == {"images", "text"}
    assert FoldersFormat.name == "folders"


def test_spec_image_layout():
    items = [
        item("1", "cat1", "jpg", split=TRAIN, annotations=[ann(CATS)], content=b"c1"),
        item("2", "cat12", "jpeg", split=TRAIN, annotations=[ann(CATS)], content=b"c12"),
        item("3", "dog2", "jpg", split=TRAIN, annotations=[ann(DOGS)], content=b"d2"),
        item("4", "cat17", "jpeg", split=TRAIN, content=b"c17"),
        item("5", "cat4", "jpg", split=VALID, annotations=[ann(CATS)], content=b"c4"),
        item("6", "dog81", "jpg", split=TEST, annotations=[ann(DOGS)], content=MemoryBlob(b"big" * 10)),
    ]
    assert render(FoldersFormat, images_ctx(), items) == {
        "train/cats/cat1.jpg": b"c1",
        "train/cats/cat12.jpeg": b"c12",
        "train/dogs/dog2.jpg": b"d2",
        "train/cat17.jpeg": b"c17",
        "valid/cats/cat4.jpg": b"c4",
        "test/dogs/dog81.jpg": b"big" * 10,
    }


def test_blob_is_passed_through_unchanged():
    blob = MemoryBlob(b"x" * 100)
    ctx = images_ctx()
    entries = render_entries(
        FoldersFormat,
        ctx,
        [item("1", "a", "png", split=TRAIN, annotations=[ann(CATS), ann(DOGS)], content=blob)],
    )
    assert [e.path for e in entries] == ["train/cats/a.png", "train/dogs/a.png"]
    assert all(e.data is blob for e in entries)


def test_spec_text_layout_uses_text_and_txt_extension():
    pos, neg = label("pos"), label("neg")
    train, unsup = split("train"), split("unsup")
    ctx = make_ctx(content_type="text", labels=[pos, neg], splits=[train, unsup])
    items = [
        item("1", "1", "", text="great film", split=train, annotations=[ann(pos)]),
        item("2", "2", "csv", text="awful", split=train, annotations=[ann(neg)]),
        item("13", "", "", text="héllo 😀", split=unsup),
        item("14", "14.txt", "txt", text="", split=unsup),
    ]
    assert render(FoldersFormat, ctx, items) == {
        "train/pos/1.txt": b"great film",
        "train/neg/2.txt": b"awful",
        "unsup/13.txt": "héllo 😀".encode(),
        "unsup/14.txt": b"",
    }


def test_unnamed_item_uses_id_and_name_with_extension_not_doubled():
    items = [
        item("abc", "", "jpg", split=TRAIN, content=b"1"),
        item("def", "photo.JPG", "jpg", split=TRAIN, content=b"2"),
        item("ghi", "noext", "", split=TRAIN, content=b"3"),
    ]
    assert sorted(render(FoldersFormat, images_ctx(), items)) == [
        "train/abc.jpg",
        "train/noext",
        "train/photo.JPG",
    ]


def test_hostile_names_stay_inside_their_folder():
    names = ["../../etc/passwd", "a/b", "nul\x00byte", "ctl\x01\x1f\x7f", 'win<>:"|?*', "..", " . ", "con."]
    items = [
        item(f"i{n}", nm, "png", split=TRAIN, annotations=[ann(CATS)], content=b"x")
        for n, nm in enumerate(names)
    ]
    files = render(FoldersFormat, images_ctx(), items)
    assert len(files) == len(names)
    for path in files:
        parts = path.split("/")
        assert parts[:2] == ["train", "cats"] and len(parts) == 3, path
        assert parts[2] not in ("", ".", "..")
        assert not any(ord(ch) < 32 or ch in '\\<>:"|?*\x7f' for ch in path), path
    assert "train/cats/.._.._etc_passwd.png" in files
    assert "train/cats/a_b.png" in files
    assert "train/cats/nul_byte.png" in files


def test_very_long_name_is_clipped_with_extension_kept():
    files = render(FoldersFormat, images_ctx(), [item("1", "é" * 300, "jpeg", split=TRAIN, content=b"x")])
    (path,) = files
    leaf = path.split("/")[1]
    assert leaf.endswith(".jpeg") and len(leaf.encode()) <= 200


def test_same_name_and_case_only_difference_get_item_id():
    items = [
        item("a", "cat", "jpg", split=TRAIN, annotations=[ann(CATS)], content=b"1"),
        item("b", "cat", "jpg", split=TRAIN, annotations=[ann(CATS)], content=b"2"),
        item("c", "CAT", "JPG", split=TRAIN, annotations=[ann(CATS)], content=b"3"),
        item("d", "cat", "jpg", split=VALID, annotations=[ann(CATS)], content=b"4"),
    ]
    assert render(FoldersFormat, images_ctx(), items) == {
        "train/cats/cat.jpg": b"1",
        "train/cats/cat~b.jpg": b"2",
        "train/cats/CAT~c.JPG": b"3",
        "valid/cats/cat.jpg": b"4",
    }


def test_multi_label_copies_in_label_order_and_duplicates_once():
    items = [item("1", "x", "png", split=TRAIN, annotations=[ann(DOGS), ann(CATS), ann(DOGS)], content=b"x")]
    entries = render_entries(FoldersFormat, images_ctx(multi_label=True), items)
    assert [e.path for e in entries] == ["train/cats/x.png", "train/dogs/x.png"]


def test_item_in_two_splits_and_in_no_split():
    items = [
        item("1", "both", "png", split=TRAIN, annotations=[ann(CATS)], content=b"b"),
        item("1", "both", "png", split=VALID, annotations=[ann(DOGS)], content=b"b"),
        item("2", "loose", "png", split=None, annotations=[ann(DOGS)], content=b"l"),
        item("3", "bare", "png", split=None, content=b"r"),
    ]
    assert render(FoldersFormat, images_ctx(), items) == {
        "train/cats/both.png": b"b",
        "valid/dogs/both.png": b"b",
        "dogs/loose.png": b"l",
        "bare.png": b"r",
    }


def test_label_and_split_names_made_safe_and_unique():
    slash, under, upper = label("a/b", id="l1"), label("a_b", id="l2"), label("Cats", id="l3")
    lower = label("cats", id="l4")
    dot_split, weird_split = split("..", id="s1"), split("tr/ain", id="s2")
    ctx = make_ctx(labels=[slash, under, upper, lower], splits=[dot_split, weird_split])
    items = [
        item("1", "p", "png", split=dot_split, annotations=[ann(slash)], content=b"1"),
        item("2", "p", "png", split=dot_split, annotations=[ann(under)], content=b"2"),
        item("3", "p", "png", split=weird_split, annotations=[ann(upper)], content=b"3"),
        item("4", "p", "png", split=weird_split, annotations=[ann(lower)], content=b"4"),
    ]
    assert render(FoldersFormat, ctx, items) == {
        "_/a_b/p.png": b"1",
        "_/a_b~l2/p.png": b"2",
        "tr_ain/Cats/p.png": b"3",
        "tr_ain/cats~l4/p.png": b"4",
    }


def test_file_never_shadows_a_folder():
    # An unlabelled item named like a label folder, a root item named like a split.
    items = [
        item("1", "cats", "", split=TRAIN, content=b"1"),
        item("2", "train", "", split=None, content=b"2"),
    ]
    files = render(FoldersFormat, images_ctx(), items)  # render checks file/folder clashes
    assert files == {"train/cats~1": b"1", "train~2": b"2"}


def test_root_label_folder_colliding_with_split_folder_is_renamed():
    train_label = label("train", id="lt")
    ctx = make_ctx(labels=[train_label], splits=[TRAIN])
    items = [
        item("1", "a", "png", split=TRAIN, content=b"1"),
        item("2", "b", "png", split=None, annotations=[ann(train_label)], content=b"2"),
    ]
    assert render(FoldersFormat, ctx, items) == {"train/a.png": b"1", "train~lt/b.png": b"2"}


def test_empty_splits_and_labels_write_nothing_and_missing_content_is_empty_file():
    files = render(FoldersFormat, images_ctx(), [item("1", "nocontent", "png", split=TEST)])
    assert files == {"test/nocontent.png": b""}
    assert render(FoldersFormat, images_ctx(), []) == {}


def test_split_and_label_not_in_context_are_handled():
    extra_split, extra_label = split("extra"), label("extra-label")
    files = render(
        FoldersFormat,
        images_ctx(),
        [item("1", "a", "png", split=extra_split, annotations=[ann(extra_label)], content=b"1")],
    )
    assert files == {"extra/extra-label/a.png": b"1"}


def test_entries_are_entry_tuples():
    fmt = FoldersFormat(images_ctx())
    (entry,) = fmt.entries(item("1", "a", "png", split=TRAIN, content=b"1"))
    assert isinstance(entry, Entry)
    assert fmt.finish() == []


def _colliding_items(count: int) -> list:
    """Items whose names collide often: repeats, case-only differences, names equal to a rename."""
    dogs_only = label("only-here", id="late")  # not in the context: claimed on first sight
    names = ["cat", "CAT", "cat~b3", "Cat~B3", "dog", "cat~b3~2", "x"]
    items = []
    for n in range(count):
        choices = [[], [ann(CATS)], [ann(DOGS)], [ann(DOGS), ann(CATS)], [ann(dogs_only)]]
        annotations = choices[n % 5 if n > 40 else n % 3]
        split_of = [TRAIN, VALID, None][n % 3]
        name = names[n % len(names)]
        items.append(item(f"b{n % 7}", name, "jpg", split=split_of, annotations=annotations, content=b"%d" % n))
    return items


def test_entries_many_names_like_entries_with_many_collisions_after_spilling():
    """Runs of claims through a spilled SQLite table name every file as one claim at a time does."""
    from engine.spool import SpillingClaims

    items = _colliding_items(400)
    one_by_one = FoldersFormat(images_ctx(multi_label=True))
    expected = [tuple(entry) for it in items for entry in one_by_one.entries(it)]
    assert len({path.casefold() for path, _ in expected}) == len(expected)
    assert any("~" in path for path, _ in expected), "the names should collide"
    for batch in (1, 7, 64, 400):
        ctx = images_ctx(multi_label=True)
        claims = ctx.names = SpillingClaims(memory_limit=5)
        fmt = FoldersFormat(ctx)
        runs = [fmt.entries_many(items[start : start + batch]) for start in range(0, len(items), batch)]
        got = [tuple(entry) for run in runs for entry in run]
        assert claims._db is not None, "should have spilled"
        claims.close()
        assert got == expected, f"batches of {batch}"
