"""Scale-out exports (``--ray``): byte-identical to the single-process export.

One local Ray cluster (2 CPUs) serves the whole module. The stores are
built to make shards disagree if the stitch were naive: names that collide
(also only in case) across shard boundaries, items in two splits (YOLO
stores them once and lists them twice), items in no split, an empty split.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import zipfile
from pathlib import Path

import pytest
import ray

from archive_check import check_archive
from engine.cli import app
from engine.errors import ShardFailed
from engine.pipeline import ExportOptions, run_export
from engine.scaleout import run_scaleout
from engine.scaleout.parts import FAULTS_ENV
from engine.sinks import FileSink
from engine.sources import StoreSource
from engine.store import NewItem, Store
from formats import FORMATS


@pytest.fixture(scope="module")
def faults(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fault-injection folder the workers look at (set before they start)."""
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="module", autouse=True)
def cluster(faults: Path):
    os.environ[FAULTS_ENV] = str(faults)  # workers inherit the driver's environment
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()
        del os.environ[FAULTS_ENV]


def _image_dataset(store: Store) -> tuple[str, str]:
    """Images whose names collide across shards, some in two splits, some in none."""
    ds = store.create_dataset("clash", "images", default_splits=True)
    version = ds.versions[0]
    train, valid, test = (s.id or "" for s in version.splits)
    cat = store.create_label(version.id or "", "cat").id or ""
    dog = store.create_label(version.id or "", "Dog").id or ""
    names = ["a.jpg", "A.JPG", "b", "config.json", "train.txt", "a", "B"]
    rows = []
    for i in range(21):
        splits = [[train], [train, valid], [valid], [], [test, train]][i % 5]
        label = (cat, dog)[i % 2]
        box = f"0.{i % 9 + 1} 0.5 0.1 0.2"
        rows.append(
            NewItem(
                name=names[i % len(names)],
                extension=("jpg", "png", "")[i % 3],
                split_ids=splits,
                data=_png(i % 4 + 1, i % 3 + 1) + f"image {i}".encode() * (i + 1),  # a real header: COCO's sizes
                annotations=[(label, s, box if i % 4 else "") for s in splits],  # every 4th an image-level label
            )
        )
    store.add_items(version.id or "", rows)
    return ds.id or "", version.id or ""


def _png(width: int, height: int) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (width, height)).save(out, "PNG")
    return out.getvalue()


def _tabular_dataset(store: Store) -> tuple[str, str]:
    ds = store.create_dataset("rows", "tabular", multi_label=True)
    version_id = ds.versions[0].id or ""
    store.update_version_config(version_id, json.dumps({"column_names": "x,note", "csv_separator": ","}))
    labels = [store.create_label(version_id, name).id or "" for name in ("low", "high")]
    train, test = (store.create_split(version_id, name).id or "" for name in ("train", "test"))
    rows = []
    for i in range(17):
        splits = [[train], [train, test], [], [test]][i % 4]
        anns = [(labels[i % 2], s, "") for s in splits] + [(labels[1], s, "") for s in splits if i % 3 == 0]
        rows.append(NewItem(text=f'{i},"said ""hi"", twice"', split_ids=splits, annotations=anns))
    store.add_items(version_id, rows)
    return ds.id or "", version_id


def _ner_dataset(store: Store) -> tuple[str, str]:
    ds = store.create_dataset("spans", "ner")
    version_id = ds.versions[0].id or ""
    person = store.create_label(version_id, "PERSON").id or ""
    train, _empty, test = (store.create_split(version_id, n).id or "" for n in ("train", "empty", "test"))
    rows = []
    for i in range(19):
        splits = [[train], [train, test], [test], []][i % 4]
        rows.append(
            NewItem(
                name=f"doc{i % 5}",
                text=f"🙂 Zoë met number {i}.",
                split_ids=splits,
                annotations=[(person, s, "2 5") for s in splits],
            )
        )
    store.add_items(version_id, rows)
    return ds.id or "", version_id


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, tuple[str, str]]]:
    root = tmp_path_factory.mktemp("scaleout-store")
    with Store.open(root) as opened:
        images = _image_dataset(opened)
        made = {"folders": images, "yolo": images, "csv": _tabular_dataset(opened), "spacy-ner": _ner_dataset(opened),
                "ultralytics": images, "coco": images}
    return root, made


