"""Dataset generators and the tree writer, run as a child of ``python -m bench``.

``python -m bench.generate generate KIND PARAMS_JSON ROOT [--tree]`` builds a
store in ``ROOT.partial`` with ``add_items`` (and, with ``--tree``, the
export's folder tree) and renames it to ``ROOT``;
``python -m bench.generate tree ROOT`` writes the export's folder tree into
``ROOT/tree`` (see :func:`bench.layouts.materialise`).

Every generator is seeded by its kind and ``seed`` parameter, so its content
is the same on every run.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

from bench.datasets import Dataset, Params
from bench.layouts import materialise
from engine.model import ContentType
from engine.store import NewItem, PageContent, Store
from formats.coordinates import Span, format_span

__all__ = ["BUILDERS", "TreeWriter", "generate", "write_tree"]


class TreeWriter:
    """Writes files of the export's folder tree from worker threads while the store is built."""

    def __init__(self, target: Path, threads: int = 2) -> None:
        self._target = target
        self._pool = ThreadPoolExecutor(threads)
        self._pending: list[Future] = []
        self._batch: list[tuple[str, bytes]] = []
        self._folders: set[str] = set()

    def add(self, path: str, data: bytes) -> None:
        folder = path.rpartition("/")[0]
        if folder not in self._folders:
            (self._target / folder).mkdir(parents=True, exist_ok=True)
            self._folders.add(folder)
        self._batch.append((path, data))
        if len(self._batch) >= 1000:
            self._pending.append(self._pool.submit(self._write, self._batch))
            self._batch = []
            while len(self._pending) > 8:  # bounded: a few batches in flight
                self._pending.pop(0).result()

    def _write(self, batch: list[tuple[str, bytes]]) -> None:
        for path, data in batch:
            with open(self._target / path, "wb") as f:
                f.write(data)

    def close(self) -> None:
        self._pending.append(self._pool.submit(self._write, self._batch))
        for future in self._pending:
            future.result()
        self._pool.shutdown()


