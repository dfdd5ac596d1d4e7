"""YOLO: object detection in YOLO v4 (darknet) layout, one flat folder.

From ``spec/export-datasets.txt`` (export_format: YOLO):

    For every dataset split a dataset_split_name.txt file gets created
    containing all the filenames for that dataset split. Every dataset item
    will have an image and a txt file associated with it. The txt file
    contains a list of annotations in Yolo format: label_index relative_x
    relative_y relative_width relative_height. The .names file contains the
    list of labels, where the index corresponds to the label_index in the
    annotation .txt files. The config.json file contains a json object with
    the color for every label.

    .
    +-- train.txt
    +-- valid.txt
    +-- test.txt
    +-- 1.jpg
    +-- 1.txt
    +-- 3.jpg
    +-- 3.txt
    +-- ...
    +-- `dataset_version_id`.names
    +-- config.json

    {"colors": {"label_1": "#36dfd4", "label_2": "#f0699e"}}

Choices where the spec is silent:

* **Image**: ``file_name(name, id, extension)`` made unique with
  :class:`~formats.paths.UniquePaths`; items without content (no blob) get
  an empty file. **Annotation file**: the image path with its extension
  replaced by ``.txt`` (``cat1.jpg`` -> ``cat1.txt``, extensionless ``cat1``
  -> ``cat1.txt``), claimed too, so ``cat.jpg`` and ``cat.png`` cannot share
  ``cat.txt``: the second image moves on to ``cat~<id>.png``. An "image"
  whose own extension is ``.txt`` gets ``<file>.txt.txt`` rather than
  overwriting itself.
* **Box lines**: ``"{label_index} {cx} {cy} {w} {h}\\n"``, one per
  annotation in stored order; ``label_index`` is the label's position in the
  export label order (``ctx.labels``), the line number in ``.names``. The
  coordinates are the stored ``"cx cy w h"`` (seeme-api.md §8), validated by
  :func:`~formats.coordinates.parse_box` and written as the shortest decimal
  that reads back as the same float, in positional notation (``0.5``, ``1``,
  ``0``, ``0.00001``): exact, deterministic, no exponent. An image without
  boxes gets an empty ``.txt``. An image-level label (the ``""`` of a
  classification annotation) is not a box: it is left out of the ``.txt``
  and counted (:mod:`formats.boxes`; the summary says how many, and a
  version without boxes fits the folders format better). Any other value
  ``parse_box`` rejects is an ``InvalidInput`` naming the item.
* **Split lists**: ``<safe split name>.txt`` (unique, a collision gets
  ``~<split_id>``), one archive path per line (``cat1.jpg``, relative to the
  archive root), ``\\n``-terminated, in item order. Splits without items get
  an empty list. Items in no split are stored but listed nowhere.
* **An item in two splits** is stored once and listed in both lists. Its
  ``.txt`` holds the boxes of its first occurrence (the first split in
  export order): the flat layout has one annotation file per image.
  The stored path is recalled from ``ctx.names`` (bounded memory), where
  the first occurrence left it.
* **.names**: ``<version_id>.names``, one label name per line in export
  order, line breaks inside a name (anything ``str.splitlines`` splits on)
  replaced by a space so line number = index. **config.json**:
  ``{"colors": {name: "#rrggbb"}}`` in label order, compact JSON; labels
  sharing a name share the key, the first one's colour is kept.
* The fixed names (``.names``, ``config.json``, split lists) are claimed
  before any item, so an item called ``config.json`` is renamed, not them.

Reading (:meth:`YoloFormat.read`): the archive is flat and has exactly one
``.names`` file. Every entry that is not a ``.txt``, the ``.names`` or
``config.json`` is an image (an item named by its stem); a ``.txt`` with an
image's stem holds that image's boxes, any other ``.txt`` is a split list
(``<split>.txt``) whose lines must name images of the archive. An image's
boxes annotate it in each split that lists it; ``config.json``'s colours go
to the labels of ``.names``.
"""

from __future__ import annotations

from typing import ClassVar

import msgspec

from engine.model import DatasetSplit
from formats.base import Entry, ExportContext, ExportItem, Spool
from formats.boxes import BoxReader, CountsBoxes
from formats.paths import UniquePaths, file_name, safe_component, split_ext, split_stem
from formats.reading import ArchiveReader, ImportTarget, PlanSink, refused

__all__ = ["YoloConfig", "YoloFormat"]


class YoloConfig(msgspec.Struct):
    """``config.json``: the colour of every label, by name."""

    colors: dict[str, str] = {}

# Everything str.splitlines() breaks on: a .names reader must see one line per label.
_LINE_BREAKS = str.maketrans(dict.fromkeys("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029", " "))


def _label_path(image: str) -> str:
    stem, ext = split_ext(image)
    return image + ".txt" if ext.casefold() == ".txt" else stem + ".txt"


class _SplitList:
    __slots__ = ("path", "spool")

    def __init__(self, path: str, spool: Spool) -> None:
        self.path = path
        self.spool = spool


