"""The round-trip contract: each format reads back what it writes, ``read(write(x)) == x``.

``x`` is a generated version (labels with colours, splits, items with their
content, split memberships and annotations), limited to what the format's
layout can hold, as its module docstring says: FOLDERS and CSV keep no
colours, no label or split that no item uses, and cannot tell an item in two splits
from two items, CSV keeps no
item names, YOLO holds boxes only and an image's boxes are the same in every
split, and an item in no split carries no annotations anywhere (an
annotation belongs to a split). Ultralytics and COCO hold boxes only, and
an item in two splits reads back as two items (a copy in each split's
folder); COCO keeps its categories in the splits' JSONs, so a version
without splits keeps no labels. Writing is the format's ``entries()`` and
``finish()``; reading is its ``read()`` over the importer's real archive
reader and spooled plan, after the importer's archive check.

The export -> import -> export tests through the store, the CLI, the HTTP
API and the SeeMe SDK's upload follow at the end.
"""

from __future__ import annotations

import io
import json
import random
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from formats_support import ann, item, label, make_ctx, render, split
from import_support import entries, export_bytes, make_demo_store
from servers import Server
from typer.testing import CliRunner

from engine.cli import app as cli_app
from engine.images import image_size
from engine.importer import check_archive
from engine.importer.archive_guard import open_archive
from engine.importer.plan import Plan
from engine.importer.reads import ZipArchiveReader
from engine.model import ContentType, Label
from engine.store import Store
from formats import FORMATS
from formats.coordinates import parse_span
from formats.reading import ImportTarget

pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

# -- the version, as a format sees it both ways -----------------------------------------------------------------


@dataclass
class Doc:
    """One item: content (bytes for images, str otherwise) and, per split (None: in no split), its annotations."""

    id: str
    name: str
    extension: str
    content: bytes | str
    #: split name (or None) -> [(label name, coordinates)]
    occurrences: dict[str | None, list[tuple[str, str]]]


@dataclass
class Version:
    content_type: str
    labels: dict[str, str]  # name -> colour
    splits: list[str]
    docs: list[Doc]
    multi_label: bool = False
    config: str = ""
    colours_kept: bool = True
    names_kept: bool = True
    unused_kept: bool = True


def _write(fmt: str, v: Version) -> bytes:
    """The format's archive of ``v``: its entries in an in-memory ZIP, as the engine writes them."""
    labels = [label(name, color=colour, index=i) for i, (name, colour) in enumerate(v.labels.items())]
    by_name: dict[str, Label] = {lb.name: lb for lb in labels}
    splits = [split(name) for name in v.splits]
    split_of = {s.name: s for s in splits}
    occurrences = []  # the engine's order: split by split, then the items in no split
    for s in [*v.splits, None]:
        for doc in v.docs:
            if s in doc.occurrences:
                text = doc.content if isinstance(doc.content, str) else ""
                content = doc.content if isinstance(doc.content, bytes) else None
                size = image_size(content) if content else None
                occurrences.append(item(
                    doc.id, doc.name, doc.extension, text=text, content=content,
                    split=None if s is None else split_of[s],
                    annotations=[ann(by_name[lb], c) for lb, c in doc.occurrences[s]],
                    width=size[0] if size else None, height=size[1] if size else None,
                ))
    ctx = make_ctx(content_type=v.content_type, labels=labels, splits=splits, config=v.config,
                   multi_label=v.multi_label)
    files = render(FORMATS[fmt], ctx, occurrences)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return out.getvalue()


def _canonical(content_type: str, coordinates: str) -> str:
    if content_type == ContentType.NER.value:
        span = parse_span(coordinates)
        return f"{span.start} {span.end}"
    return " ".join(str(float(x)) for x in coordinates.split())


def _expected(v: Version) -> tuple:
    """What reading must give back: labels, splits, and the items (order-free)."""
    used = {lb for doc in v.docs for anns in doc.occurrences.values() for lb, _ in anns}
    labels = {name: colour if v.colours_kept else "" for name, colour in v.labels.items()
              if v.unused_kept or name in used}
    items = []
    for doc in v.docs:
        splits = tuple(s for s in v.splits if s in doc.occurrences)
        anns = sorted((lb, s, _canonical(v.content_type, c)) for s in splits for lb, c in doc.occurrences[s])
        name = (doc.name or doc.id) if v.names_kept else None
        items.append((name, doc.extension, doc.content, splits, tuple(anns)))
    splits = [s for s in v.splits if v.unused_kept or any(s in doc.occurrences for doc in v.docs)]
    return labels, splits, sorted(items, key=repr)


