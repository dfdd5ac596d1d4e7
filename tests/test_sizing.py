"""An archive's predicted size is the length of the archive the export writes.

For every format that fits a dataset, the whole version and each split,
over the demo store and over a generated store whose names are unicode,
collide (case, extension, a second split) and whose items are partly
unlabelled, in no split or in two: ``archive_size`` must equal the length of
what ``run_export`` writes. Deflate is refused by sizing and accepted by the
export (a deflated download streams without a length).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import anyio
import pytest
import requests

from archive_check import read_archive
from engine.demo import create_demo
from engine.errors import InvalidInput, MissingBlob
from engine.pipeline import ExportOptions, run_export
from engine.sinks import FileSink
from engine.sizing import archive_size
from engine.sources import StoreSource, resolve_plan
from engine.store import NewItem, Store
from engine.zipwriter import ZipSizer
from formats import FORMATS
from servers import auth, url

Case = tuple[str, str, str, str | None]  # dataset id, version id, format, split id or None


def _predicted(root: Path, dataset_id: str, version_id: str, options: ExportOptions) -> int:
    """The size a download announces: sized through a reader holding one snapshot."""
    with Store.open(root, create=False) as store:
        reader = store.reader()
    try:
        with reader.snapshot():
            return anyio.run(functools.partial(archive_size, reader, dataset_id, version_id, options), backend="trio")
    finally:
        reader.close()


def _written(root: Path, dataset_id: str, version_id: str, options: ExportOptions, out: Path) -> bytes:
    run_export(lambda: StoreSource(root), dataset_id, version_id, FileSink(out), options)
    return out.read_bytes()


def _cases(root: Path) -> list[Case]:
    """Every (dataset, fitting format, whole version or one split) of the store at ``root``."""
    cases: list[Case] = []
    with Store.open(root, create=False) as store:
        for dataset in store.list_datasets():
            for version in store.get_dataset(dataset.id or "").versions:
                splits = [None] + [s.id for s in store.splits(version.id or "")]
                for name, cls in FORMATS.items():
                    if dataset.content_type in cls.content_types:
                        cases += [(dataset.id or "", version.id or "", name, split) for split in splits]
    return cases


def _check_every_case(root: Path, tmp_path: Path) -> int:
    """Size and write every case; a format's refusal must be the same in both. Returns the cases written."""
    written = 0
    for n, (dataset_id, version_id, fmt, split) in enumerate(_cases(root)):
        options = ExportOptions(format=fmt, split=split)
        try:
            data = _written(root, dataset_id, version_id, options, tmp_path / f"{n}.zip")
        except InvalidInput as refused:  # e.g. YOLO and an image-level label
            with pytest.raises(InvalidInput) as sizing_refused:
                _predicted(root, dataset_id, version_id, options)
            assert str(sizing_refused.value) == str(refused)
            continue
        assert _predicted(root, dataset_id, version_id, options) == len(data), (fmt, split)
        written += 1
    return written


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sizing-demo") / "store"
    with Store.open(root, create=True) as store:
        create_demo(store, items=30, seed=3)
    return root


def _images(store: Store) -> None:
    """Names that collide (case, extension, repeats, a second split), unicode, empty; labelled or not."""
    ds = store.create_dataset("Bilder ✓", "images", default_splits=True)
    version_id = ds.versions[0].id or ""
    train, valid, test = (s.id or "" for s in ds.versions[0].splits)
    labels = [store.create_label(version_id, name).id or "" for name in ("cät", "Dög", "猫")]
    names = ["a.jpg", "A.JPG", "Zoë", "Zoe\u0308", "日本語", "b", "config.json", "train.txt", "", "a"]
    rows = []
    for i in range(40):
        splits = [[train], [train, valid], [valid], [], [test, train], [test]][i % 6]
        labelled = i % 4 != 3  # every fourth item has no annotation
        box = f"0.{i % 9 + 1} 0.5 0.1 0.2"
        size = (70 << 10) if i == 7 else (1200 << 10) if i == 11 else 10 + i  # file blobs: prefetched and streamed
        rows.append(
            NewItem(
                name=names[i % len(names)],
                extension=("jpg", "png", "", "JPG")[i % 4],
                split_ids=splits,
                data=_png(i + 1, i + 2) + bytes([i]) * size,  # a real image header (COCO needs its size)
                annotations=[(labels[i % 3], s, box) for s in splits] if labelled else [],
            )
        )
    store.add_items(version_id, rows)


@functools.cache
def _png(width: int, height: int) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (width, height)).save(out, "PNG")
    return out.getvalue()


def _texts(store: Store) -> None:
    ds = store.create_dataset("Texte ✓", "text")
    version_id = ds.versions[0].id or ""
    label = store.create_label(version_id, "ja/nein").id or ""
    split = store.create_split(version_id, "train").id or ""
    rows = [
        NewItem(
            name=["Ünïcode", "ünïcode", "same", "same", ""][i % 5],
            text=f"Text {i} 🙂",
            split_ids=[split] if i % 3 else [],
            annotations=[(label, split, "")] if i % 3 and i % 2 else [],
        )
        for i in range(15)
    ]
    store.add_items(version_id, rows)


