"""End to end through the pipeline: store -> format -> zip -> sink."""

from __future__ import annotations

import hashlib
import time
import zlib
from pathlib import Path

import anyio
import pytest
from archive_check import check_archive

from engine.demo import create_demo
from engine.errors import ContentError, InvalidInput, MissingBlob, NotFound, OutputError
from engine.pipeline import ExportOptions, export, run_export
from engine.sinks import FileSink
from engine.sources import StoreSource
from engine.store import BlobRef, Store

BACKENDS = ["trio", "asyncio"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("demo-store")
    with Store.open(root) as store:
        made = create_demo(store, items=16, seed=3)
    return root, {d.name: d for d in made}


def run(root: Path, d, output: Path, backend: str = "trio", **options) -> object:
    opts = ExportOptions(format=options.pop("format", d.format), **options)
    return run_export(lambda: StoreSource(root), d.dataset_id, d.version_id, FileSink(output), opts, backend=backend)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_demo_dataset_exports_in_its_format(demo, tmp_path: Path, backend: str):
    root, made = demo
    for name, d in made.items():
        out = tmp_path / f"{name}.zip"
        result = run(root, d, out, backend)
        entries = check_archive(out)
        assert result.bytes == out.stat().st_size
        assert result.entries == len(entries)
        assert result.items > 0
        assert "config.json" in entries or d.format == "folders", name
        if d.format == "folders":
            tops = {p.split("/")[0] for p in entries}
            assert tops & {"train", "valid", "test", "unsup"}, tops
        if d.format == "yolo":
            assert f"{d.version_id}.names" in entries
            assert {"train.txt", "valid.txt", "test.txt"} <= set(entries)
        if d.format == "csv":
            assert f"{d.version_id}.csv" in entries
        if d.format == "spacy-ner":
            assert {"train.json", "config.json"} <= set(entries)


def test_same_export_is_byte_identical_across_runs_backends_and_windows(demo, tmp_path: Path):
    root, made = demo
    for name, d in made.items():
        digests = {
            sha(_export(root, d, tmp_path / f"{name}-{backend}-{window}.zip", backend, window))
            for backend in BACKENDS
            for window in (1, 16)
        }
        assert len(digests) == 1, name


def _export(root: Path, d, out: Path, backend: str, window: int) -> Path:
    run(root, d, out, backend, concurrency=window)
    return out


def test_split_export_by_name_and_by_id(demo, tmp_path: Path):
    root, made = demo
    d = made["pets"]
    by_name = tmp_path / "by-name.zip"
    run(root, d, by_name, split="valid")
    entries = check_archive(by_name)
    assert entries and all(p.startswith("valid/") for p in entries)
    with Store.open(root) as store:
        valid = store.resolve_split(d.version_id, "valid")
    by_id = tmp_path / "by-id.zip"
    run(root, d, by_id, split=valid.id)
    assert sha(by_id) == sha(by_name)


def test_deflate_option(demo, tmp_path: Path):
    root, made = demo
    d = made["reviews"]
    stored, deflated = tmp_path / "s.zip", tmp_path / "d.zip"
    run(root, d, stored)
    run(root, d, deflated, compression="deflate")
    assert check_archive(stored) == check_archive(deflated)
    assert deflated.stat().st_size < stored.stat().st_size


@pytest.mark.parametrize(
    ("field", "value", "error", "names"),
    [
        ("dataset_id", "no-such-dataset", NotFound, "no-such-dataset"),
        ("version_id", "no-such-version", NotFound, "no-such-version"),
        ("split", "no-such-split", NotFound, "train"),
        ("format", "tarball", InvalidInput, "spacy-ner"),
        ("format", "yolo", InvalidInput, "folders"),  # reviews are text: no YOLO
        ("compression", "lzma", InvalidInput, "deflate"),
    ],
)
def test_bad_input_names_the_problem_and_leaves_nothing(demo, tmp_path: Path, field, value, error, names):
    root, made = demo
    d = made["reviews"]
    ids = {"dataset_id": d.dataset_id, "version_id": d.version_id}
    options = {"format": d.format}
    (ids if field in ids else options)[field] = value
    out = tmp_path / "out.zip"
    with pytest.raises(error) as info:
        run_export(
            lambda: StoreSource(root),
            ids["dataset_id"],
            ids["version_id"],
            FileSink(out),
            ExportOptions(**options),
        )
    message = str(info.value)
    assert value in message and names in message, message
    assert list(tmp_path.iterdir()) == []


def test_output_folder_that_does_not_exist(tmp_path: Path):
    with pytest.raises(OutputError, match="does not exist"):
        FileSink(tmp_path / "missing" / "out.zip")


@pytest.fixture()
def blob_store(tmp_path: Path):
    """An image dataset with one small inline item and two file blobs."""
    root = tmp_path / "store"
    with Store.open(root) as store:
        ds = store.create_dataset("blobs", "images", default_splits=True)
        version = ds.versions[0]
        train = store.resolve_split(version.id, "train")
        label = store.create_label(version.id, "things")
        items = {}
        for name, data in [
            ("small", b"tiny"),
            ("medium", bytes(range(256)) * 400),  # 100 KiB: a file, prefetched
            ("large", hashlib.sha256(b"x").digest() * 100_000),  # 3.2 MB: streamed
        ]:
            info = store.put_blob(data)
            item = store.create_item(version.id, name=name, extension="bin", split_ids=[train.id], blob=info)
            store.annotate(item.id, train.id, label.id)
            items[name] = (item.id, info, data)
    return root, ds.id, version.id, items


def _blob_path(root: Path, info: BlobRef) -> Path:
    with Store.open(root) as store:
        return store.blobs.files.path_for(info.sha256)


def test_file_blobs_are_streamed_and_verified(blob_store, tmp_path: Path):
    root, ds_id, v_id, items = blob_store
    out = tmp_path / "a.zip"
    run_export(lambda: StoreSource(root), ds_id, v_id, FileSink(out), ExportOptions(format="folders"))
    entries = check_archive(out)
    for name, (_, _, data) in items.items():
        assert entries[f"train/things/{name}.bin"] == data


@pytest.mark.parametrize("victim", ["medium", "large"])
def test_missing_blob_fails_naming_the_item_and_leaves_nothing(blob_store, tmp_path: Path, victim: str):
    root, ds_id, v_id, items = blob_store
    item_id, info, _ = items[victim]
    _blob_path(root, info).unlink()
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(MissingBlob, match=item_id):
        run_export(
            lambda: StoreSource(root), ds_id, v_id, FileSink(out_dir / "a.zip"), ExportOptions(format="folders")
        )
    assert list(out_dir.iterdir()) == []


def test_skip_missing_exports_the_rest_and_reports(blob_store, tmp_path: Path):
    root, ds_id, v_id, items = blob_store
    item_id, info, _ = items["medium"]
    _blob_path(root, info).unlink()
    out = tmp_path / "a.zip"
    result = run_export(
        lambda: StoreSource(root), ds_id, v_id, FileSink(out), ExportOptions(format="folders", skip_missing=True)
    )
    assert result.skipped == [item_id] and result.skipped_count == 1
    assert sorted(check_archive(out)) == ["train/things/large.bin", "train/things/small.bin"]


@pytest.mark.parametrize("victim", ["medium", "large"])
def test_corrupt_blob_is_detected(blob_store, tmp_path: Path, victim: str):
    root, ds_id, v_id, items = blob_store
    _, info, data = items[victim]
    path = _blob_path(root, info)
    path.chmod(0o644)
    path.write_bytes(bytes([data[0] ^ 1]) + data[1:])  # same size, one bit off
    out = tmp_path / "a.zip"
    with pytest.raises(ContentError):
        run_export(lambda: StoreSource(root), ds_id, v_id, FileSink(out), ExportOptions(format="folders"))
    assert not out.exists() and list(tmp_path.iterdir()) == [root]


class SlowSink(FileSink):
    def write(self, data: bytes) -> None:
        time.sleep(0.05)
        super().write(data)


@pytest.mark.parametrize("backend", BACKENDS)
def test_cancellation_removes_the_partial_file(blob_store, tmp_path: Path, backend: str):
    root, ds_id, v_id, _ = blob_store
    out = tmp_path / "a.zip"

    async def main() -> None:
        source = StoreSource(root)
        with anyio.move_on_after(0.02) as scope:
            await export(source, ds_id, v_id, SlowSink(out), ExportOptions(format="folders"))
        await source.aclose()
        assert scope.cancelled_caught

    anyio.run(main, backend=backend)
    assert list(tmp_path.iterdir()) == [root]


def test_zip64_export_of_more_than_65535_entries(tmp_path: Path):
    from engine.store import NewItem

    root = tmp_path / "store"
    count = 66_000
    with Store.open(root) as store:
        ds = store.create_dataset("many", "images", default_splits=True)
        version = ds.versions[0]
        train = store.resolve_split(version.id, "train")
        added = store.add_items(
            version.id,
            (
                NewItem(name=f"img{i}", extension="png", split_ids=[train.id], data=i.to_bytes(4, "big"))
                for i in range(count)
            ),
        )
        assert added == count
    out = tmp_path / "many.zip"
    result = run_export(lambda: StoreSource(root), ds.id, version.id, FileSink(out), ExportOptions(format="folders"))
    assert result.entries == count
    assert b"PK\x06\x06" in out.read_bytes()[-200:]
    entries = check_archive(out)
    assert len(entries) == count
    assert entries["train/img65999.png"] == (65999).to_bytes(4, "big")
    assert zlib.crc32(entries["train/img7.png"]) == zlib.crc32((7).to_bytes(4, "big"))


def test_batches_of_small_items_in_hand_are_the_page_or_cut_at_the_limits(monkeypatch):
    from formats_support import item

    from engine import pipeline

    page = [item(str(i), content=b"x" * 10 if i % 3 else None) for i in range(50)]
    (batch,) = pipeline._batches(page)
    assert batch == page and batch is not page
    assert pipeline._batches([]) == []
    monkeypatch.setattr(pipeline, "BATCH_BYTES", 95)  # ten items of 10 bytes do not fit, nine do
    cut = pipeline._batches(page)
    assert [it for b in cut for it in b] == page
    assert all(sum(len(it.content or b"") for it in b) <= 95 for b in cut) and len(cut) > 1
    monkeypatch.setattr(pipeline, "BATCH_BYTES", 1 << 20)
    monkeypatch.setattr(pipeline, "BATCH_ITEMS", 16)
    assert [len(b) for b in pipeline._batches(page)] == [16, 16, 16, 2]
