"""COCO: object detection as the COCO dataset's ``instances`` files (cocodataset.org, "Data format").

    .
    +-- annotations/
    |  +-- instances_train.json
    |  +-- instances_valid.json
    +-- images/
       +-- train/
       |  +-- cat1.jpg
       +-- valid/
          +-- cat4.jpg

    {"info": {...}, "licenses": [],
     "categories": [{"id": 1, "name": "cat", "supercategory": ""}, ...],
     "images": [{"id": 1, "file_name": "cat1.jpg", "width": 640, "height": 480}, ...],
     "annotations": [{"id": 10000, "image_id": 1, "category_id": 1, "segmentation": [],
                      "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0}, ...]}

``bbox`` is absolute, in pixels: the top-left corner and the size. The store
keeps boxes relative (``cx cy w h`` in 0..1, seeme-api.md §8), so each
image's width and height are needed; they are measured from the content at
ingest (``engine.images``) and an image without them is an error naming the
item (``dsexport store measure-images`` fills in older stores), or skipped
like missing content with ``--skip-missing``.

Choices where COCO is silent:

* **One JSON per split**, ``annotations/instances_<split>.json`` (the split
  name through ``safe_component``), its images in ``images/<split>/`` under
  ``file_name`` (:func:`~formats.paths.file_name`, unique per folder).
  Splits without items get a JSON with empty arrays. An item in two splits
  is in both. Items in no split: the image at ``images/<file>``, in no JSON.
* **Ids**: ``categories`` are the labels in export order, id = position + 1
  (stable: the label order is the store's). An image's id is its position
  in the export's order + 1 (split by split, items by id), so ids are unique
  in the whole archive and do not depend on how the export was run. An
  annotation's id is ``image id * 10000 + n`` for the image's n-th box (an
  image with more than 10,000 boxes is refused).
* **Numbers**: ``bbox`` and ``area`` rounded to 1/100 pixel, written as the
  shortest decimal (``12.5``, ``3``): deterministic, and an import that
  turns them back into relative boxes exports the same numbers again.
* **Image-level labels** (classification annotations, no box) are left out
  and counted (:mod:`formats.boxes`).
* ``info`` holds the dataset's name; ``licenses`` is empty; no dates, so an
  unchanged version gives the same bytes. ``segmentation`` is an empty list:
  boxes only, but the field COCO readers (Datumaro) expect is there.
* **Streamed**: each JSON is written from two spools (``ctx.spool``), one
  for the ``images`` array and one for ``annotations``, each item adding its
  own records, so memory does not grow with the number of images.

Reading (:meth:`CocoFormat.read`): every ``annotations/*.json`` is a split
(``instances_train.json`` -> ``train``; a version without splits has
none, only ``images/``), read incrementally (``ijson``), in
three passes: ``categories`` (labels, in their order), ``images`` (items,
found at ``images/<split>/<file_name>`` or ``images/<file_name>``) and
``annotations`` (boxes, turned back into relative ``cx cy w h`` with the
image's width and height). Files under ``images/`` that no JSON names are
items in no split. Malformed or truncated JSON, an image file the archive
does not hold, an annotation naming an unknown image or category, or a box
outside its image is refused, naming the file and the object.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import msgspec

from engine.errors import InvalidInput
from engine.model import DatasetSplit
from formats.base import Blob, Content, Entry, ExportContext, ExportItem, Spool
from formats.boxes import BoxReader, CountsBoxes, num
from formats.paths import UniquePaths, file_name, safe_component, split_stem
from formats.reading import ArchiveReader, ImportTarget, PlanSink, refused

__all__ = ["CocoFormat", "coco_box", "relative_box"]

#: Annotation ids are ``image id * ANNOTATIONS_PER_IMAGE + n``.
ANNOTATIONS_PER_IMAGE = 10_000
#: A box may reach this far (pixels) past its image's edge and be clipped: the rounding of bbox numbers.
_EDGE = 0.01


class _Category(msgspec.Struct):
    id: int
    name: str
    supercategory: str = ""


class _Info(msgspec.Struct):
    description: str


_encode = msgspec.json.Encoder().encode


def coco_box(cx: float, cy: float, w: float, h: float, width: int, height: int) -> tuple[float, float, float, float]:
    """Relative centre box -> absolute ``[x, y, w, h]`` in pixels, rounded to 1/100."""
    bw, bh = w * width, h * height
    return (round(cx * width - bw / 2, 2) + 0.0, round(cy * height - bh / 2, 2) + 0.0, round(bw, 2), round(bh, 2))


def relative_box(x: float, y: float, w: float, h: float, width: int, height: int) -> str:
    """Absolute ``[x, y, w, h]`` -> the store's ``"cx cy w h"``; ValueError when it leaves the image."""
    if w < 0 or h < 0 or x < -_EDGE or y < -_EDGE or x + w > width + _EDGE or y + h > height + _EDGE:
        raise ValueError(f"bbox {[x, y, w, h]} lies outside its {width}x{height} image")
    x, y = max(x, 0.0), max(y, 0.0)
    w, h = min(w, width - x), min(h, height - y)
    values = ((x + w / 2) / width, (y + h / 2) / height, w / width, h / height)
    return " ".join(num(min(max(v, 0.0), 1.0)) for v in values)


