"""COCO and Ultralytics through the store: read by pycocotools, round trips, bad input, sizes of older stores.

The archives are read by an independent reader where one runs here
(pycocotools' ``COCO``), by Python's ``zipfile`` and ``unzip -tq``, and by
our own importer; the demo's "shapes" version has boxes drawn exactly where
they are stored.
"""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
import subprocess
import zipfile
from contextlib import closing, redirect_stdout
from pathlib import Path

import pytest
import yaml
from cli_run import dsexport
from PIL import Image

from engine.demo import create_demo
from engine.errors import InvalidInput
from engine.importer import import_archive
from engine.pipeline import ExportOptions, run_export
from engine.sinks import FileSink
from engine.sources import StoreSource
from engine.store import PageContent, Store
from formats.coordinates import parse_box
from formats.paths import file_name


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """A demo store; (its path, the shapes dataset, its version), boxes drawn where they are stored."""
    root = tmp_path_factory.mktemp("boxes") / "store"
    with Store.open(root, create=True) as store:
        made = create_demo(store, items=24, seed=5)
    shape = next(m for m in made if m.format == "yolo")
    return root, shape.dataset_id, shape.version_id


def _export(root: Path, dataset_id: str, version_id: str, fmt: str, out: Path, split: str | None = None) -> bytes:
    result = run_export(
        lambda: StoreSource(root), dataset_id, version_id, FileSink(out), ExportOptions(format=fmt, split=split)
    )
    assert result.image_labels_left_out == 0 and result.boxes
    return out.read_bytes()


def _unzip(data: bytes, folder: Path) -> Path:
    archive = folder.with_suffix(".zip")
    archive.write_bytes(data)
    if shutil.which("unzip"):
        assert subprocess.run(["unzip", "-tq", str(archive)], capture_output=True).returncode == 0
    with zipfile.ZipFile(archive) as zf:
        assert zf.testzip() is None
        zf.extractall(folder)
    return folder


def test_pycocotools_loads_every_json_and_every_bbox_is_the_stored_box(shapes, tmp_path: Path):
    from pycocotools.coco import COCO

    root, dataset_id, version_id = shapes
    folder = _unzip(_export(root, dataset_id, version_id, "coco", tmp_path / "coco.zip"), tmp_path / "coco")
    with Store.open(root, create=False) as store:
        splits = store.splits(version_id)
        occurrences = [i for page in store.iter_pages(version_id, content=PageContent.NONE) for i in page]
    assert sorted(p.name for p in (folder / "annotations").iterdir()) == sorted(
        f"instances_{s.name}.json" for s in splits
    )
    checked = 0
    for split in splits:
        with redirect_stdout(io.StringIO()):  # COCO() prints its progress
            coco = COCO(str(folder / "annotations" / f"instances_{split.name}.json"))
        items = [i for i in occurrences if i.split and i.split.id == split.id]
        assert [coco.imgs[i]["file_name"] for i in sorted(coco.getImgIds())] == [
            file_name(i.name, i.id, i.extension) for i in items
        ]
        assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == [lb.name for lb in store_labels(root, version_id)]
        for image_id, item in zip(sorted(coco.getImgIds()), items, strict=True):
            image = coco.imgs[image_id]
            with Image.open(folder / "images" / split.name / image["file_name"]) as picture:
                assert picture.size == (image["width"], image["height"]) == (item.width, item.height)
            got = [(a["category_id"], a["bbox"]) for a in coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))]
            want = []
            for annotation in item.annotations:
                box = parse_box(annotation.coordinates)
                position = [lb.id for lb in store_labels(root, version_id)].index(annotation.label.id)
                want.append((position + 1, [
                    (box.cx - box.w / 2) * item.width, (box.cy - box.h / 2) * item.height,
                    box.w * item.width, box.h * item.height,
                ]))
            assert [c for c, _ in got] == [c for c, _ in want]
            for (_, bbox), (_, expected) in zip(got, want, strict=True):
                assert bbox == pytest.approx(expected, abs=0.0051)  # rounded to 1/100 pixel
                checked += 1
    assert checked > 10


