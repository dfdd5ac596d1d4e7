"""ULTRALYTICS: object detection as Ultralytics YOLO (v5/v8/11) trains from it.

The layout Ultralytics' ``check_det_dataset`` reads (docs.ultralytics.com,
"Object Detection Datasets Overview"; not the darknet ``obj.data`` layout of
the spec's YOLO format, which Ultralytics does not accept):

    .
    +-- data.yaml
    +-- images/
    |  +-- train/
    |  |  +-- cat1.jpg
    |  +-- val/
    |     +-- cat4.jpg
    +-- labels/
       +-- train/
       |  +-- cat1.txt
       +-- val/
          +-- cat4.txt

    # data.yaml
    train: images/train
    val: images/val
    names:
      0: cat
      1: dog

A label file holds one line per box, ``class cx cy w h``: the label's
position in ``names`` and the box centre, width and height relative to the
image (0..1), as the store keeps them (seeme-api.md §8). Ultralytics finds an
image's labels by replacing ``images`` with ``labels`` in its path and the
extension with ``.txt``.

Choices where Ultralytics is silent or the store differs:

* **Split names**: a split is a folder under ``images/`` and ``labels/``
  and a key of ``data.yaml``. ``valid`` (the store's default name) is
  written as ``val``, the key Ultralytics reads; other names are kept
  (through ``safe_component``) and listed too, though Ultralytics reads
  only ``train``, ``val`` and ``test``. Splits are listed in export order,
  empty ones included. Two splits whose folders collide (``val`` and
  ``valid``) get :class:`~formats.paths.UniquePaths`' ``~<split_id>``.
* **Files**: as in the YOLO format, :func:`~formats.paths.file_name` made
  unique per folder; the label path is claimed with the image's, so
  ``cat.jpg`` and ``cat.png`` cannot share ``cat.txt``. An image without
  boxes gets an empty label file (Ultralytics counts it as a background
  image). An item in two splits is copied into both.
* **Image-level labels** (classification annotations, no box) are left out
  of the label files and counted (:mod:`formats.boxes`).
* **Items in no split**: the image at ``images/<file>``, no label file (they
  have no annotations), listed under no key.
* ``names`` maps index to name in export label order. There is no ``path``
  key: Ultralytics resolves a relative ``path`` (``.``) against the working
  directory, and takes the folder ``data.yaml`` is in when ``path`` is
  absent, which is where the archive was extracted. ``data.yaml`` is written by PyYAML
  (``safe_dump``, keys in this order), so any label name is quoted as YAML
  needs.

Reading (:meth:`UltralyticsFormat.read`): ``data.yaml`` at the archive root
names the splits (each key whose value is a folder path; ``val`` is read
back as the split ``valid``) and the labels (``names``, a mapping or a
list). A split's images are the files directly in its folder (a leading
``./`` or ``../`` is dropped, so a Roboflow ``../train/images`` reads
``train/images``); each one's boxes are in the file Ultralytics would read.
Files under ``images/`` in no split's folder are items in no split; other
files at the root (``README.txt``) are ignored. A split folder the archive
does not hold is refused, unless it is an ``images/<name>`` folder of an
archive in this format's layout (folders under ``images/`` and ``labels/`` only): that is an
empty split as this format writes it (a ZIP holds no empty folders). A label file without its image, a line that is not ``class cx cy w h``
with a class of ``names``, or a box outside 0..1 is refused naming the
file and line.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import ClassVar

import yaml

from engine.errors import InvalidInput
from engine.model import DatasetSplit
from formats.base import Entry, ExportContext, ExportItem
from formats.boxes import BoxReader, CountsBoxes
from formats.coordinates import parse_box
from formats.paths import UniquePaths, file_name, safe_component, split_ext, split_stem
from formats.reading import ArchiveReader, ImportTarget, PlanSink, refused

__all__ = ["UltralyticsFormat", "split_folder"]

#: Store split names written under another name, and back.
_WRITTEN_AS = {"valid": "val"}
_READ_AS = {v: k for k, v in _WRITTEN_AS.items()}
#: data.yaml keys that are not splits.
_NOT_SPLITS = frozenset({"path", "names", "nc", "download", "yaml_file", "channels"})


def split_folder(name: str) -> str:
    """The folder (and data.yaml key) of a split: ``valid`` -> ``val``, others as safe path components."""
    return _WRITTEN_AS.get(name, safe_component(name))


def _labels_path(image: str) -> str:
    """Where Ultralytics looks for an image's boxes: ``images/a/x.jpg`` -> ``labels/a/x.txt`` (the last ``images``)."""
    parts = image.split("/")
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return split_ext("/".join(parts))[0] + ".txt"


