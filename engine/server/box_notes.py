"""The download headers of a box format (YOLO, Ultralytics, COCO): what it leaves out, said before the body.

The archive streams, so its counts are not known when the headers go out;
they are counted from the store instead (one query over the version's
annotations), and agree with what the format leaves out:

* ``X-Dsexport-Image-Labels-Left-Out``: image-level labels (annotations
  without a box) of the exported splits, which box formats do not hold;
* ``X-Dsexport-Warning``: when the export holds no box at all, the format
  that fits (``folders``).
"""

from __future__ import annotations

from engine.sources import ExportPlan
from engine.store.api import MetadataReader
from formats import FORMATS
from formats.boxes import LEFT_OUT_HEADER, left_out_note

__all__ = ["WARNING_HEADER", "box_headers"]

WARNING_HEADER = "x-dsexport-warning"


def box_headers(reader: MetadataReader, plan: ExportPlan, fmt: str) -> dict[str, str]:
    """The two headers for a box format's export (none for the others)."""
    if not getattr(FORMATS[fmt], "boxes_only", False):
        return {}
    split_ids = [plan.split.id or ""] if plan.split else None
    boxes, left_out = reader.annotation_counts(plan.version.id or "", split_ids)
    headers = {LEFT_OUT_HEADER: str(left_out)}
    if boxes == 0:
        note = left_out_note(fmt, left_out, boxes) or ""
        headers[WARNING_HEADER] = note.encode("ascii", "replace").decode("ascii")
    return headers
