"""SPACY_NER: ``<split>.json`` arrays + ``config.json`` per spec/export-datasets.txt."""

from __future__ import annotations

import json

import pytest
from formats_support import ann, item, label, make_ctx, render, render_entries, split

from engine.errors import InvalidInput
from formats.spacy_ner import SpacyNerFormat

PER = label("PER", color="#82ebfd")
LOC = label("LOC", color="#e95211")
TRAIN, VALID, TEST = split("train"), split("valid"), split("test")


def ctx(**kw):
    kw.setdefault("labels", [PER, LOC])
    kw.setdefault("splits", [TRAIN, VALID, TEST])
    return make_ctx(content_type="ner", **kw)


def span(start: int, end: int) -> str:
    return json.dumps({"start": start, "end": end})


def test_surface():
    assert SpacyNerFormat.name == "spacy-ner"
    assert SpacyNerFormat.content_types == {"ner"}
    assert SpacyNerFormat.needs_content(ctx().dataset) is False


def test_spec_layout_exact_bytes():
    text = "Ann lives in Paris."
    items = [
        item(
            "i1",
            "doc1.txt",
            "txt",
            text=text,
            split=TRAIN,
            annotations=[ann(LOC, span(13, 18)), ann(PER, "0 3")],
        ),
        item("i2", "", "", text="nothing here", split=TRAIN),
        item("i3", "d3", "", text="Bob", split=TEST, annotations=[ann(PER, span(0, 3))]),
    ]
    files = render(SpacyNerFormat, ctx(), items)
    assert files == {
        "train.json": (
            b'[{"id":"i1","name":"doc1.txt","text":"Ann lives in Paris.","annotations":'
            b'[{"start":0,"end":3,"label":"PER"},{"start":13,"end":18,"label":"LOC"}]},'
            b'{"id":"i2","name":"i2","text":"nothing here","annotations":[]}]'
        ),
        "valid.json": b"[]",
        "test.json": (
            b'[{"id":"i3","name":"d3","text":"Bob","annotations":[{"start":0,"end":3,"label":"PER"}]}]'
        ),
        "config.json": b'{"splits":["train","valid","test"],"colors":{"PER":"#82ebfd","LOC":"#e95211"}}',
    }
    docs = json.loads(files["train.json"])
    assert [text[a["start"] : a["end"]] for a in docs[0]["annotations"]] == ["Ann", "Paris"]


def test_entry_order_splits_then_config():
    paths = [e.path for e in render_entries(SpacyNerFormat, ctx(), [item("1", text="x", split=VALID)])]
    assert paths == ["train.json", "valid.json", "test.json", "config.json"]


def test_character_offsets_with_emoji_and_accents():
    text = "😀 Zoë visited Zürich 🇨🇭 and São Paulo"
    entities = {"Zoë": "PER", "Zürich": "LOC", "São Paulo": "LOC", "🇨🇭": "LOC"}
    annotations = []
    for entity, name in entities.items():
        start = text.index(entity)
        annotations.append(ann(PER if name == "PER" else LOC, span(start, start + len(entity))))
    files = render(SpacyNerFormat, ctx(), [item("u", text=text, split=TRAIN, annotations=annotations)])
    raw = files["train.json"]
    assert "Zürich".encode() in raw and b"\\u" not in raw  # UTF-8, no ASCII escaping
    (doc,) = json.loads(raw)
    assert doc["text"] == text
    found = {doc["text"][a["start"] : a["end"]]: a["label"] for a in doc["annotations"]}
    assert found == entities
    starts = [a["start"] for a in doc["annotations"]]
    assert starts == sorted(starts)


def test_sorted_by_start_end_then_label_order():
    text = "abcdefgh"
    annotations = [ann(LOC, span(2, 5)), ann(PER, span(2, 5)), ann(LOC, span(0, 8)), ann(PER, span(2, 4))]
    (doc,) = json.loads(
        render(SpacyNerFormat, ctx(), [item("1", text=text, split=TRAIN, annotations=annotations)])[
            "train.json"
        ]
    )
    assert [(a["start"], a["end"], a["label"]) for a in doc["annotations"]] == [
        (0, 8, "LOC"),
        (2, 4, "PER"),
        (2, 5, "PER"),
        (2, 5, "LOC"),
    ]


