"""Parsing of ``Annotation.coordinates``, per seeme-api.md §8.

Both the store (validating on input) and the formats (writing output) use
these, so a value the store accepted is always one a format can write.
"""

from __future__ import annotations

import math

import msgspec

from engine.errors import InvalidInput

__all__ = ["Box", "Span", "parse_box", "parse_span", "format_span"]


class Box(msgspec.Struct, frozen=True, array_like=True):
    """A YOLO box: relative centre x, centre y, width, height, all in 0..1."""

    cx: float
    cy: float
    w: float
    h: float


class Span(msgspec.Struct, frozen=True):
    """A named-entity span: character offsets, ``end`` exclusive."""

    start: int
    end: int


def parse_box(coordinates: str) -> Box:
    """``"cx cy w h"`` -> Box; anything else is an InvalidInput naming the value."""
    parts = coordinates.split()
    if len(parts) != 4:
        raise InvalidInput(
            f"object detection coordinates must be 'cx cy w h' (4 numbers), got {coordinates!r}"
        )
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise InvalidInput(f"object detection coordinates must be numbers, got {coordinates!r}") from None
    if not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in values):
        raise InvalidInput(
            f"object detection coordinates are relative and must lie in 0..1, got {coordinates!r}"
        )
    return Box(*values)


_span_decoder = msgspec.json.Decoder(Span)


def parse_span(coordinates: str, text: str | None = None) -> Span:
    """``{"start": S, "end": E}`` (or ``"S E"``) -> Span, checked against ``text``."""
    raw = coordinates.strip()
    try:
        if raw.startswith("{"):
            span = _span_decoder.decode(raw)
        else:
            start, end = raw.split()
            span = Span(int(start), int(end))
    except (ValueError, msgspec.DecodeError):
        raise InvalidInput(
            f'entity coordinates must be {{"start": S, "end": E}} or "S E", got {coordinates!r}'
        ) from None
    if not 0 <= span.start < span.end:
        raise InvalidInput(f"entity span needs 0 <= start < end, got {coordinates!r}")
    if text is not None and span.end > len(text):
        raise InvalidInput(
            f"entity span {span.start}..{span.end} runs past the text ({len(text)} characters)"
        )
    return span


def format_span(span: Span) -> str:
    """The canonical stored form of a span."""
    return f'{{"start": {span.start}, "end": {span.end}}}'
