"""CSV: ``<version_id>.csv`` + ``config.json`` per spec/export-datasets.txt."""

from __future__ import annotations

import csv
import io
import json

import pytest
from formats_support import ann, item, label, make_ctx, render, render_entries, split

import formats.csv as csv_module
from engine.errors import InvalidInput
from formats.csv import CsvFormat

YES, NO = label("yes"), label("no")
TRAIN, TEST = split("train"), split("test")


def config(columns: str, sep: str = ",") -> str:
    """What the SDK's add_columns_structured_dataset_version stores."""
    return json.dumps({"column_names": columns, "csv_separator": sep})


def ctx(**kw):
    kw.setdefault("labels", [YES, NO])
    kw.setdefault("splits", [TRAIN, TEST])
    kw.setdefault("version_id", "ver-3")
    return make_ctx(content_type="tabular", **kw)


def test_stdlib_csv_is_not_shadowed():
    assert csv.writer is not None and csv.QUOTE_MINIMAL == 0
    assert csv_module.csv is csv  # formats/csv.py imports the standard library
    assert CsvFormat.name == "csv" and CsvFormat.content_types == {"tabular"}
    assert CsvFormat.needs_content(ctx().dataset) is False


def test_spec_layout_exact_bytes():
    items = [
        item("1", text="1.5,red,10", split=TRAIN, annotations=[ann(YES)]),
        item("2", text="2.0,blue,20", split=TRAIN),
        item("3", text="0,green,30", split=TEST, annotations=[ann(NO)]),
        item("4", text="9,grey,40", split=None, annotations=[ann(YES)]),
    ]
    files = render(CsvFormat, ctx(config=config("size,colour,count")), items)
    assert files == {
        "ver-3.csv": (
            b"size,colour,count,labels,split\n"
            b"1.5,red,10,yes,train\n"
            b"2.0,blue,20,,train\n"
            b"0,green,30,no,test\n"
            b"9,grey,40,yes,\n"
        ),
        "config.json": (
            b'{"multi_label":false,"label_column":"labels","split_column":"split",'
            b'"label_separator":" ","filename":"ver-3.csv","csv_separator":","}'
        ),
    }
    assert list(json.loads(files["config.json"])) == [
        "multi_label",
        "label_column",
        "split_column",
        "label_separator",
        "filename",
        "csv_separator",
    ]


def test_entries_returns_nothing_and_order_is_csv_then_config():
    entries = render_entries(CsvFormat, ctx(), [item("1", text="a", split=TRAIN)])
    assert [e.path for e in entries] == ["ver-3.csv", "config.json"]


def test_missing_config_means_one_text_column():
    for cfg in ("", "  ", json.dumps({"csv_separator": ","}), json.dumps({"column_names": ""})):
        files = render(CsvFormat, ctx(config=cfg), [item("1", text="hello, world", split=TRAIN)])
        assert files["ver-3.csv"] == b'text,labels,split\n"hello, world",,train\n'


def test_multi_label_joins_in_label_order_once_each():
    maybe = label("maybe")
    items = [item("1", text="a", split=TRAIN, annotations=[ann(maybe), ann(YES), ann(maybe)])]
    files = render(CsvFormat, ctx(labels=[YES, NO, maybe], multi_label=True, config=config("c")), items)
    assert files["ver-3.csv"] == b"c,labels,split\na,yes maybe,train\n"
    assert json.loads(files["config.json"])["multi_label"] is True


def test_single_label_dataset_writes_first_label_in_export_order():
    items = [item("1", text="a", split=TRAIN, annotations=[ann(NO), ann(YES)])]
    assert render(CsvFormat, ctx(config=config("c")), items)["ver-3.csv"] == b"c,labels,split\na,yes,train\n"


def test_other_separator_and_quoting_of_output():
    items = [item("1", text='x;he said "hi";a,b', split=TRAIN, annotations=[ann(YES)])]
    files = render(CsvFormat, ctx(config=config("p;q;r", ";")), items)
    assert files["ver-3.csv"] == b'p;q;r;labels;split\nx;"he said ""hi""";a,b;yes;train\n'
    assert json.loads(files["config.json"])["csv_separator"] == ";"
    rows = list(csv.reader(io.StringIO(files["ver-3.csv"].decode()), delimiter=";"))
    assert rows[1] == ["x", 'he said "hi"', "a,b", "yes", "train"]