class Joined:
    """One entry's payload made of several blobs, read one after the other (a JSON's two spooled arrays)."""

    def __init__(self, parts: list[Blob]) -> None:
        self._parts = parts
        self.size = sum(part.size for part in parts)
        self.crc32: int | None = None  # the zip writer computes it while streaming

    def chunks(self) -> Iterator[bytes]:
        for part in self._parts:
            yield from part.chunks()


class _SplitFile:
    __slots__ = ("annotations", "folder", "images", "path")

    def __init__(self, path: str, folder: str, images: Spool, annotations: Spool) -> None:
        self.path = path
        self.folder = folder
        self.images = images
        self.annotations = annotations


class CocoFormat(CountsBoxes):
    """``annotations/instances_<split>.json`` and ``images/<split>/``; see the module docstring."""

    name: ClassVar[str] = "coco"
    #: Items in a split need their image size (``--skip-missing`` skips those without, the engine's part).
    needs_sizes: ClassVar[bool] = True

    def __init__(self, ctx: ExportContext) -> None:
        self._ctx = ctx
        self._paths = UniquePaths(ctx.names)
        for top in ("images", "annotations"):
            ctx.names.claim(top)
        categories = [_Category(i + 1, label.name) for i, label in enumerate(ctx.labels)]
        self._head = (
            b'{"info":' + _encode(_Info(ctx.dataset.name)) + b',"licenses":[],"categories":'
            + _encode(categories) + b',"images":['
        )
        self._files: dict[str | None, _SplitFile] = {}
        for split in ctx.splits:
            self._file(split)
        self._boxes = BoxReader(ctx.labels)
        self._position = ctx.first  # the export-order position of the next occurrence

    def _file(self, split: DatasetSplit) -> _SplitFile:
        """The split's JSON and image folder, claimed (and its two spools made) on first sight."""
        found = self._files.get(split.id)
        if found is None:
            tag = split.id or "split"
            folder = self._paths.unique("images/" + safe_component(split.name), tag).removeprefix("images/")
            path = self._paths.unique(f"annotations/instances_{folder}.json", tag)
            images = self._ctx.spool(head=self._head, separator=b",", tail=b"],")
            annotations = self._ctx.spool(head=b'"annotations":[', separator=b",", tail=b"]}")
            found = self._files[split.id] = _SplitFile(path, folder, images, annotations)
        return found

    def entries(self, item: ExportItem) -> list[Entry]:
        image_id = self._position + 1
        self._position += 1
        data: Content = b"" if item.content is None else item.content
        name = file_name(item.name, item.id, item.extension)
        if item.split is None:
            return [Entry(self._paths.unique("images/" + name, item.id), data)]
        if item.width is None or item.height is None:
            raise InvalidInput(
                f"item {item.id!r} ({name}) has no known image size, which COCO's pixel boxes need: its content"
                " is no image Pillow can read, or the store predates sizes (run `dsexport store measure-images`)"
            )
        split = self._files.get(item.split.id) or self._file(item.split)
        path = self._paths.unique(f"images/{split.folder}/{name}", item.id)
        split.images.write(
            b'{"id":%d,"file_name":%s,"width":%d,"height":%d}'
            % (image_id, _encode(path.rpartition("/")[2]), item.width, item.height)
        )
        records = []
        for n, (position, box) in enumerate(self._boxes.boxes_of(item)):
            if n >= ANNOTATIONS_PER_IMAGE:
                raise InvalidInput(f"item {item.id!r} has more than {ANNOTATIONS_PER_IMAGE} boxes, COCO ids' limit here")
            x, y, w, h = coco_box(box.cx, box.cy, box.w, box.h, item.width, item.height)
            records.append(
                '{"id":%d,"image_id":%d,"category_id":%d,"segmentation":[],"bbox":[%s,%s,%s,%s],"area":%s,"iscrowd":0}'
                % (image_id * ANNOTATIONS_PER_IMAGE + n, image_id, position + 1, num(x), num(y), num(w), num(h),
                   num(round(w * h, 2)))
            )
        if records:
            split.annotations.write(",".join(records).encode("ascii"))
        return [Entry(path, data)]

    def finish(self) -> list[Entry]:
        return [
            Entry(split.path, Joined([split.images.close(), split.annotations.close()]))
            for split in self._files.values()
        ]

    @classmethod
    def read(cls, archive: ArchiveReader, plan: PlanSink, target: ImportTarget) -> None:
        """Plan the categories, images and boxes of a COCO archive (see "Reading" above)."""
        files = [m.name for m in archive.members() if m.name.startswith("annotations/") and m.name.endswith(".json")]
        if not files and not any(m.name.startswith("images/") for m in archive.members()):
            raise refused("a COCO archive holds annotations/instances_<split>.json and images/")
        for name in files:
            split = name[len("annotations/") : -len(".json")].removeprefix("instances_")
            if "/" in split or not split:
                raise refused(f"{name}: COCO annotation files are annotations/instances_<split>.json")
            plan.add_split(split)
            categories = _read_categories(archive, name, plan)
            _read_images(archive, name, split, plan)
            _read_annotations(archive, name, split, categories, plan)
        for member in archive.members():  # images no JSON names: items in no split
            path = member.name
            if path.startswith("images/") and plan.noted("member\0" + path) is None:
                if path.count("/") > 2:
                    raise refused(f"{path}: COCO images are images/<split>/<file> or images/<file>")
                stem, ext = split_stem(path.rpartition("/")[2])
                plan.add_item(stem, ext, member=path)
            elif not path.startswith(("images/", "annotations/")) and "/" in path:
                raise refused(f"{path}: a COCO archive holds annotations/ and images/ only")


