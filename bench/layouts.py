"""The export layouts, written plainly, for the baselines to produce.

The baselines must write the same archive paths as our export, from the
same store, with the most obvious code a developer would write: no
collision handling, no name sanitising (the bench datasets have unique,
safe names), lists gathered in memory. :func:`entries` yields
``(arcname, content)`` pairs, where content is ``bytes``, a blob file's
``Path`` (large content), or an iterator of ``bytes`` chunks (one big
generated entry: a CSV body, a JSON array).

Every baseline (zipstream-plain, zipfile-memory, the materialised tree
for ``zip -r`` and ``cat``) consumes this one generator, so they differ
only in how they write.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from engine.store import PageContent, Store
from formats.paths import file_name

if TYPE_CHECKING:
    from bench.datasets import Dataset

__all__ = ["Content", "entries", "folder_path", "materialise", "write_content"]

Content = bytes | Path | Iterator[bytes]


def entries(dataset: Dataset, store: Store) -> Iterator[tuple[str, Content]]:
    """Every entry of the dataset's export, in our export's order."""
    return _LAYOUTS[dataset.format](dataset, store)


def folder_path(item) -> str:
    """The FOLDERS path of a single-label item in one split (the bench datasets' shape)."""
    name = file_name(item.name, item.id, item.extension)
    split = item.split.name if item.split is not None else ""
    label = item.annotations[0].label.name if item.annotations else ""
    return "/".join(part for part in (split, label, name) if part)


def write_content(content: Content, write) -> int:
    """Copy one entry's content into ``write``, in 1 MiB chunks for files; returns its size."""
    if isinstance(content, bytes):
        write(content)
        return len(content)
    size = 0
    if isinstance(content, Path):
        with open(content, "rb") as f:
            while chunk := f.read(1 << 20):
                size += len(chunk)
                write(chunk)
        return size
    for chunk in content:
        size += len(chunk)
        write(chunk)
    return size


def materialise(dataset: Dataset, target: Path, *, threads: int = 1) -> int:
    """Write the dataset's export as a folder tree under ``target``; returns the bytes written.

    ``threads=1`` is the plain way (the ``materialise`` contender); the
    cache's copy of the tree is written with a few threads, file creation
    being mostly waiting on the file system.
    """
    made: set[str] = set()

    def write(batch: list[tuple[str, Content]]) -> int:
        size = 0
        for path, content in batch:
            with open(target / path, "wb") as f:
                size += write_content(content, f.write)
        return size

    with Store.open(dataset.store, create=False) as store, ThreadPoolExecutor(threads) as pool:
        pending, batch, written = [], [], 0
        for path, content in entries(dataset, store):
            folder = path.rpartition("/")[0]
            if folder not in made:
                (target / folder).mkdir(parents=True, exist_ok=True)
                made.add(folder)
            if threads == 1:
                written += write([(path, content)])
                continue
            batch.append((path, content))
            if len(batch) >= 500:
                pending.append(pool.submit(write, batch))
                batch = []
            if len(pending) > 4 * threads:  # bounded: a few batches in flight
                written += pending.pop(0).result()
        pending.append(pool.submit(write, batch))
        written += sum(f.result() for f in pending)
    return written


def _content(item) -> bytes | Path:
    content = item.content
    if content is None:
        return b""
    return content if isinstance(content, bytes) else content.path


def _pages(dataset: Dataset, store: Store, *, with_content: bool, split_ids: list[str] | None = None):
    return store.iter_pages(
        dataset.version_id,
        split_ids,
        content=PageContent.BYTES if with_content else PageContent.NONE,
        include_unsplit=split_ids is None,
    )


def _folders(dataset: Dataset, store: Store) -> Iterator[tuple[str, Content]]:
    for page in _pages(dataset, store, with_content=True):
        for item in page:
            yield folder_path(item), _content(item)


def _yolo(dataset: Dataset, store: Store) -> Iterator[tuple[str, Content]]:
    labels = store.labels(dataset.version_id)
    index = {label.id: i for i, label in enumerate(labels)}
    lists: dict[str, list[str]] = {s.name: [] for s in store.splits(dataset.version_id)}
    for page in _pages(dataset, store, with_content=True):
        for item in page:
            image = f"{item.name}.{item.extension}"
            yield image, _content(item)
            boxes = "".join(f"{index[a.label.id]} {a.coordinates}\n" for a in item.annotations)
            yield f"{item.name}.txt", boxes.encode("ascii")
            lists[item.split.name].append(image)
    for split, images in lists.items():
        yield f"{split}.txt", "".join(f"{image}\n" for image in images).encode()
    yield f"{dataset.version_id}.names", "".join(f"{label.name}\n" for label in labels).encode()
    yield "config.json", json.dumps({"colors": {lb.name: lb.color for lb in labels}}).encode()


def _csv(dataset: Dataset, store: Store) -> Iterator[tuple[str, Content]]:
    version = store.get_version(dataset.dataset_id, dataset.version_id)
    columns = json.loads(version.config)["column_names"].split(",")

    def body() -> Iterator[bytes]:
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow([*columns, "labels", "split"])
        for page in _pages(dataset, store, with_content=False):
            for item in page:
                label = item.annotations[0].label.name if item.annotations else ""
                writer.writerow([*item.text.split(","), label, item.split.name if item.split else ""])
            yield text.getvalue().encode()
            text.seek(0)
            text.truncate()

    yield f"{dataset.version_id}.csv", body()
    config = {"multi_label": False, "label_column": "labels", "split_column": "split", "label_separator": " ",
              "filename": f"{dataset.version_id}.csv", "csv_separator": ","}
    yield "config.json", json.dumps(config).encode()


def _ner(dataset: Dataset, store: Store) -> Iterator[tuple[str, Content]]:
    encode = msgspec.json.Encoder().encode
    splits = store.splits(dataset.version_id)
    labels = store.labels(dataset.version_id)

    def array(split_id: str) -> Iterator[bytes]:
        sep = b"["
        for page in _pages(dataset, store, with_content=False, split_ids=[split_id]):
            docs = []
            for item in page:
                spans = [msgspec.json.decode(a.coordinates) for a in item.annotations]
                anns = sorted(
                    ({"start": s["start"], "end": s["end"], "label": a.label.name}
                     for s, a in zip(spans, item.annotations, strict=True)),
                    key=lambda e: (e["start"], e["end"]),
                )
                docs.append(encode({"id": item.id, "name": item.name, "text": item.text, "annotations": anns}))
            yield sep + b",".join(docs)
            sep = b","
        yield b"]" if sep == b"," else b"[]"

    for split in splits:
        yield f"{split.name}.json", array(split.id or "")
    colors = {label.name: label.color for label in labels}
    yield "config.json", json.dumps({"splits": [s.name for s in splits], "colors": colors}).encode()


def _coco(dataset: Dataset, store: Store) -> Iterator[tuple[str, Content]]:
    """COCO the obvious way: each split's document built as dicts in memory, dumped at the end."""
    labels = store.labels(dataset.version_id)
    category = {label.id: i + 1 for i, label in enumerate(labels)}
    docs = {
        s.name: {"info": {"description": "bench"}, "licenses": [],
                 "categories": [{"id": i + 1, "name": lb.name, "supercategory": ""} for i, lb in enumerate(labels)],
                 "images": [], "annotations": []}
        for s in store.splits(dataset.version_id)
    }
    image_id = 0
    for page in _pages(dataset, store, with_content=True):
        for item in page:
            image_id += 1
            name = f"{item.name}.{item.extension}"
            yield f"images/{item.split.name}/{name}", _content(item)
            doc = docs[item.split.name]
            doc["images"].append({"id": image_id, "file_name": name, "width": item.width, "height": item.height})
            for n, a in enumerate(item.annotations):
                cx, cy, w, h = (float(v) for v in a.coordinates.split())
                bw, bh = w * item.width, h * item.height
                bbox = [round(cx * item.width - bw / 2, 2), round(cy * item.height - bh / 2, 2), round(bw, 2), round(bh, 2)]
                doc["annotations"].append({"id": image_id * 10_000 + n, "image_id": image_id,
                                           "category_id": category[a.label.id], "segmentation": [], "bbox": bbox,
                                           "area": round(bbox[2] * bbox[3], 2), "iscrowd": 0})
    for split, doc in docs.items():
        yield f"annotations/instances_{split}.json", json.dumps(doc).encode()


def _ultralytics(dataset: Dataset, store: Store) -> Iterator[tuple[str, Content]]:
    labels = store.labels(dataset.version_id)
    index = {label.id: i for i, label in enumerate(labels)}
    splits = [s.name for s in store.splits(dataset.version_id)]
    folder = {name: "val" if name == "valid" else name for name in splits}
    for page in _pages(dataset, store, with_content=True):
        for item in page:
            split = folder[item.split.name]
            yield f"images/{split}/{item.name}.{item.extension}", _content(item)
            boxes = "".join(f"{index[a.label.id]} {a.coordinates}\n" for a in item.annotations)
            yield f"labels/{split}/{item.name}.txt", boxes.encode("ascii")
    config = [f"{folder[s]}: images/{folder[s]}" for s in splits] + ["names:"]
    config += [f"  {i}: {label.name}" for i, label in enumerate(labels)]
    yield "data.yaml", ("\n".join(config) + "\n").encode()


_LAYOUTS = {
    "folders": _folders, "yolo": _yolo, "csv": _csv, "spacy-ner": _ner, "coco": _coco, "ultralytics": _ultralytics,
}