def store_labels(root: Path, version_id: str):
    with Store.open(root, create=False) as store:
        return store.labels(version_id)


def test_ultralytics_layout_and_data_yaml(shapes, tmp_path: Path):
    root, dataset_id, version_id = shapes
    folder = _unzip(_export(root, dataset_id, version_id, "ultralytics", tmp_path / "u.zip"), tmp_path / "u")
    config = yaml.safe_load((folder / "data.yaml").read_text())
    labels = store_labels(root, version_id)
    assert config == {
        "train": "images/train", "val": "images/val", "test": "images/test",
        "names": {i: lb.name for i, lb in enumerate(labels)},
    }
    images = sorted((folder / "images").rglob("*.png"))
    assert images and all((folder / "labels" / p.parent.name / (p.stem + ".txt")).is_file() for p in images)
    for txt in (folder / "labels").rglob("*.txt"):
        for line in txt.read_text().splitlines():
            cls, *box = line.split()
            assert 0 <= int(cls) < len(labels) and all(0 <= float(v) <= 1 for v in box) and len(box) == 4


@pytest.mark.parametrize("split", [None, "train"], ids=["whole", "split"])
@pytest.mark.parametrize("fmt", ["coco", "ultralytics"])
def test_export_import_export_gives_the_same_archive(shapes, tmp_path: Path, fmt: str, split: str | None):
    root, dataset_id, version_id = shapes
    first = _export(root, dataset_id, version_id, fmt, tmp_path / "first.zip", split)
    with Store.open(root, create=False) as store:
        fresh = store.create_version(dataset_id).id or ""
        counts = import_archive(store, fresh, io.BytesIO(first), fmt)
        assert counts.items and counts.annotations
    second = _export(root, dataset_id, fresh, fmt, tmp_path / "second.zip", split)
    assert second == first


# -- bad input: refused, naming the file and the object, the version untouched -------------------------------------


def _coco_archive(shapes, tmp_path: Path) -> dict[str, bytes]:
    root, dataset_id, version_id = shapes
    data = _export(root, dataset_id, version_id, "coco", tmp_path / "good.zip")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, body in members.items():
            zf.writestr(name, body)
    return out.getvalue()


def _edit_json(members: dict[str, bytes], change) -> dict[str, bytes]:
    doc = json.loads(members["annotations/instances_train.json"])
    change(doc)
    return {**members, "annotations/instances_train.json": json.dumps(doc).encode()}


def _first_box(doc: dict) -> dict:
    return doc["annotations"][0]


COCO_CASES = {
    "truncated": (lambda m: {**m, "annotations/instances_train.json": m["annotations/instances_train.json"][:-40]},
                  r"instances_train.json is not valid JSON: .*\(at annotations\[\d+\]\)"),
    "malformed": (lambda m: {**m, "annotations/instances_train.json": m["annotations/instances_train.json"].replace(
        b'"images":[{', b'"images":[{,', 1)}, r"instances_train.json is not valid JSON: .*images\[0\]"),
    "outside": (lambda m: _edit_json(m, lambda d: _first_box(d).update(bbox=[1, 1, 10_000, 5])),
                r"instances_train.json: annotations\[0\] \(image \d+\): bbox .* lies outside its \d+x\d+ image"),
    "unknown image": (lambda m: _edit_json(m, lambda d: _first_box(d).update(image_id=987654321)),
                      r"instances_train.json: annotations\[0\]: image_id 987654321 is not an image of"),
    "unknown category": (lambda m: _edit_json(m, lambda d: _first_box(d).update(category_id=77)),
                         r"instances_train.json: annotations\[0\]: category_id 77 is not a category of"),
    "missing image": (lambda m: _edit_json(m, lambda d: d["images"][1].update(file_name="nope.png")),
                      r"instances_train.json: images\[1\] \(id \d+\): no image 'nope.png' in the archive"),
    "bad bbox": (lambda m: _edit_json(m, lambda d: _first_box(d).update(bbox=[1, 2, 3])),
                 r"annotations\[0\]: 'bbox' must be \[x, y, width, height\]"),
}