def _field(obj: Any, key: str, kind: type, where: str) -> Any:
    value = obj.get(key) if isinstance(obj, dict) else None
    if kind is int and isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise refused(f"{where}: {key!r} must be a{'n' if kind is int else ''} {kind.__name__}, got {value!r}")
    return value


def _read_categories(archive: ArchiveReader, name: str, plan: PlanSink) -> dict[int, str]:
    categories: dict[int, str] = {}
    for n, category in archive.json_items(name, "categories"):
        where = f"{name}: categories[{n}]"
        cat_id, label = _field(category, "id", int, where), _field(category, "name", str, where)
        if cat_id in categories:
            raise refused(f"{where}: category id {cat_id} appears twice")
        categories[cat_id] = label
        plan.add_label(label)
    return categories


def _read_images(archive: ArchiveReader, name: str, split: str, plan: PlanSink) -> None:
    for n, image in archive.json_items(name, "images"):
        where = f"{name}: images[{n}]"
        image_id = _field(image, "id", int, where)
        file = _field(image, "file_name", str, where)
        width, height = _field(image, "width", int, where), _field(image, "height", int, where)
        if width <= 0 or height <= 0:
            raise refused(f"{where} (id {image_id}): width and height must be positive, got {width}x{height}")
        candidates = (f"images/{split}/{file}", f"images/{file}", file)
        member = next((c for c in candidates if archive.has(c)), None)
        if member is None:
            raise refused(f"{where} (id {image_id}): no image {file!r} in the archive (looked for {', '.join(candidates)})")
        key = f"coco\0{name}\0{image_id}"
        if plan.noted(key) is not None:
            raise refused(f"{where}: image id {image_id} appears twice")
        stem, ext = split_stem(file.rpartition("/")[2])
        item = plan.add_item(stem, ext, member=member)
        plan.add_membership(item, split)
        plan.note(key, f"{item} {width} {height}")
        plan.note("member\0" + member, "")


def _read_annotations(archive: ArchiveReader, name: str, split: str, categories: dict[int, str], plan: PlanSink) -> None:
    for n, annotation in archive.json_items(name, "annotations"):
        where = f"{name}: annotations[{n}]"
        image_id = _field(annotation, "image_id", int, where)
        category = _field(annotation, "category_id", int, where)
        bbox = annotation.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox)):
            raise refused(f"{where}: 'bbox' must be [x, y, width, height] in pixels, got {bbox!r}")
        found = plan.noted(f"coco\0{name}\0{image_id}")
        if found is None:
            raise refused(f"{where}: image_id {image_id} is not an image of {name}")
        if category not in categories:
            raise refused(f"{where}: category_id {category} is not a category of {name}")
        item, width, height = (int(v) for v in found.split())
        try:
            coordinates = relative_box(*(float(v) for v in bbox), width, height)
        except ValueError as exc:
            raise refused(f"{where} (image {image_id}): {exc}") from None
        plan.annotate(item, categories[category], split, coordinates)
