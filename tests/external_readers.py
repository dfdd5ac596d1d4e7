"""Checks of extracted exports by readers that cannot share the test environment, run by hand.

Datumaro pins Pillow below ours and Ultralytics needs torch and
torchvision, so neither is a test dependency; run this file with an
interpreter that has them, on an extracted export::

    python tests/external_readers.py datumaro-coco DIR        # datumaro: coco_instances importer
    python tests/external_readers.py datumaro-yolo DIR        # datumaro: the yolo importer (Ultralytics layout)
    python tests/external_readers.py ultralytics DIR          # ultralytics: check_det_dataset + verify_image_label

Each prints what it read (images, boxes, labels) as one JSON line and exits
non-zero if the reader rejects the export. It imports only the standard
library and the reader, never this project.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def datumaro(folder: Path, name: str) -> dict:
    import datumaro as dm

    dataset = dm.Dataset.import_from(str(folder), name)
    labels = [c.name for c in dataset.categories()[dm.AnnotationType.label]]
    kinds = sorted({type(a).__name__ for item in dataset for a in item.annotations})
    return {"images": len(dataset), "subsets": sorted(dataset.subsets()), "labels": labels,
            "boxes": sum(len(item.annotations) for item in dataset), "annotation_types": kinds}


def ultralytics(folder: Path) -> dict:
    from ultralytics.data.utils import check_det_dataset, img2label_paths, verify_image_label

    data = check_det_dataset(str(folder / "data.yaml"))
    names = data["names"]
    out = {"root": str(data["path"]), "names": names, "images": 0, "boxes": 0, "background": 0}
    for split in ("train", "val", "test"):
        if not data.get(split) or not Path(data[split]).is_dir():
            continue
        images = sorted(str(p) for p in Path(data[split]).iterdir())
        for image, labels in zip(images, img2label_paths(images), strict=True):
            _, boxes, _, _, _, missing, _, empty, corrupt, message = verify_image_label(
                (image, labels, "", False, len(names), 0, 0, False)
            )
            if missing or corrupt:
                raise SystemExit(f"{image}: {message or 'label file missing'}")
            out["images"] += 1
            out["boxes"] += len(boxes)
            out["background"] += empty
    return out


if __name__ == "__main__":
    reader, folder = sys.argv[1], Path(sys.argv[2]).resolve()
    if reader == "ultralytics":
        result = ultralytics(folder)
    else:
        result = datumaro(folder, {"datumaro-coco": "coco_instances", "datumaro-yolo": "yolo"}[reader])
    print(json.dumps(result))