@pytest.mark.parametrize(
    "coordinates", ["", "0.5 0.5 0.5 0.5", "3 1", "0 99", '{"start": -1, "end": 2}', "x y"]
)
def test_bad_span_names_the_item(coordinates):
    items = [item("ner-42", text="short", split=TRAIN, annotations=[ann(PER, coordinates)])]
    with pytest.raises(InvalidInput, match="ner-42"):
        render(SpacyNerFormat, ctx(), items)


def test_item_in_two_splits_and_items_in_no_split():
    items = [
        item("1", "a", text="Ann", split=TRAIN, annotations=[ann(PER, "0 3")]),
        item("1", "a", text="Ann", split=TEST, annotations=[ann(LOC, "0 3")]),
        item("2", text="Rome", split=None, annotations=[ann(LOC, "0 4")]),
        item("3", text="x", split=None),
    ]
    files = render(SpacyNerFormat, ctx(), items)
    assert json.loads(files["train.json"])[0]["annotations"] == [{"start": 0, "end": 3, "label": "PER"}]
    assert json.loads(files["test.json"])[0]["annotations"] == [{"start": 0, "end": 3, "label": "LOC"}]
    assert [d["id"] for d in json.loads(files["unassigned.json"])] == ["2", "3"]
    assert json.loads(files["config.json"])["splits"] == ["train", "valid", "test", "unassigned"]


def test_no_unassigned_file_without_such_items():
    files = render(SpacyNerFormat, ctx(), [item("1", text="x", split=TRAIN)])
    assert "unassigned.json" not in files
    assert json.loads(files["config.json"])["splits"] == ["train", "valid", "test"]


def test_real_split_named_unassigned_keeps_its_name():
    unassigned = split("unassigned")
    files = render(
        SpacyNerFormat,
        ctx(splits=[unassigned]),
        [item("1", text="a", split=unassigned), item("2", text="b", split=None)],
    )
    assert [d["id"] for d in json.loads(files["unassigned.json"])] == ["1"]
    assert [d["id"] for d in json.loads(files["unassigned~nosplit.json"])] == ["2"]
    assert json.loads(files["config.json"])["splits"] == ["unassigned", "unassigned~nosplit"]


def test_split_names_made_safe_and_unique_and_config_points_at_files():
    a, b, c = split("a/b", id="s1"), split("A_B", id="s2"), split("", id="s3")
    files = render(SpacyNerFormat, ctx(splits=[a, b, c]), [item("1", text="t", split=b)])
    splits = json.loads(files["config.json"])["splits"]
    assert splits == ["a_b", "A_B~s2", "_"]
    for name in splits:
        assert f"{name}.json" in files
    assert json.loads(files["A_B~s2.json"])[0]["id"] == "1"


def test_empty_export_and_no_labels():
    files = render(SpacyNerFormat, ctx(labels=[], splits=[]), [])
    assert files == {"config.json": b'{"splits":[],"colors":{}}'}


def test_raw_name_and_json_escaping_of_text():
    text = 'quote " backslash \\ newline \n tab \t nul \x00'
    files = render(SpacyNerFormat, ctx(), [item("1", "../odd/name", text=text, split=TRAIN)])
    (doc,) = json.loads(files["train.json"])
    assert doc["text"] == text and doc["name"] == "../odd/name"


def test_duplicate_label_names_share_a_colour_key():
    twin = label("PER", id="other", color="#000000")
    files = render(SpacyNerFormat, ctx(labels=[PER, twin, LOC]), [])
    assert json.loads(files["config.json"])["colors"] == {"PER": "#82ebfd", "LOC": "#e95211"}
