"""COCO and Ultralytics exports read by peers' own readers, each in an interpreter of its own.

Datumaro pins a Pillow older than ours and Ultralytics needs torch and
torchvision, so neither can share the test environment: ``make install-test``
gives each a virtual environment (``.venv-readers/datumaro`` and
``.venv-readers/ultralytics``, or ``$DSEXPORT_DATUMARO_PYTHON`` and
``$DSEXPORT_ULTRALYTICS_PYTHON``), and ``tests/external_readers.py`` runs there
on an extracted export, importing only the standard library and the reader.

- Datumaro's ``coco_instances`` importer reads the COCO export; its ``yolo``
  importer, which recognises the Ultralytics layout, the Ultralytics one.
- Ultralytics' ``check_det_dataset`` reads ``data.yaml`` and its
  ``verify_image_label`` checks every image and label file.
"""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from pathlib import Path

import pytest

from engine.demo import create_demo
from engine.pipeline import ExportOptions, run_export
from engine.sinks import FileSink
from engine.sources import StoreSource
from engine.store import PageContent, Store

ROOT = Path(__file__).resolve().parents[2]
READER = ROOT / "tests" / "external_readers.py"


def _reader_python(reader: str) -> str:
    """The interpreter of ``reader`` (datumaro, ultralytics): missing, a failure under CI, else a skip saying how to get it."""
    variable = f"DSEXPORT_{reader.upper()}_PYTHON"
    python = os.environ.get(variable) or str(ROOT / ".venv-readers" / reader / "bin" / "python")
    if not Path(python).is_file():
        message = f"{reader}'s interpreter {python} is missing: `make install-test` creates it (or set ${variable})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return python


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str, dict]:
    """A demo store's boxes version and what the store holds of it: images and boxes in splits, label names."""
    root = tmp_path_factory.mktemp("readers") / "store"
    with Store.open(root, create=True) as store:
        shape = next(m for m in create_demo(store, items=24, seed=7) if m.format == "yolo")
        occurrences = [i for page in store.iter_pages(shape.version_id, content=PageContent.NONE) for i in page]
        labels = [label.name for label in store.labels(shape.version_id)]
    in_splits = [i for i in occurrences if i.split is not None]
    held = {
        "images": len(in_splits),
        "boxes": sum(1 for i in in_splits for a in i.annotations if a.coordinates),
        "images_without_boxes": sum(1 for i in in_splits if not any(a.coordinates for a in i.annotations)),
        "subsets": sorted({i.split.name for i in in_splits}),
        "labels": labels,
    }
    assert held["boxes"] > held["images"] > 0 and len(held["subsets"]) > 1
    return root, shape.dataset_id, shape.version_id, held


def _read(reader: str, root: Path, ids: tuple[str, str], fmt: str, folder: Path) -> dict:
    archive = folder.with_suffix(".zip")
    run_export(lambda: StoreSource(root), *ids, FileSink(archive), ExportOptions(format=fmt))
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(folder)
    python = _reader_python(reader.partition("-")[0])
    env = {**os.environ, "YOLO_CONFIG_DIR": str(folder.parent / "ultralytics-settings"), "YOLO_OFFLINE": "1"}
    done = subprocess.run(
        [python, str(READER), reader, str(folder)], capture_output=True, text=True, timeout=240, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_datumaro_coco_instances_reads_every_image_box_and_category(shapes, tmp_path: Path):
    root, dataset_id, version_id, held = shapes
    read = _read("datumaro-coco", root, (dataset_id, version_id), "coco", tmp_path / "coco")
    assert (read["images"], read["boxes"]) == (held["images"], held["boxes"])
    assert read["subsets"] == held["subsets"] and read["labels"] == held["labels"]
    assert read["annotation_types"] == ["Bbox"]


def test_datumaro_yolo_importer_reads_the_ultralytics_layout(shapes, tmp_path: Path):
    root, dataset_id, version_id, held = shapes
    read = _read("datumaro-yolo", root, (dataset_id, version_id), "ultralytics", tmp_path / "ultralytics")
    assert (read["images"], read["boxes"]) == (held["images"], held["boxes"])
    assert read["labels"] == held["labels"] and read["annotation_types"] == ["Bbox"]
    assert len(read["subsets"]) == len(held["subsets"])  # Ultralytics spells `valid` as `val`


def test_ultralytics_own_checker_accepts_every_image_and_label_file(shapes, tmp_path: Path):
    root, dataset_id, version_id, held = shapes
    read = _read("ultralytics", root, (dataset_id, version_id), "ultralytics", tmp_path / "ultralytics")
    assert Path(read["root"]) == (tmp_path / "ultralytics").resolve()  # data.yaml's folder, whatever the cwd
    assert (read["images"], read["boxes"]) == (held["images"], held["boxes"])
    assert list(read["names"].values()) == held["labels"]
    assert read["background"] == held["images_without_boxes"]