class UltralyticsFormat(CountsBoxes):
    """``data.yaml``, ``images/<split>/``, ``labels/<split>/``; see the module docstring."""

    name: ClassVar[str] = "ultralytics"

    def __init__(self, ctx: ExportContext) -> None:
        self._ctx = ctx
        self._paths = UniquePaths(ctx.names)
        self._yaml_path = self._paths.unique("data.yaml", "data")
        for top in ("images", "labels"):
            ctx.names.claim(top)  # the two folders: no file may take their names
        for key in _NOT_SPLITS:
            ctx.names.claim(f"images/{key}")  # a split called "names" must not become data.yaml's names
        self._folders: dict[str | None, str] = {}
        for split in ctx.splits:
            self._folder(split)
        self._boxes = BoxReader(ctx.labels)

    def _folder(self, split: DatasetSplit) -> str:
        """The split's folder name, claimed under both ``images/`` and ``labels/`` on first sight."""
        folder = self._folders.get(split.id)
        if folder is None:
            folder = self._paths.unique("images/" + split_folder(split.name), split.id or "split")
            folder = folder.removeprefix("images/")
            self._ctx.names.claim(("labels/" + folder).casefold())  # free: images/<folder> was
            self._folders[split.id] = folder
        return folder

    def entries(self, item: ExportItem) -> list[Entry]:
        data = b"" if item.content is None else item.content
        name = file_name(item.name, item.id, item.extension)
        if item.split is None:
            return [Entry(self._paths.unique("images/" + name, item.id), data)]
        folder = self._folders.get(item.split.id) or self._folder(item.split)
        image, labels = self._place(f"images/{folder}/{name}", item.id)
        return [Entry(image, data), Entry(labels, self._boxes.yolo_lines(item))]

    def _place(self, path: str, item_id: str) -> tuple[str, str]:
        """A free image path whose label file is free too; claims both."""
        while True:
            image = self._paths.unique(path, item_id)
            labels = _labels_path(image)
            if self._ctx.names.claim(labels.casefold()):
                return image, labels

    def finish(self) -> list[Entry]:
        config: dict[str, object] = {}  # no "path": the folder of data.yaml (see the module docstring)
        for split in self._ctx.splits:
            folder = self._folders[split.id]
            config[folder] = f"images/{folder}"
        config["names"] = {i: label.name for i, label in enumerate(self._ctx.labels)}
        text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True, default_flow_style=False, width=1 << 30)
        return [Entry(self._yaml_path, text.encode("utf-8"))]

    @classmethod
    def read(cls, archive: ArchiveReader, plan: PlanSink, target: ImportTarget) -> None:
        """Plan the splits, labels, images and boxes of an Ultralytics dataset (see "Reading" above)."""
        if not archive.has("data.yaml"):
            raise refused("an Ultralytics archive has data.yaml at its root")
        config = _load_config(archive.read_text("data.yaml"))
        names = _names(config)
        for label in names:
            plan.add_label(label)
        folders = _split_folders(config, archive)
        for split in folders.values():
            plan.add_split(split)
        label_files: list[str] = []
        for member in archive.members():
            path = member.name
            parent, _, base = path.rpartition("/")
            split = folders.get(parent)
            if split is None and parent != "images":
                if path.endswith(".txt") and "labels" in path.split("/")[:-1]:
                    label_files.append(path)
                elif parent:
                    raise refused(f"{path}: neither in a split folder of data.yaml nor directly in images/")
                continue  # data.yaml, README files at the root
            stem, ext = split_stem(base)
            item = plan.add_item(stem, ext, member=path, key=path, stem=_labels_path(path) if split else None)
            if split is not None:
                plan.add_membership(item, split)
        for labels in label_files:
            if not plan.has_stem(labels):
                raise refused(f"{labels}: a label file without its image (Ultralytics pairs images/…/x.* with labels/…/x.txt)")
        for item, labels, image in plan.stems():
            if not archive.has(labels):
                continue
            split = folders[image.rpartition("/")[0]]
            for n, line in enumerate(archive.lines(labels), start=1):
                if line.strip():
                    plan.annotate(item, _label_of(line, names, labels, n), split, _box_of(line, labels, n))


