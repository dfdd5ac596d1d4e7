"""Export formats: one module per layout of ``spec/export-datasets.txt``, plus Ultralytics and COCO.

``FORMATS`` maps the format's name (the CLI and HTTP value) to its class.
Adding a format is adding one module and one line here.
"""

from __future__ import annotations

from engine.errors import InvalidInput, choices_hint
from formats.base import Entry, ExportContext, ExportItem, Format
from formats.coco import CocoFormat
from formats.csv import CsvFormat
from formats.folders import FoldersFormat
from formats.spacy_ner import SpacyNerFormat
from formats.ultralytics import UltralyticsFormat
from formats.yolo import YoloFormat

__all__ = [
    "FORMATS",
    "CocoFormat",
    "CsvFormat",
    "Entry",
    "ExportContext",
    "ExportItem",
    "FoldersFormat",
    "Format",
    "SpacyNerFormat",
    "UltralyticsFormat",
    "YoloFormat",
    "get_format",
    "natural_format",
]

FORMATS: dict[str, type[Format]] = {
    FoldersFormat.name: FoldersFormat,
    YoloFormat.name: YoloFormat,
    CsvFormat.name: CsvFormat,
    SpacyNerFormat.name: SpacyNerFormat,
    # Beyond the spec's four: the layouts training code reads today.
    UltralyticsFormat.name: UltralyticsFormat,
    CocoFormat.name: CocoFormat,
}


def get_format(name: str) -> type[Format]:
    """The format class for ``name`` (case-insensitive; ``_`` may stand for ``-``)."""
    key = name.strip().lower().replace("_", "-")
    try:
        return FORMATS[key]
    except KeyError:
        raise InvalidInput(
            f"unknown export format {name!r}; valid formats: {choices_hint(FORMATS)}"
        ) from None


def natural_format(content_type: str, *, has_boxes: bool = False) -> str:
    """The format a dataset is exported in when none is asked for.

    Images and text: folders, except image datasets with boxes (object
    detection): yolo. Tabular: csv. Named entities: spacy-ner.
    """
    if content_type == "images" and has_boxes:
        return YoloFormat.name
    natural = {"images": FoldersFormat, "text": FoldersFormat, "tabular": CsvFormat, "ner": SpacyNerFormat}
    try:
        return natural[content_type].name
    except KeyError:
        raise InvalidInput(
            f"unknown content type {content_type!r}; valid: {choices_hint(natural)}"
        ) from None