def _single(root: Path, ids: tuple[str, str], out: Path, **options) -> bytes:
    run_export(lambda: StoreSource(root), *ids, FileSink(out), ExportOptions(**options))
    return out.read_bytes()


def _scaled(root: Path, ids: tuple[str, str], out: Path, shards: int, **kwargs):
    options = ExportOptions(**kwargs.pop("options"))
    return run_scaleout(functools.partial(StoreSource, root), *ids, str(out), options, shards=shards, **kwargs)


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_stitches_byte_identical_with_1_2_and_5_shards(store, tmp_path: Path, fmt: str):
    root, made = store
    expected = _single(root, made[fmt], tmp_path / "single.zip", format=fmt)
    reruns = []
    for shards in (1, 2, 5):
        out = tmp_path / f"scaled-{shards}.zip"
        result = _scaled(root, made[fmt], out, shards, options={"format": fmt})
        assert out.read_bytes() == expected, f"{fmt} with {shards} shards differs"
        assert result.shards == shards and result.bytes == len(expected)
        if getattr(FORMATS[fmt], "boxes_only", False):  # every shard's image-level labels, counted once
            with Store.open(root, create=False) as opened:
                boxes, left_out = opened.annotation_counts(made[fmt][1])
            assert result.image_labels_left_out == left_out > 0
            assert result.boxes == boxes or (fmt == "yolo" and 0 < (result.boxes or 0) < boxes)  # YOLO: repeats once
        reruns.append(result.reruns)
    entries = check_archive(tmp_path / "scaled-5.zip")
    assert reruns[0] == []  # one shard never collides with itself
    with Store.open(root, create=False) as opened:
        named_by_files = FORMATS[fmt].needs_content(opened.get_dataset(made[fmt][0]))
    if named_by_files:
        # Items named by their files collide across shards here: the ledger must have caught it.
        assert reruns[2], "no shard was re-run although names collide across shards"
        assert any("~" in name for name in entries)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".dsexport-parts-")], "parts left behind"


def test_deflate_stitches_byte_identical(store, tmp_path: Path):
    root, made = store
    expected = _single(root, made["csv"], tmp_path / "single.zip", format="csv", compression="deflate")
    _scaled(root, made["csv"], tmp_path / "scaled.zip", 3, options={"format": "csv", "compression": "deflate"})
    assert (tmp_path / "scaled.zip").read_bytes() == expected


def test_over_65535_entries_stitch_into_a_valid_zip64_archive(tmp_path: Path):
    root = tmp_path / "store"
    with Store.open(root) as opened:
        ds = opened.create_dataset("many", "text", default_splits=True)
        version = ds.versions[0]
        train = version.splits[0].id or ""
        opened.add_items(version.id or "", (NewItem(name=f"t{i % 60_000}", text=f"{i}", split_ids=[train]) for i in range(66_000)))
    ids = (ds.id or "", version.id or "")
    expected = _single(root, ids, tmp_path / "single.zip", format="folders")
    result = _scaled(root, ids, tmp_path / "scaled.zip", 2, options={"format": "folders"})
    assert (tmp_path / "scaled.zip").read_bytes() == expected
    assert result.entries == 66_000 and result.reruns == [1]  # t0..t5999 repeat in shard 1
    entries = check_archive(tmp_path / "scaled.zip")
    assert len(entries) == 66_000


def test_a_worker_killed_mid_shard_is_retried_and_the_archive_is_identical(store, faults: Path, tmp_path: Path):
    root, made = store
    expected = _single(root, made["yolo"], tmp_path / "single.zip", format="yolo")
    marker = faults / "crash-1"
    marker.touch()
    _scaled(root, made["yolo"], tmp_path / "scaled.zip", 3, options={"format": "yolo"})
    assert not marker.exists(), "the worker of shard 1 was never killed"
    assert (tmp_path / "scaled.zip").read_bytes() == expected


