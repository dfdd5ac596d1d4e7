"""COCO and Ultralytics exports read by Datumaro, a peer's own importers, in an interpreter of their own.

Datumaro pins a Pillow older than ours, so it cannot share the test
environment: ``make install-test`` gives it a virtual environment of its own
(``.venv-readers/datumaro``, or ``$DSEXPORT_DATUMARO_PYTHON``), and
``tests/external_readers.py`` runs there on an extracted export, importing
only the standard library and Datumaro. Datumaro's ``coco_instances``
importer reads the COCO export; its ``yolo`` importer, which recognises the
Ultralytics layout (``data.yaml`` + ``images/<split>`` + ``labels/<split>``),
reads the Ultralytics one.
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


def _datumaro_python() -> str:
    python = os.environ.get("DSEXPORT_DATUMARO_PYTHON") or str(ROOT / ".venv-readers" / "datumaro" / "bin" / "python")
    if not Path(python).is_file():
        message = f"Datumaro's interpreter {python} is missing: `make install-test` creates it"
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
    done = subprocess.run(
        [_datumaro_python(), str(READER), reader, str(folder)], capture_output=True, text=True, timeout=240
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