def _rows(store: Store) -> None:
    ds = store.create_dataset("Zeilen", "tabular", multi_label=True)
    version_id = ds.versions[0].id or ""
    store.update_version_config(version_id, json.dumps({"column_names": "x,note", "csv_separator": ","}))
    labels = [store.create_label(version_id, name).id or "" for name in ("niedrig", "höch")]
    train, test = (store.create_split(version_id, name).id or "" for name in ("train", "test"))
    rows = []
    for i in range(17):
        splits = [[train], [train, test], [], [test]][i % 4]
        anns = [(labels[i % 2], s, "") for s in splits if i % 5] + [(labels[1], s, "") for s in splits if i % 3 == 0]
        rows.append(NewItem(text=f'{i},"sagte ""hallo"", ✓"', split_ids=splits, annotations=anns))
    store.add_items(version_id, rows)


def _spans(store: Store) -> None:
    ds = store.create_dataset("Spannen", "ner")
    version_id = ds.versions[0].id or ""
    person = store.create_label(version_id, "PERSON").id or ""
    train, _empty, test = (store.create_split(version_id, n).id or "" for n in ("train", "leer", "test"))
    rows = []
    for i in range(19):
        splits = [[train], [train, test], [test], []][i % 4]
        rows.append(
            NewItem(
                name=f"dök{i % 5}",
                text=f"🙂 Zoë met number {i}.",
                split_ids=splits,
                annotations=[(person, s, "2 5") for s in splits if i % 3],
            )
        )
    store.add_items(version_id, rows)


@pytest.fixture(scope="module")
def generated_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sizing-generated") / "store"
    with Store.open(root, create=True) as store:
        for build in (_images, _texts, _rows, _spans):
            build(store)
    return root


def test_every_format_and_split_of_the_demo_is_sized_to_its_length(demo_store: Path, tmp_path: Path):
    assert _check_every_case(demo_store, tmp_path) >= 20


def test_unicode_colliding_and_unlabelled_items_are_sized_to_their_length(generated_store: Path, tmp_path: Path):
    cases = _cases(generated_store)
    assert {fmt for _, _, fmt, _ in cases} == set(FORMATS)
    assert _check_every_case(generated_store, tmp_path) == len(cases)


def test_the_generated_names_did_collide(generated_store: Path, tmp_path: Path):
    """The sizes above covered renamed entries (else the collisions were never exercised)."""
    [(dataset_id, version_id, _, _)] = [c for c in _cases(generated_store) if c[2] == "yolo" and c[3] is None]
    options = ExportOptions(format="folders")
    names = read_archive_names(_written(generated_store, dataset_id, version_id, options, tmp_path / "f.zip"), tmp_path)
    assert len(names) == len(set(names)) and any("~" in name for name in names)  # renamed: stem~tag.ext
    assert any(not name.isascii() for name in names)


def read_archive_names(data: bytes, tmp_path: Path) -> list[str]:
    path = tmp_path / "names.zip"
    path.write_bytes(data)
    return list(read_archive(path))


def test_deflate_is_refused_by_sizing_and_accepted_by_the_export(generated_store: Path, tmp_path: Path):
    for dataset_id, version_id, fmt, split in _cases(generated_store):
        if split is None:
            options = ExportOptions(format=fmt, compression="deflate")
            with pytest.raises(InvalidInput, match="only a stored archive can be sized"):
                _predicted(generated_store, dataset_id, version_id, options)
            assert read_archive_names(_written(generated_store, dataset_id, version_id, options, tmp_path / "d.zip"), tmp_path)
    with pytest.raises(InvalidInput, match="stored"):
        ZipSizer(8)


def test_a_deflated_download_streams_without_a_length(demo, tmp_path: Path):
    srv, made = demo
    d = made[0]
    r = requests.get(url(srv, d, fmt=d.format) + "&compression=deflate", headers=auth(srv))
    assert r.status_code == 200 and "content-length" not in r.headers
    path = tmp_path / "deflated.zip"
    path.write_bytes(r.content)
    assert read_archive(path)


def test_missing_content_fails_sizing_as_it_fails_the_export(tmp_path: Path):
    root = tmp_path / "store"
    with Store.open(root, create=True) as store:
        ds = store.create_dataset("holes", "images")
        version_id = ds.versions[0].id or ""
        store.add_items(
            version_id,
            [NewItem(name=f"i{i}", extension="png", data=None if i == 2 else b"x" * (i + 1)) for i in range(5)],
        )
    ids = (ds.id or "", version_id)
    strict = ExportOptions(format="folders")
    with pytest.raises(MissingBlob):
        _predicted(root, *ids, strict)
    with pytest.raises(MissingBlob):
        _written(root, *ids, strict, tmp_path / "strict.zip")
    lenient = ExportOptions(format="folders", skip_missing=True)
    assert _predicted(root, *ids, lenient) == len(_written(root, *ids, lenient, tmp_path / "lenient.zip"))


def test_the_plan_of_a_download_counts_items_only_up_to_a_bound(generated_store: Path):
    with Store.open(generated_store, create=False) as store:
        [(dataset_id, version_id, _, _)] = [c for c in _cases(generated_store) if c[2] == "yolo" and c[3] is None]
        exact = resolve_plan(store, dataset_id, version_id, None)
        assert exact.total == store.count_occurrences(version_id) > 40  # items in two splits occur twice
        assert resolve_plan(store, dataset_id, version_id, None, count_up_to=5).total == 6
        assert resolve_plan(store, dataset_id, version_id, None, count_up_to=1000).total == 40
        split = store.splits(version_id)[0]
        bounded = resolve_plan(store, dataset_id, version_id, split.name, count_up_to=1000)
        assert bounded.split == split and bounded.total == store.count_items(version_id, split.id)