class YoloFormat(CountsBoxes):
    """Flat YOLO v4 layout; see the module docstring."""

    name: ClassVar[str] = "yolo"

    def __init__(self, ctx: ExportContext) -> None:
        self._ctx = ctx
        self._claim = ctx.names.claim
        self._paths = UniquePaths(ctx.names)
        version = safe_component(ctx.version.id or "", fallback="dataset")
        self._names_path = self._paths.unique(safe_component(version + ".names"), "names")
        self._config_path = self._paths.unique("config.json", "config")
        self._lists: dict[str | None, _SplitList] = {}
        for split in ctx.splits:
            self._split_list(split)
        self._boxes = BoxReader(ctx.labels)

    def _split_list(self, split: DatasetSplit) -> _SplitList:
        entry = self._lists.get(split.id)
        if entry is None:
            path = self._paths.unique(
                safe_component(safe_component(split.name) + ".txt"), split.id or "split"
            )
            entry = self._lists[split.id] = _SplitList(path, self._ctx.spool())
        return entry

    def entries(self, item: ExportItem) -> list[Entry]:
        name = file_name(item.name, item.id, item.extension)
        if item.split is None:  # arrives once, after every split: no repeat to handle
            image, labels = self._place(name, item.id)
        else:
            image, labels = self._occurrence(item.id, name)
            listing = self._lists.get(item.split.id) or self._split_list(item.split)
            listing.spool.write((image + "\n").encode("utf-8"))
        if labels is None:  # stored by an earlier occurrence
            self._boxes.skip(item)
            return []
        data = b"" if item.content is None else item.content
        return [Entry(image, data), Entry(labels, self._boxes.yolo_lines(item))]

    def _occurrence(self, item_id: str, name: str) -> tuple[str, str | None]:
        """The image path and, on the first occurrence only, the ``.txt`` path.

        The first occurrence places the image and stores its path with a
        claim on the item id; a later one (the item in another split) reads
        it back. ``ctx.names`` keeps this in bounded memory.
        """
        key = "\0yolo:item\0" + item_id
        image = self._ctx.names.value(key)
        if image is None:
            image, labels = self._place(name, item_id)
            self._claim(key, image)
            return image, labels
        return image, None

    def _place(self, name: str, item_id: str) -> tuple[str, str]:
        """A free image path whose ``.txt`` is free too; claims both."""
        while True:
            image = self._paths.unique(name, item_id)
            labels = _label_path(image)
            if self._claim(labels.casefold()):
                return image, labels

    def finish(self) -> list[Entry]:
        out = [Entry(listing.path, listing.spool.close()) for listing in self._lists.values()]
        labels = self._ctx.labels
        names = "".join(label.name.translate(_LINE_BREAKS) + "\n" for label in labels)
        out.append(Entry(self._names_path, names.encode("utf-8")))
        colors: dict[str, str] = {}
        for label in labels:
            colors.setdefault(label.name, label.color)
        out.append(Entry(self._config_path, msgspec.json.encode(YoloConfig(colors))))
        return out

    @classmethod
    def read(cls, archive: ArchiveReader, plan: PlanSink, target: ImportTarget) -> None:
        """Plan the images, their boxes and the split lists of a YOLO archive (see "Reading" above)."""
        names = [m.name for m in archive.members() if m.name.endswith(".names") and "/" not in m.name]
        if len(names) != 1:
            raise refused(f"a YOLO archive has exactly one <version>.names file at its root; found {len(names)}")
        nested = next((m.name for m in archive.members() if "/" in m.name), None)
        if nested is not None:
            raise refused(f"{nested}: a YOLO archive is flat")
        label_names = list(archive.lines(names[0]))
        config = archive.read_json("config.json", YoloConfig) if archive.has("config.json") else YoloConfig()
        for label in label_names:
            plan.add_label(label, config.colors.get(label, ""))
        for member in archive.members():  # images, in archive order; each one's boxes are in <stem>.txt
            image = member.name
            if not image.endswith((".txt", ".names")) and image != "config.json":
                stem, ext = split_stem(image)
                plan.add_item(stem, ext, member=image, key=image, stem=stem)
        for member in archive.members():  # a .txt that is no image's box file lists a split's images
            listing = member.name
            if not listing.endswith(".txt") or plan.has_stem(listing[: -len(".txt")]):
                continue
            split = listing[: -len(".txt")]
            plan.add_split(split)
            for line in archive.lines(listing):
                if not line:
                    continue
                item = plan.find(line)
                if item is None:
                    raise refused(f"{listing} lists {line!r}, which is not an image in the archive")
                plan.add_membership(item, split)
        for item, stem, _ in plan.stems():
            boxes = stem + ".txt"
            if not archive.has(boxes):
                continue
            splits = plan.splits_of(item)
            for n, line in enumerate(archive.lines(boxes), start=1):
                if not line.strip():
                    continue
                fields = line.split()
                if len(fields) != 5 or not fields[0].isdigit() or int(fields[0]) >= len(label_names):
                    raise refused(f"{boxes} line {n}: expected 'label_index cx cy w h' with a label of {names[0]}")
                for split in splits:
                    plan.annotate(item, label_names[int(fields[0])], split, " ".join(fields[1:]))
