"""Benchmark datasets: generated once into ``bench/.cache/<key>/`` and reused.

Each dataset is a throwaway store made with :class:`engine.store.Store` and
``add_items`` (see :mod:`bench.generate`). Content is deterministic (seeded
``random.Random``), so the same parameters give the same bytes on every
machine; ids and timestamps differ between generations but never change
what is measured.

A dataset folder is complete once its ``dataset.json`` exists: generation
happens in ``<key>.partial/`` and is renamed into place at the end, so an
interrupted run regenerates instead of reusing half a store. The key holds
every parameter plus :data:`GENERATOR_VERSION`, so changing either makes a
new folder (old ones stay until ``rm -rf bench/.cache``).

Generation runs in a child process: this module is imported by the
orchestrating process, which must stay small because a forked child's peak
RSS starts from its parent's RSS at the fork (see :mod:`bench.measure`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CACHE", "FILE_BLOB_KINDS", "GENERATOR_VERSION", "Dataset", "ensure", "ensure_tree", "key"]

CACHE = Path(__file__).parent / ".cache"
#: Bump when a generator changes what it writes: old cache folders are then ignored.
GENERATOR_VERSION = 1

Params = dict[str, int]
#: Kinds whose content lives in blob files (``cat`` reads those, not a tree).
FILE_BLOB_KINDS = frozenset({"yolo", "blobs", "boxes"})


@dataclass
class Dataset:
    """A generated dataset: enough for every contender to find and size it."""

    kind: str
    params: Params
    root: str
    dataset_id: str
    version_id: str
    #: Our export format for it (``folders``, ``yolo``, ``csv``, ``spacy-ner``).
    format: str
    #: Item occurrences an export visits (every bench item is in one split).
    items: int
    #: Sum of the items' content bytes (blobs, or row/document text).
    payload_bytes: int
    #: Blob files of the store relative to ``root``, in export order (file-blob datasets).
    blob_files: list[str] = field(default_factory=list)
    generated_seconds: float = 0.0

    @property
    def store(self) -> Path:
        return Path(self.root) / "store"

    @property
    def tree(self) -> Path:
        """The export written out as plain files (for ``cat`` and ``zip -r``)."""
        return Path(self.root) / "tree"

    @property
    def has_tree(self) -> bool:
        return (Path(self.root) / "tree.done").is_file()

    @classmethod
    def load(cls, root: Path) -> Dataset:
        data = json.loads((root / "dataset.json").read_text())
        data["root"] = str(root)
        return cls(**data)


def key(kind: str, params: Params) -> str:
    """The cache folder name, e.g. ``small-n10000-seed0-size1024-g1``."""
    parts = [kind, *(f"{k}{v}" for k, v in sorted(params.items())), f"g{GENERATOR_VERSION}"]
    return "-".join(parts)


def ensure(
    kind: str, params: Params, *, tree: bool = False, cache: Path = CACHE, log: Callable[[str], None] = print
) -> Dataset:
    """The dataset for ``kind`` and ``params``, generated now (in a child) unless cached.

    ``tree``: also make sure the export's folder tree exists (for ``cat`` and ``zip -r``).
    """
    root = cache / key(kind, params)
    if not (root / "dataset.json").is_file():
        log(f"generating dataset {root.name}{' and its tree' if tree else ''} (once; cached in {cache})")
        _child("generate", kind, json.dumps(params), str(root), *(["--tree"] if tree else []))
        log(f"  generated in {Dataset.load(root).generated_seconds:.1f} s"
            + (f"; tree in {(root / 'tree.done').read_text().strip()} s" if tree else ""))
    dataset = Dataset.load(root)
    if tree:
        ensure_tree(dataset, log=log)
    return dataset


def ensure_tree(dataset: Dataset, log: Callable[[str], None] = print) -> Path:
    """The dataset's export as a folder tree in its cache folder, written once (in a child)."""
    if not dataset.has_tree:
        log(f"materialising the folder tree of {Path(dataset.root).name} (once)")
        _child("tree", dataset.root)
        log(f"  materialised in {(Path(dataset.root) / 'tree.done').read_text().strip()} s")
    return dataset.tree


def _child(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "bench.generate", *args], check=True)