def _read(fmt: str, v: Version, archive: bytes) -> tuple:
    """``read()`` of ``archive`` into a spooled plan, through the importer's check, as comparable values."""
    target = ImportTarget(v.content_type)
    with open_archive(io.BytesIO(archive)) as zf, Plan() as plan:
        FORMATS[fmt].read(ZipArchiveReader(zf, check_archive(zf)), plan, target)
        items = []
        for planned in plan:
            content: bytes | str = zf.read(planned.member) if planned.member is not None else planned.text
            anns = sorted((lb, s, _canonical(v.content_type, c)) for lb, s, c in planned.annotations)
            items.append((planned.name, planned.extension, content, tuple(planned.splits), tuple(anns)))
        labels = dict(plan.labels)
        if plan.config is not None:
            assert json.loads(plan.config) == json.loads(v.config or '{"column_names": "text", "csv_separator": ","}')
        return labels, list(plan.splits), sorted(items, key=repr)


# -- generated versions ---------------------------------------------------------------------------------------------

_WORDS = ["cat", "dog", "bird", "fish", "fox", "owl", "ant", "bee"]


def _labels(rng: random.Random, n: int) -> dict[str, str]:
    return {f"{w}{i}": f"#{rng.randrange(1 << 24):06x}" for i, w in enumerate(rng.sample(_WORDS, n))}


def _split_choice(rng: random.Random, splits: list[str], *, several: bool) -> list[str | None]:
    """The splits one item occurs in: none, one, or (where the layout holds it) several."""
    if not splits or rng.random() < 0.15:
        return [None]
    if several and len(splits) > 1 and rng.random() < 0.3:
        return rng.sample(splits, 2)
    return [rng.choice(splits)]


def gen_folders(rng: random.Random, *, text: bool, with_splits: bool) -> Version:
    labels = _labels(rng, rng.randint(1, 4))
    splits = ["train", "valid", "test"][: rng.randint(1, 3)] if with_splits else []
    docs = []
    for n in range(rng.randint(1, 12)):
        where = _split_choice(rng, splits, several=False)[0]
        if where is None:
            picked: list[str] = []  # a labelled item needs a split to hold its annotation
        else:
            picked = rng.sample(list(labels), rng.choice([0, 1, 1, 2]) if len(labels) > 1 else rng.randint(0, 1))
        content: bytes | str = f"text {n} {rng.random()}" if text else rng.randbytes(rng.randint(0, 200))
        docs.append(Doc(f"id{n}", f"item{n}", "" if text else rng.choice(["jpg", "png"]), content,
                        {where: [(lb, "") for lb in picked]}))
    return Version("text" if text else "images", labels, splits, docs, multi_label=True, colours_kept=False,
                   unused_kept=False)


def gen_yolo(rng: random.Random, *, with_splits: bool) -> Version:
    labels = _labels(rng, rng.randint(1, 4))
    splits = ["train", "valid", "test"][: rng.randint(1, 3)] if with_splits else []
    docs = []
    for n in range(rng.randint(1, 12)):
        boxes = [(rng.choice(list(labels)), " ".join(str(rng.randint(1, 99) / 100) for _ in range(4)))
                 for _ in range(rng.randint(0, 3))]
        where = _split_choice(rng, splits, several=True)
        docs.append(Doc(f"id{n}", f"img{n}", rng.choice(["jpg", "png"]), rng.randbytes(rng.randint(0, 200)),
                        {s: [] if s is None else boxes for s in where}))
    return Version("images", labels, splits, docs)


def _png(rng: random.Random) -> tuple[bytes, int, int]:
    """A real (tiny) PNG of a random size: COCO's boxes are in its pixels."""
    from PIL import Image

    width, height = rng.randint(1, 40), rng.randint(1, 40)
    out = io.BytesIO()
    Image.new("L", (width, height), rng.randrange(256)).save(out, "PNG")
    return out.getvalue(), width, height


def _pixel_box(rng: random.Random, width: int, height: int) -> str:
    """A box on whole pixels, relative: what a COCO archive's integer bbox reads back as, exactly."""
    x, y = rng.randint(0, width - 1), rng.randint(0, height - 1)
    w, h = rng.randint(1, width - x), rng.randint(1, height - y)
    values = ((x + w / 2) / width, (y + h / 2) / height, w / width, h / height)
    return " ".join(repr(v) for v in values)