@pytest.mark.parametrize("case", sorted(COCO_CASES))
def test_bad_coco_is_refused_naming_file_and_object_and_changes_nothing(shapes, tmp_path: Path, case: str):
    root, dataset_id, _ = shapes
    change, message = COCO_CASES[case]
    archive = _zip(change(_coco_archive(shapes, tmp_path)))
    with Store.open(root, create=False) as store:
        fresh = store.create_version(dataset_id).id or ""
        before = store.revision(fresh)
        with pytest.raises(InvalidInput, match=message):
            import_archive(store, fresh, io.BytesIO(archive), "coco")
        assert (store.revision(fresh), store.count_items(fresh), store.labels(fresh)) == (before, 0, [])


ULTRALYTICS_CASES = {
    "missing folder": ({"data.yaml": b"train: ../train/images\nval: ../valid/images\nnames: [a]\n",
                        "train/images/x.png": b"x", "train/labels/x.txt": b""},
                       r"data.yaml: split 'val' names the folder '../valid/images', which the archive does not hold"),
    "bad class": ({"data.yaml": b"train: images/train\nnames: {0: a}\n", "images/train/x.png": b"x",
                   "labels/train/x.txt": b"0 0.5 0.5 0.1 0.1\n3 0.5 0.5 0.1 0.1\n"},
                  r"labels/train/x.txt line 2: class '3' is not an index of data.yaml's names \(0..0\)"),
    "box outside": ({"data.yaml": b"train: images/train\nnames: [a]\n", "images/train/x.png": b"x",
                     "labels/train/x.txt": b"0 0.5 0.5 1.5 0.1\n"},
                    r"labels/train/x.txt line 1: object detection coordinates are relative and must lie in 0..1"),
    "orphan labels": ({"data.yaml": b"train: images/train\nnames: [a]\n", "images/train/x.png": b"x",
                       "labels/train/y.txt": b"0 0.5 0.5 0.1 0.1\n"}, r"labels/train/y.txt: a label file without its image"),
    "not yaml": ({"data.yaml": b"train: [unclosed\n", "images/train/x.png": b"x"}, r"data.yaml is not valid YAML"),
    "no names": ({"data.yaml": b"train: images/train\n", "images/train/x.png": b"x"}, r"'names' must map class indexes"),
}


@pytest.mark.parametrize("case", sorted(ULTRALYTICS_CASES))
def test_bad_ultralytics_is_refused_naming_file_and_line_and_changes_nothing(shapes, case: str):
    root, dataset_id, _ = shapes
    members, message = ULTRALYTICS_CASES[case]
    with Store.open(root, create=False) as store:
        fresh = store.create_version(dataset_id).id or ""
        before = store.revision(fresh)
        with pytest.raises(InvalidInput, match=message):
            import_archive(store, fresh, io.BytesIO(_zip(members)), "ultralytics")
        assert (store.revision(fresh), store.count_items(fresh), store.labels(fresh)) == (before, 0, [])


def test_a_roboflow_style_archive_imports(shapes):
    """``<split>/images`` and ``<split>/labels`` beside a data.yaml naming ``../<split>/images`` (Roboflow's layout)."""
    root, dataset_id, _ = shapes
    picture, large = io.BytesIO(), io.BytesIO()
    Image.new("RGB", (8, 6)).save(picture, "PNG")
    Image.frombytes("RGB", (200, 150), bytes(range(256)) * 352).save(large, "PNG", compress_level=0)
    assert len(large.getvalue()) > 64 << 10  # a blob file, written before the import's transaction
    members = {
        "data.yaml": b"train: ../train/images\nval: ../valid/images\nnc: 2\nnames: ['car', 'bus']\n",
        "README.roboflow.txt": b"exported",
        "train/images/a.png": picture.getvalue(), "train/labels/a.txt": b"1 0.5 0.5 0.25 0.5\n",
        "valid/images/b.png": large.getvalue(),
    }
    with Store.open(root, create=False) as store:
        fresh = store.create_version(dataset_id).id or ""
        counts = import_archive(store, fresh, io.BytesIO(_zip(members)), "ultralytics")
        assert (counts.items, counts.annotations) == (2, 1)
        assert [s.name for s in store.splits(fresh)] == ["train", "valid"]
        items = [i for page in store.iter_pages(fresh, content=PageContent.NONE) for i in page]
        assert [(i.name, i.width, i.height, [(a.label.name, a.coordinates) for a in i.annotations]) for i in items] == [
            ("a", 8, 6, [("bus", "0.5 0.5 0.25 0.5")]), ("b", 200, 150, []),
        ]