def _load_config(text: str) -> dict:
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise refused(f"data.yaml is not valid YAML: {str(exc).splitlines()[0]} ({exc})") from None
    if not isinstance(config, dict):
        raise refused("data.yaml is not a mapping of keys (path, train, val, test, names)")
    return config


def _names(config: dict) -> list[str]:
    """``names`` as a list in index order (a mapping 0..n-1 or a list)."""
    names = config.get("names")
    if isinstance(names, list):
        names = dict(enumerate(names))
    if not isinstance(names, dict) or not names:
        raise refused("data.yaml: 'names' must map class indexes 0, 1, ... to label names")
    if sorted(names) != list(range(len(names))):
        raise refused(f"data.yaml: 'names' must have the indexes 0..{len(names) - 1}, got {sorted(names, key=str)}")
    out = [names[i] for i in range(len(names))]
    if not all(isinstance(name, (str, int, float)) for name in out):
        raise refused("data.yaml: every entry of 'names' must be a label name")
    return [str(name) for name in out]


def _split_folders(config: dict, archive: ArchiveReader) -> dict[str, str]:
    """Folder in the archive -> split name, for every split key of data.yaml (in its order)."""
    base = _relative(config.get("path") or ".")
    existing = {m.name.rpartition("/")[0] for m in archive.members()}
    folders: dict[str, str] = {}
    missing: list[tuple[str, str]] = []
    for key, value in config.items():
        if key in _NOT_SPLITS or value is None:
            continue
        if not isinstance(value, str):
            raise refused(f"data.yaml: split {key!r} must name one folder, got {value!r}")
        candidates = [c for c in (_join(base, value), _relative(value)) if c]
        folder = next((c for c in candidates if c in existing), None)
        if folder is None:
            missing.append((str(key), value))
            folder = candidates[0] if candidates else ""
        folders[folder] = _READ_AS.get(str(key), str(key))
    # An empty split as this format writes one has no folder (a ZIP holds no empty folders): accepted
    # when the archive has this format's images/ folder (or no image at all), refused otherwise.
    ours = all(not f or f.split("/")[0] in ("images", "labels") for f in existing)
    for key, value in missing:
        if not ours or not _relative(value).startswith("images/"):
            raise refused(f"data.yaml: split {key!r} names the folder {value!r}, which the archive does not hold")
    return folders


def _relative(path: str) -> str:
    """An archive path from a data.yaml path: ``./`` and ``../`` dropped, no trailing ``/``."""
    parts = [p for p in PurePosixPath(str(path)).parts if p not in (".", "..", "/")]
    return "/".join(parts)


def _join(base: str, path: str) -> str:
    return _relative(f"{base}/{path}") if base else _relative(path)


def _label_of(line: str, names: list[str], file: str, n: int) -> str:
    fields = line.split()
    if len(fields) != 5:
        what = "a polygon (segments are not imported)" if len(fields) > 5 else f"{len(fields)} fields"
        raise refused(f"{file} line {n}: expected 'class cx cy w h', got {what}")
    if not fields[0].isdigit() or int(fields[0]) >= len(names):
        raise refused(f"{file} line {n}: class {fields[0]!r} is not an index of data.yaml's names (0..{len(names) - 1})")
    return names[int(fields[0])]


def _box_of(line: str, file: str, n: int) -> str:
    coordinates = " ".join(line.split()[1:])
    try:
        parse_box(coordinates)
    except InvalidInput as exc:
        raise refused(f"{file} line {n}: {exc}") from None
    return coordinates