def generate(kind: str, params: Params, root: Path, *, tree: bool = False) -> None:
    """Build the dataset in ``root.partial`` and rename it into place when complete.

    With ``tree``, also write the export's folder tree: in passing for the
    small-items kind (its million files are written while the store is
    built), from the finished store for the others.
    """
    partial = root.with_name(root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    started = time.perf_counter()
    writer = TreeWriter(partial / "tree") if tree and kind in TREE_IN_PASSING else None
    with Store.open(partial / "store") as store:
        made = BUILDERS[kind](store, params, writer)
    if writer is not None:
        writer.close()
        (partial / "tree.done").write_text(f"{time.perf_counter() - started:.1f}\n")
    made.kind, made.params = kind, dict(params)
    made.generated_seconds = round(time.perf_counter() - started, 2)
    made.blob_files = [os.path.relpath(p, partial) for p in made.blob_files]
    record = asdict(made)
    record.pop("root")
    (partial / "dataset.json").write_text(json.dumps(record, indent=1))
    shutil.rmtree(root, ignore_errors=True)
    partial.rename(root)
    if tree and writer is None:
        write_tree(root)


def write_tree(root: Path) -> None:
    """Materialise the dataset's export under ``root/tree`` from its store, then mark it done."""
    dataset = Dataset.load(root)
    shutil.rmtree(dataset.tree, ignore_errors=True)
    started = time.perf_counter()
    materialise(dataset, dataset.tree, threads=2)
    (root / "tree.done").write_text(f"{time.perf_counter() - started:.1f}\n")


# -- generators -----------------------------------------------------------------

_SPLITS = (6, 2, 2)  # train, valid, test, dealt in a fixed pattern


def _split_of(i: int) -> int:
    slot = i % 10
    return 0 if slot < _SPLITS[0] else 1 if slot < _SPLITS[0] + _SPLITS[1] else 2


def _small(store: Store, p: Params, tree: TreeWriter | None = None) -> Dataset:
    """FOLDERS-shaped image classification: ``n`` items of ``size`` random bytes, 10 labels."""
    n, size = p["n"], p["size"]
    ds = store.create_dataset("bench-small", ContentType.IMAGES, default_splits=True)
    version = ds.versions[0]
    labels = [store.create_label(version.id or "", f"label{k}").id or "" for k in range(10)]
    splits = [s.id or "" for s in version.splits]
    split_names = [s.name for s in version.splits]
    rng = random.Random(f"bench-small:{p['seed']}")

    def rows() -> Iterator[NewItem]:
        for i in range(n):
            s, k = _split_of(i), rng.randrange(10)
            data = rng.randbytes(size)
            if tree is not None:  # the FOLDERS path of this item (bench.layouts.folder_path)
                tree.add(f"{split_names[s]}/label{k}/img{i:07d}.jpg", data)
            yield NewItem(
                name=f"img{i:07d}",
                extension="jpg",
                split_ids=[splits[s]],
                data=data,
                annotations=[(labels[k], splits[s], "")],
            )

    store.add_items(version.id or "", rows())
    return _made(store, ds.id, version.id, "folders", n, n * size)


def _yolo(store: Store, p: Params, tree: TreeWriter | None = None) -> Dataset:
    """Object detection: ``n`` "images" of ~``kib`` KiB random bytes (±20 %), 0-3 boxes each."""
    n, kib = p["n"], p["kib"]
    ds = store.create_dataset("bench-yolo", ContentType.IMAGES, default_splits=True)
    version = ds.versions[0]
    labels = [store.create_label(version.id or "", name).id or "" for name in ("car", "person", "bike", "dog")]
    splits = [s.id or "" for s in version.splits]
    rng = random.Random(f"bench-yolo:{p['seed']}")
    total = 0

    def rows() -> Iterator[NewItem]:
        nonlocal total
        for i in range(n):
            split = splits[_split_of(i)]
            size = rng.randrange(kib * 820, kib * 1229)  # 0.8x .. 1.2x of kib KiB
            total += size
            boxes = []
            for _ in range(rng.randrange(4)):
                w, h = rng.uniform(0.05, 0.5), rng.uniform(0.05, 0.5)
                cx, cy = rng.uniform(w / 2, 1 - w / 2), rng.uniform(h / 2, 1 - h / 2)
                boxes.append((labels[rng.randrange(4)], split, f"{cx:.6f} {cy:.6f} {w:.6f} {h:.6f}"))
            yield NewItem(
                name=f"img{i:06d}", extension="jpg", split_ids=[split], data=rng.randbytes(size), annotations=boxes
            )

    store.add_items(version.id or "", rows(), batch=1000)
    return _made(store, ds.id, version.id, "yolo", n, total, with_files=True)


def _blobs(store: Store, p: Params, tree: TreeWriter | None = None) -> Dataset:
    """Big blobs: ``n`` items of ``mib`` MiB each, stored as files, streamed in 1 MiB chunks."""
    n, mib = p["n"], p["mib"]
    ds = store.create_dataset("bench-blobs", ContentType.IMAGES, default_splits=True)
    version = ds.versions[0]
    label = store.create_label(version.id or "", "big").id or ""
    train = version.splits[0].id or ""
    rng = random.Random(f"bench-blobs:{p['seed']}")
    rows = []
    for i in range(n):
        info = store.put_blob_stream(rng.randbytes(1 << 20) for _ in range(mib))
        rows.append(NewItem(name=f"blob{i:02d}", extension="bin", split_ids=[train], blob=info,
                            annotations=[(label, train, "")]))
    store.add_items(version.id or "", rows)
    return _made(store, ds.id, version.id, "folders", n, n * (mib << 20), with_files=True)


def _boxes(store: Store, p: Params, tree: TreeWriter | None = None) -> Dataset:
    """Object detection for COCO and Ultralytics: ``n`` real PNGs (random pixels, stored uncompressed, so
    each is 66-110 KiB: a blob file), 0-3 boxes each; also ``boxes.jsonl``, the same images and boxes for
    Datumaro's exporter (``bench/datumaro_contender.py``), whose images are the tree's files."""
    import io

    from PIL import Image

    n = p["n"]
    ds = store.create_dataset("bench-boxes", ContentType.IMAGES, default_splits=True)
    version = ds.versions[0]
    names = ("car", "person", "bike", "dog")
    labels = [store.create_label(version.id or "", name).id or "" for name in names]
    splits = [s.id or "" for s in version.splits]
    split_names = [s.name for s in version.splits]
    rng = random.Random(f"bench-boxes:{p['seed']}")
    total = 0
    manifest = []

    def rows() -> Iterator[NewItem]:
        nonlocal total
        for i in range(n):
            s = _split_of(i)
            width, height = rng.randrange(170, 221), rng.randrange(130, 171)
            out = io.BytesIO()
            Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3)).save(out, "PNG", compress_level=0)
            data = out.getvalue()
            total += len(data)
            boxes, plain = [], []
            for _ in range(rng.randrange(4)):
                w, h = rng.uniform(0.05, 0.5), rng.uniform(0.05, 0.5)
                cx, cy = rng.uniform(w / 2, 1 - w / 2), rng.uniform(h / 2, 1 - h / 2)
                k = rng.randrange(4)
                boxes.append((labels[k], splits[s], f"{cx:.6f} {cy:.6f} {w:.6f} {h:.6f}"))
                plain.append([k, (cx - w / 2) * width, (cy - h / 2) * height, w * width, h * height])
            name = f"img{i:06d}"
            manifest.append({"id": name, "subset": split_names[s], "image": f"images/{split_names[s]}/{name}.png",
                             "size": [height, width], "boxes": plain})
            yield NewItem(name=name, extension="png", split_ids=[splits[s]], data=data, annotations=boxes)

    store.add_items(version.id or "", rows(), batch=1000)
    lines = [json.dumps({"categories": list(names)})] + [json.dumps(m) for m in manifest]
    (store.root.parent / "boxes.jsonl").write_text("\n".join(lines) + "\n")
    return _made(store, ds.id, version.id, "coco", n, total, with_files=True)


_WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu", "nu", "xi", "omicron", "pi", "rho"]


def _csv(store: Store, p: Params, tree: TreeWriter | None = None) -> Dataset:
    """Tabular: ``n`` rows of five numeric columns, three classes."""
    n = p["n"]
    ds = store.create_dataset("bench-csv", ContentType.TABULAR)
    version_id = ds.versions[0].id or ""
    store.update_version_config(version_id, json.dumps({"column_names": "a,b,c,d,e", "csv_separator": ","}))
    labels = [store.create_label(version_id, f"class{k}").id or "" for k in range(3)]
    splits = [store.create_split(version_id, s).id or "" for s in ("train", "test")]
    rng = random.Random(f"bench-csv:{p['seed']}")
    total = 0

    def rows() -> Iterator[NewItem]:
        nonlocal total
        for i in range(n):
            split = splits[0 if i % 10 < 8 else 1]
            text = ",".join(f"{rng.random() * 100:.3f}" for _ in range(5))
            total += len(text)
            yield NewItem(text=text, split_ids=[split], annotations=[(labels[rng.randrange(3)], split, "")])

    store.add_items(version_id, rows(), batch=50_000)
    return _made(store, ds.id, version_id, "csv", n, total)


def _ner(store: Store, p: Params, tree: TreeWriter | None = None) -> Dataset:
    """Named entities: ``n`` sentences of 8-20 words with 0-3 entity spans."""
    n = p["n"]
    ds = store.create_dataset("bench-ner", ContentType.NER)
    version_id = ds.versions[0].id or ""
    labels = [store.create_label(version_id, name).id or "" for name in ("PERSON", "ORG", "LOC")]
    splits = [store.create_split(version_id, s).id or "" for s in ("train", "test")]
    rng = random.Random(f"bench-ner:{p['seed']}")
    total = 0

    def rows() -> Iterator[NewItem]:
        nonlocal total
        for i in range(n):
            split = splits[0 if i % 10 < 7 else 1]
            words = [rng.choice(_WORDS) for _ in range(rng.randrange(8, 21))]
            text = " ".join(words)
            total += len(text.encode("utf-8"))
            anns = []
            spans = sorted(rng.sample(range(len(words)), rng.randrange(4)))
            offsets = [sum(len(w) + 1 for w in words[:k]) for k in spans]
            for k, start in zip(spans, offsets, strict=True):
                span = format_span(Span(start, start + len(words[k])))
                anns.append((labels[rng.randrange(3)], split, span))
            yield NewItem(name=f"doc{i:07d}", text=text, split_ids=[split], annotations=anns)

    store.add_items(version_id, rows(), batch=50_000)
    return _made(store, ds.id, version_id, "spacy-ner", n, total)


def _made(
    store: Store, dataset_id: str | None, version_id: str | None, fmt: str, items: int, payload: int,
    *, with_files: bool = False,
) -> Dataset:
    files: list[str] = []
    if with_files:
        for page in store.iter_pages(version_id or "", content=PageContent.BYTES, include_unsplit=True):
            files.extend(str(item.content.path) for item in page)  # type: ignore[union-attr]
    return Dataset(
        kind="", params={}, root="", dataset_id=dataset_id or "", version_id=version_id or "",
        format=fmt, items=items, payload_bytes=payload, blob_files=files,
    )


#: Kinds whose generator writes the tree in passing (``tree.add``); the rest get it from the store.
TREE_IN_PASSING = {"small"}

BUILDERS: dict[str, Callable[[Store, Params, TreeWriter | None], Dataset]] = {
    "small": _small,
    "yolo": _yolo,
    "blobs": _blobs,
    "csv": _csv,
    "ner": _ner,
    "boxes": _boxes,
}


if __name__ == "__main__":
    if sys.argv[1] == "generate":
        generate(sys.argv[2], json.loads(sys.argv[3]), Path(sys.argv[4]), tree="--tree" in sys.argv[5:])
    elif sys.argv[1] == "tree":
        write_tree(Path(sys.argv[2]))
    else:
        raise SystemExit(f"usage: python -m bench.generate generate KIND PARAMS ROOT | tree ROOT; got {sys.argv[1:]}")