def gen_boxes(rng: random.Random, *, with_splits: bool, labels_need_a_split: bool = False) -> Version:
    """Ultralytics and COCO: real images, boxes on whole pixels, every item in at most one split.

    COCO's categories live in the splits' JSONs: without a split, labels no item uses are not kept."""
    labels = _labels(rng, rng.randint(1, 4))
    splits = ["train", "valid", "test", "extra"][: rng.randint(1, 4)] if with_splits else []
    docs = []
    for n in range(rng.randint(1, 12)):
        content, width, height = _png(rng)
        where = _split_choice(rng, splits, several=False)[0]
        boxes = [] if where is None else [
            (rng.choice(list(labels)), _pixel_box(rng, width, height)) for _ in range(rng.randint(0, 3))
        ]
        docs.append(Doc(f"id{n}", f"img{n}", rng.choice(["jpg", "png"]), content, {where: boxes}))
    return Version("images", labels, splits, docs, colours_kept=False,
                   unused_kept=with_splits or not labels_need_a_split)


def gen_csv(rng: random.Random, *, multi_label: bool, with_splits: bool, separator: str, columns: int) -> Version:
    labels = _labels(rng, rng.randint(1, 4))
    splits = ["train", "valid", "test"][: rng.randint(1, 3)] if with_splits else []
    names = [f"c{i}" for i in range(columns)]
    if columns > 1 and rng.random() < 0.5:
        names[-1] = "labels"  # a data column named like the label column: the label column moves to labels_
    config = json.dumps({"column_names": separator.join(names), "csv_separator": separator}, separators=(",", ":"))
    docs = []
    for n in range(rng.randint(1, 12)):
        values = [f"v{n}x{i}" for i in range(columns)]
        if columns > 1 and rng.random() < 0.3:
            values[0] = f'"a{separator}b"'  # a quoted value holding the separator
        text = separator.join(values) if columns > 1 else rng.choice([f"row {n}", f"a{separator}b {n}"])
        where = _split_choice(rng, splits, several=False)[0]
        count = 0 if where is None else rng.choice([0, 1, 2] if multi_label else [0, 1])
        picked = sorted(rng.sample(list(labels), min(count, len(labels))), key=list(labels).index)
        docs.append(Doc(f"id{n}", "", "", text, {where: [(lb, "") for lb in picked]}))
    return Version("tabular", labels, splits, docs, multi_label=multi_label, config=config if columns else "",
                   colours_kept=False, names_kept=False, unused_kept=False)


def gen_ner(rng: random.Random, *, with_splits: bool) -> Version:
    labels = _labels(rng, rng.randint(1, 4))
    splits = ["train", "valid", "test"][: rng.randint(1, 3)] if with_splits else []
    docs = []
    for n in range(rng.randint(1, 10)):
        text = " ".join(rng.choice(["ACME", "Zürich", "rises", "🙂", "in", "Paris"]) for _ in range(rng.randint(1, 8)))
        spans = []
        for _ in range(rng.randint(0, 3)):
            start = rng.randrange(len(text))
            end = rng.randint(start + 1, len(text))
            spans.append((rng.choice(list(labels)), json.dumps({"start": start, "end": end})))
        where = _split_choice(rng, splits, several=True)
        docs.append(Doc(f"id{n}", rng.choice([f"doc{n}", ""]), "", text,
                        {s: [] if s is None else spans for s in where}))
    return Version("ner", labels, splits, docs)


CASES = {
    "folders-images": ("folders", lambda rng: gen_folders(rng, text=False, with_splits=True)),
    "folders-images-no-splits": ("folders", lambda rng: gen_folders(rng, text=False, with_splits=False)),
    "folders-text": ("folders", lambda rng: gen_folders(rng, text=True, with_splits=True)),
    "yolo": ("yolo", lambda rng: gen_yolo(rng, with_splits=True)),
    "yolo-no-splits": ("yolo", lambda rng: gen_yolo(rng, with_splits=False)),
    "ultralytics": ("ultralytics", lambda rng: gen_boxes(rng, with_splits=True)),
    "ultralytics-no-splits": ("ultralytics", lambda rng: gen_boxes(rng, with_splits=False)),
    "coco": ("coco", lambda rng: gen_boxes(rng, with_splits=True)),
    "coco-no-splits": ("coco", lambda rng: gen_boxes(rng, with_splits=False, labels_need_a_split=True)),
    "csv-one-label": ("csv", lambda rng: gen_csv(rng, multi_label=False, with_splits=True, separator=",", columns=3)),
    "csv-multi-label": ("csv", lambda rng: gen_csv(rng, multi_label=True, with_splits=True, separator=";", columns=2)),
    "csv-one-column": ("csv", lambda rng: gen_csv(rng, multi_label=False, with_splits=True, separator=",", columns=1)),
    "csv-default-config": ("csv", lambda rng: gen_csv(rng, multi_label=False, with_splits=False, separator=",",
                                                      columns=0)),
    "spacy-ner": ("spacy-ner", lambda rng: gen_ner(rng, with_splits=True)),
    "spacy-ner-no-splits": ("spacy-ner", lambda rng: gen_ner(rng, with_splits=False)),
}


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("case", list(CASES))
def test_read_of_write_is_the_version(case: str, seed: int):
    fmt, generate = CASES[case]
    version = generate(random.Random(f"{case}/{seed}"))
    assert version.content_type in FORMATS[fmt].content_types
    assert _read(fmt, version, _write(fmt, version)) == _expected(version)