def test_a_shard_that_keeps_failing_names_itself_and_leaves_nothing(store, faults: Path, tmp_path: Path):
    root, made = store
    out = tmp_path / "scaled.zip"
    marker = faults / "fail-1"
    marker.touch()
    try:
        with pytest.raises(ShardFailed, match=r"shard 1 \(item occurrences \d+-\d+\) failed after 2 attempt"):
            _scaled(root, made["csv"], out, 3, options={"format": "csv"}, max_retries=1)
    finally:
        marker.unlink()
    assert list(tmp_path.iterdir()) == [], "output or parts left behind"


def test_an_export_error_in_a_shard_names_the_shard(store, tmp_path: Path):
    root, made = store
    with Store.open(root) as opened:  # a version whose later rows do not fit the columns
        ds = opened.create_dataset("bad-rows", "tabular")
        version_id = ds.versions[0].id or ""
        opened.update_version_config(version_id, json.dumps({"column_names": "a,b"}))
        opened.add_items(version_id, [NewItem(text="1,2")] * 3 + [NewItem(text="1,2,3")])
    with pytest.raises(ShardFailed, match=r"shard 1 \(item occurrences 2-3\): item .* has 3 fields"):
        _scaled(root, (ds.id or "", version_id), tmp_path / "x.zip", 2, options={"format": "csv"})
    assert list(tmp_path.iterdir()) == []


def test_cli_export_with_ray(store, tmp_path: Path):
    from typer.testing import CliRunner

    root, made = store
    expected = _single(root, made["spacy-ner"], tmp_path / "single.zip", format="spacy-ner")
    parts = tmp_path / "parts"
    parts.mkdir()
    out = tmp_path / "scaled.zip"
    args = ["export", "--store", str(root), *made["spacy-ner"], "-f", "spacy-ner", "-o", str(out)]
    result = CliRunner().invoke(app, [*args, "--ray", "local", "--shards", "3", "--parts-dir", str(parts)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == expected
    assert list(parts.iterdir()) == []
    to_stdout = CliRunner().invoke(app, [*args[:-1], "-", "--ray", "local"])
    assert to_stdout.exit_code == 2 and "-o FILE" in to_stdout.output
    without_ray = CliRunner().invoke(app, [*args, "--shards", "2"])
    assert without_ray.exit_code == 2 and "belong to a --ray export" in without_ray.output
    with zipfile.ZipFile(out) as zf:
        assert "unassigned.json" in zf.namelist()


def test_workers_can_read_a_server_through_the_http_source(store, tmp_path: Path):
    from servers import Server

    from engine.client.source import http_source

    root, made = store
    with Store.open(root) as opened:
        key = opened.create_user("scaler", "pw")[1]
        opened.give_datasets("scaler", [made["yolo"][0], made["csv"][0]])
    srv = Server(root)
    try:
        for fmt in ("yolo", "csv"):
            expected = _single(root, made[fmt], tmp_path / f"{fmt}-single.zip", format=fmt)
            out = tmp_path / f"{fmt}-remote.zip"
            source = functools.partial(http_source, srv.base, key, timeout=10.0)
            run_scaleout(source, *made[fmt], str(out), ExportOptions(format=fmt), shards=3)
            assert out.read_bytes() == expected, fmt
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def postgres_copy(store, postgres) -> str:
    """The module's store copied row by row into PostgreSQL (content stays in its blobs folder)."""
    from engine.store import LocalBlobs
    from engine.store.postgres import PostgresStore
    from postgres import load_sqlite_tables

    root, _ = store
    url = postgres.new_database("ray")
    PostgresStore.open_url(url, create=True, files=LocalBlobs(root / "blobs")).close()
    load_sqlite_tables(root / "store.sqlite3", url)
    return url


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_workers_read_metadata_from_postgresql_byte_identical(store, postgres_copy: str, tmp_path: Path, fmt: str):
    from engine.store.address import StoreAddress

    root, made = store
    expected = _single(root, made[fmt], tmp_path / "single.zip", format=fmt)
    address = StoreAddress(postgres_copy, str(root / "blobs"))
    result = run_scaleout(
        functools.partial(StoreSource, address), *made[fmt], str(tmp_path / "scaled.zip"), ExportOptions(format=fmt),
        shards=3,
    )
    assert (tmp_path / "scaled.zip").read_bytes() == expected and result.shards == 3
