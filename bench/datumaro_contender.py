"""The Datumaro contender: Datumaro's own COCO exporter over the benchmark's images and boxes.

``python -m bench.datumaro_contender DATASET_ROOT OUT_DIR`` reads
``boxes.jsonl`` (written with the ``boxes`` dataset: categories, then one
line per image with its split, size and absolute boxes) and the images of
the dataset's folder tree, builds a ``datumaro.Dataset`` the way its
documentation does (``Dataset.from_iterable``), and exports it with
``coco_instances`` and ``save_media=True`` into ``OUT_DIR/coco``: the same
images and boxes our ``coco`` export writes, as a folder (Datumaro writes no
archive). Prints the harness's one JSON line.

It imports Datumaro and the standard library only, so it can run on an
interpreter of its own: Datumaro pins Pillow below the one our environment
has, so ``DSEXPORT_BENCH_DATUMARO_PYTHON`` may name a separate environment's
``python`` (``bench/README.md``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def main(root: Path, out: Path) -> dict:
    import datumaro as dm
    from datumaro.components.annotation import Bbox
    from datumaro.components.media import Image

    with open(root / "boxes.jsonl") as f:
        categories = json.loads(f.readline())["categories"]
        records = [json.loads(line) for line in f]
    tree = root / "tree"
    items = [  # a list, as Datumaro's documentation builds one (a generator is read once, and Datumaro reads twice)
        dm.DatasetItem(
            id=r["id"],
            subset=r["subset"],
            media=Image.from_file(path=str(tree / r["image"]), size=tuple(r["size"])),
            annotations=[Bbox(x, y, w, h, label=k) for k, x, y, w, h in r["boxes"]],
        )
        for r in records
    ]
    dataset = dm.Dataset.from_iterable(items, categories=categories)
    target = out / "coco"
    dataset.export(str(target), "coco_instances", save_media=True)
    files = [Path(d) / name for d, _, names in os.walk(target) for name in names]
    return {"archive_bytes": sum(p.stat().st_size for p in files), "entries": len(files)}


if __name__ == "__main__":
    started = time.perf_counter()
    result = main(Path(sys.argv[1]), Path(sys.argv[2]))
    result["inner_seconds"] = time.perf_counter() - started
    print(json.dumps(result), flush=True)