def test_every_format_and_content_type_is_covered():
    covered = {(fmt, generate(random.Random(0)).content_type) for fmt, generate in CASES.values()}
    assert covered == {(name, ct) for name, cls in FORMATS.items() for ct in cls.content_types}


def test_a_round_trip_that_should_differ_does():
    """The comparison can fail: a label dropped on the way is seen."""
    fmt, generate = CASES["spacy-ner"]
    version = generate(random.Random(1))
    got = _read(fmt, version, _write(fmt, version))
    version.labels["extra"] = "#000000"
    assert got != _expected(version)


# -- export -> import -> export through the store (CLI, HTTP, the SDK) ---------------------------------------------


@pytest.fixture()
def demo_store(tmp_path):
    return make_demo_store(tmp_path)


def _fresh_version(store: Path, dataset_id: str) -> str:
    with Store.open(store, create=False) as opened:
        return opened.create_version(dataset_id).id or ""


@pytest.mark.parametrize("which", ["pets", "reviews", "shapes", "iris-like", "news", "shapes-folders", "shapes-coco",
                                   "shapes-ultralytics"])
def test_round_trip_through_the_cli(demo_store, tmp_path, which):
    store, made, _ = demo_store
    by_name = {d.name: d for d in made}
    name, _, other = which.partition("-") if which.startswith("shapes-") else (which, "", "")
    d = by_name[name]
    fmt = other or d.format
    first = export_bytes(store, d.dataset_id, d.version_id, fmt, tmp_path)
    (tmp_path / "first.zip").write_bytes(first)
    target = _fresh_version(store, d.dataset_id)
    result = CliRunner().invoke(
        cli_app, ["import", "--store", str(store), d.dataset_id, target, "--format", fmt, str(tmp_path / "first.zip")]
    )
    assert result.exit_code == 0, result.output
    second = export_bytes(store, d.dataset_id, target, fmt, tmp_path)
    assert entries(second) == entries(first, d.version_id, target)


def test_round_trip_over_http_and_the_sdk_upload(demo_store, tmp_path, monkeypatch):
    store, made, key = demo_store
    srv = Server(store)
    srv.keys = {"alice": key}
    try:
        headers = {"Authorization": f"Bearer {key}"}
        shapes = next(d for d in made if d.name == "shapes")
        for d, fmt in [*((d, d.format) for d in made), (shapes, "coco"), (shapes, "ultralytics")]:
            first = requests.get(
                f"{srv.base}datasets/{d.dataset_id}/versions/{d.version_id}/download?format={fmt}", headers=headers
            ).content
            target = _fresh_version(store, d.dataset_id)
            r = requests.post(
                f"{srv.base}datasets/{d.dataset_id}/versions/{target}/upload/{fmt}",
                files={"file": ("dataset.zip", first, "application/x-zip-compressed")}, headers=headers,
            )
            assert r.status_code == 200, r.text
            assert r.json()["id"] == target
            second = requests.get(
                f"{srv.base}datasets/{d.dataset_id}/versions/{target}/download?format={fmt}", headers=headers
            ).content
            assert entries(second) == entries(first, d.version_id, target), (d.name, fmt)

        # the SDK's upload_df: a CSV zip with its own config.json
        import pandas as pd
        from seeme import Client

        monkeypatch.chdir(tmp_path)
        client = Client(username="alice", apikey=key, backend=srv.base, env_file="/nonexistent/.env")
        df = pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"], "label": ["p", "q", "p"],
                           "split": ["train", "train", "test"]})
        import inspect

        params = inspect.signature(client.upload_df).parameters
        kwargs = {k: v for k, v in {"df": df, "name": "from-df", "label_column": "label",
                                   "split_column": "split", "multi_label": False}.items() if k in params}
        version = client.upload_df(**kwargs)
        dataset_id = version.dataset_id
        rows = client.download_df(dataset_id, version.id, download_folder=str(tmp_path / "df"))
        assert list(rows["x"].astype(str)) == ["1", "2", "3"]
    finally:
        srv.stop()