def test_quoted_field_in_stored_text_is_honoured():
    items = [
        item("1", text='1,"Smith, John",x', split=TRAIN),
        item("2", text='2,"multi\nline ""quoted""",y', split=TRAIN),
        item("3", text='3,5" screen,z', split=TRAIN),  # a bare inch mark is just a character
        item("4", text='4,"ab"cd,w', split=TRAIN),  # not valid quoted CSV: split plainly
    ]
    files = render(CsvFormat, ctx(config=config("id,name,tag")), items)
    rows = list(csv.reader(io.StringIO(files["ver-3.csv"].decode(), newline="")))
    assert rows[1:] == [
        ["1", "Smith, John", "x", "", "train"],
        ["2", 'multi\nline "quoted"', "y", "", "train"],
        ["3", '5" screen', "z", "", "train"],
        ["4", '"ab"cd', "w", "", "train"],
    ]


def test_unquoted_newline_in_value_is_kept_and_quoted_on_output():
    files = render(CsvFormat, ctx(config=config("a,b")), [item("1", text="x\ny,z", split=TRAIN)])
    assert files["ver-3.csv"] == b'a,b,labels,split\n"x\ny",z,,train\n'


@pytest.mark.parametrize(("text", "actual"), [("1,2", 2), ("1,2,3,4", 4), ("", 1)])
def test_field_count_mismatch_names_item_and_counts(text, actual):
    with pytest.raises(InvalidInput, match=rf"item 'bad-1'.* {actual} fields.* 3 columns"):
        render(CsvFormat, ctx(config=config("a,b,c")), [item("bad-1", text=text, split=TRAIN)])


def test_label_and_split_columns_renamed_when_taken():
    files = render(
        CsvFormat,
        ctx(config=config("labels,split,labels_")),
        [item("1", text="a,b,c", split=TRAIN, annotations=[ann(NO)])],
    )
    assert files["ver-3.csv"] == b"labels,split,labels_,labels__,split_\na,b,c,no,train\n"
    cfg = json.loads(files["config.json"])
    assert (cfg["label_column"], cfg["split_column"]) == ("labels__", "split_")


def test_item_in_two_splits_gives_a_row_per_split():
    items = [
        item("1", text="a", split=TRAIN, annotations=[ann(YES)]),
        item("1", text="a", split=TEST, annotations=[ann(NO)]),
    ]
    assert render(CsvFormat, ctx(config=config("c")), items)["ver-3.csv"] == (
        b"c,labels,split\na,yes,train\na,no,test\n"
    )


def test_column_names_as_list_and_unicode():
    cfg = json.dumps({"column_names": ["naïve", "emoji"], "csv_separator": "\t"})
    files = render(CsvFormat, ctx(config=cfg), [item("1", text="é\t😀", split=TRAIN)])
    assert files["ver-3.csv"].decode() == "naïve\temoji\tlabels\tsplit\né\t😀\t\ttrain\n"


@pytest.mark.parametrize(
    "cfg",
    [
        "not json",
        "[1, 2]",
        json.dumps({"column_names": "a", "csv_separator": ";;"}),
        json.dumps({"column_names": "a", "csv_separator": '"'}),
    ],
)
def test_bad_config_is_invalid_input(cfg):
    with pytest.raises(InvalidInput):
        CsvFormat(ctx(config=cfg))


def test_empty_export_is_header_only_and_filename_is_path_safe():
    files = render(CsvFormat, ctx(version_id="a/../b", config=config("x")), [])
    assert files["a_.._b.csv"] == b"x,labels,split\n"
    assert json.loads(files["config.json"])["filename"] == "a_.._b.csv"


def test_single_column_keeps_whole_text_verbatim():
    items = [item("1", text='a,"b",c', split=TRAIN), item("2", text="", split=TRAIN)]
    files = render(CsvFormat, ctx(config=config("only")), items)
    assert files["ver-3.csv"] == b'only,labels,split\n"a,""b"",c",,train\n,,train\n'
