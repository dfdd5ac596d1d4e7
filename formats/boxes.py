"""What the box formats (YOLO, Ultralytics, COCO) share: an item's boxes, and what is left out.

A classification annotation (coordinates ``""``) labels the whole image; it
is not a box. The box formats write the images and their boxes and leave
image-level labels out of the label files, as CVAT does with tags, counting
them in :attr:`BoxReader.left_out` (the CLI's summary and the download's
``X-Dsexport-Image-Labels-Left-Out`` header say how many). A version with
no box at all still exports; its image-level labels fit ``folders``.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import ClassVar

from engine.errors import InvalidInput
from engine.model import ContentType, Dataset, Label
from formats.base import ExportItem
from formats.coordinates import Box, parse_box

__all__ = ["LEFT_OUT_HEADER", "BoxReader", "CountsBoxes", "left_out_note", "num"]

#: The download response header that counts the image-level labels a box format left out.
LEFT_OUT_HEADER = "x-dsexport-image-labels-left-out"


def num(value: float) -> str:
    """Shortest round-trip decimal, positional: ``0.5``, ``1``, ``0.00001`` (exact, deterministic, no exponent)."""
    text = repr(value + 0.0)  # + 0.0 turns -0.0 into 0.0
    if "e" in text:
        return format(Decimal(text), "f")
    return text[:-2] if text.endswith(".0") else text


class BoxReader:
    """An item's boxes with each label's export position; image-level labels skipped and counted."""

    def __init__(self, labels: list[Label]) -> None:
        self._position = {label.id: i for i, label in enumerate(labels)}
        #: Image-level labels (annotations without coordinates) left out so far.
        self.left_out = 0
        #: Boxes handed out so far.
        self.boxes = 0

    def boxes_of(self, item: ExportItem) -> Iterator[tuple[int, Box]]:
        """(label position, box) of each box annotation of the occurrence, in stored order."""
        for annotation in item.annotations:
            position = self._position.get(annotation.label.id)
            if position is None:
                raise InvalidInput(
                    f"item {item.id!r}: label {annotation.label.name!r} is not one of the version's labels"
                )
            if not annotation.coordinates.strip():
                self.left_out += 1
                continue
            try:
                box = parse_box(annotation.coordinates)
            except InvalidInput as exc:
                raise InvalidInput(f"item {item.id!r}: {exc}") from None
            self.boxes += 1
            yield position, box

    def yolo_lines(self, item: ExportItem) -> bytes:
        """``"{label_position} {cx} {cy} {w} {h}\\n"`` per box: the label file of YOLO and Ultralytics."""
        return "".join(
            f"{position} {num(b.cx)} {num(b.cy)} {num(b.w)} {num(b.h)}\n" for position, b in self.boxes_of(item)
        ).encode("ascii")

    def skip(self, item: ExportItem) -> None:
        """Count the occurrence's image-level labels; its boxes are not written (a repeat whose file is)."""
        self.left_out += sum(1 for a in item.annotations if not a.coordinates.strip())


class CountsBoxes:
    """What every box format is: images only, their content written, image-level labels left out;
    and the counts it reports (the export summary reads them), from its ``_boxes`` reader."""

    content_types: ClassVar[frozenset[str]] = frozenset({ContentType.IMAGES.value})
    #: A box format: image-level labels are left out (the server's notes read this).
    boxes_only: ClassVar[bool] = True
    _boxes: BoxReader

    @classmethod
    def needs_content(cls, dataset: Dataset) -> bool:
        return True

    @property
    def image_labels_left_out(self) -> int:
        """Image-level labels (no box) left out of the label files so far."""
        return self._boxes.left_out

    @property
    def boxes_written(self) -> int:
        return self._boxes.boxes


def left_out_note(format_name: str, left_out: int, boxes: int | None) -> str | None:
    """What a box format's export tells its user: image-level labels left out, and a version without boxes."""
    if boxes is None:
        return None
    notes = []
    if left_out:
        notes.append(
            f"left out {left_out} image-level label(s) (annotations without a box): {format_name} holds boxes only"
        )
    if boxes == 0:
        notes.append(f"no boxes in this export: its images carry no {format_name} labels; the folders format holds image-level labels")
    return "; ".join(notes) or None