def test_the_cli_import_of_bad_coco_exits_2_naming_the_object(shapes, tmp_path: Path):
    root, dataset_id, _ = shapes
    change, _ = COCO_CASES["unknown category"]
    (tmp_path / "bad.zip").write_bytes(_zip(change(_coco_archive(shapes, tmp_path))))
    with Store.open(root, create=False) as store:
        fresh = store.create_version(dataset_id).id or ""
    done = dsexport("import", dataset_id, fresh, str(tmp_path / "bad.zip"), "--format", "coco", "--store", str(root))
    assert done.returncode == 2
    stderr = done.stderr.decode()
    assert "annotations[0]: category_id 77 is not a category of annotations/instances_train.json" in stderr
    assert "Traceback" not in stderr


# -- sizes of stores made before they were recorded ------------------------------------------------------------------


def test_measure_images_fills_in_an_older_store_and_coco_then_exports(shapes, tmp_path: Path):
    source, dataset_id, version_id = shapes
    root = tmp_path / "old"
    shutil.copytree(source, root)
    with closing(sqlite3.connect(root / "store.sqlite3")) as db:  # as migration 3 leaves an older store
        images = db.execute("SELECT count(*) FROM items WHERE width IS NOT NULL").fetchone()[0]
        db.execute("UPDATE items SET width = NULL, height = NULL")
        db.commit()
    with pytest.raises(InvalidInput, match=r"has no known image size.*dsexport store measure-images"):
        _export(root, dataset_id, version_id, "coco", tmp_path / "refused.zip")
    assert not (tmp_path / "refused.zip").exists()
    done = dsexport("store", "measure-images", "--store", str(root))
    assert done.returncode == 0, done.stderr
    assert images >= 24 and f"measured {images} images; 0 items hold no readable image" in done.stderr.decode()
    again = dsexport("store", "measure-images", "--store", str(root))
    assert "measured 0 images" in again.stderr.decode()
    fresh = _export(root, dataset_id, version_id, "coco", tmp_path / "measured.zip")
    assert fresh == _export(source, dataset_id, version_id, "coco", tmp_path / "original.zip")


def test_skip_missing_skips_images_without_a_size_and_names_them(shapes, tmp_path: Path):
    source, dataset_id, version_id = shapes
    root = tmp_path / "old"
    shutil.copytree(source, root)
    with closing(sqlite3.connect(root / "store.sqlite3")) as db:
        unsized = [r[0] for r in db.execute(
            "SELECT id FROM items WHERE version_id = ? ORDER BY id LIMIT 3", (version_id,))]
        db.executemany("UPDATE items SET width = NULL, height = NULL WHERE id = ?", [(i,) for i in unsized])
        db.commit()
    out = tmp_path / "skipped.zip"
    result = run_export(lambda: StoreSource(root), dataset_id, version_id, FileSink(out),
                        ExportOptions(format="coco", skip_missing=True))
    assert sorted(result.skipped) == sorted(unsized) and result.skipped_count == 3
    with zipfile.ZipFile(out) as zf:
        images = [json.loads(zf.read(n))["images"] for n in zf.namelist() if n.startswith("annotations/")]
    assert sum(len(i) for i in images) == result.items == 24 - 3
