"""The rules every store back end checks before it writes: names, label fields, coordinates, colours.

They live apart from any back end so that the next one (PostgreSQL) applies
the same rules, word for word. A broken rule is an ``InvalidInput`` that
names the value.
"""

from __future__ import annotations

import re

from engine.errors import InvalidInput
from engine.model import ContentType
from formats.coordinates import format_span, parse_box, parse_span

__all__ = [
    "MAX_DESCRIPTION_LENGTH", "MAX_LABEL_INDEX", "MAX_NAME_LENGTH", "PALETTE",
    "check_coordinates", "check_label_fields", "check_name",
]


#: Label colours, assigned by a label's creation position in its version (matplotlib's tab20,
#: strong shades first, so the first ten labels are easy to tell apart).
PALETTE = tuple(
    "#1f77b4 #ff7f0e #2ca02c #d62728 #9467bd #8c564b #e377c2 #7f7f7f #bcbd22 #17becf"
    " #aec7e8 #ffbb78 #98df8a #ff9896 #c5b0d5 #c49c94 #f7b6d2 #c7c7c7 #dbdb8d #9edae5".split()
)
_COLOR = re.compile(r"#[0-9a-fA-F]{6}")


#: The longest name, in characters: names end up in archive paths and file names, where a
#: megabyte-long one helps nobody. The store checks those of datasets, labels and splits; the
#: HTTP API also those of versions, items and item states.
MAX_NAME_LENGTH = 256
#: The longest description the HTTP API takes, in characters.
MAX_DESCRIPTION_LENGTH = 10_000
#: Label indexes run from 0 to this (the signed 32-bit range: every client language holds it,
#: and SQLite's 64-bit INTEGER cannot overflow on ``max(idx) + 1``).
MAX_LABEL_INDEX = 2**31 - 1


def check_name(kind: str, name: object) -> None:
    """A name is non-empty and at most :data:`MAX_NAME_LENGTH` characters."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f"a {kind} needs a non-empty name, got {name!r}")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(f"a {kind} name is at most {MAX_NAME_LENGTH} characters long, got {len(name)}")


def check_label_fields(name: object, color: object, index: object) -> None:
    """The checks a label's fields pass on creation and on update alike."""
    check_name("label", name)
    if color and not (isinstance(color, str) and _COLOR.fullmatch(color)):
        raise InvalidInput(f"label colour must look like #rrggbb, got {color!r}")
    if index is not None and (
        isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= MAX_LABEL_INDEX
    ):
        raise InvalidInput(f"label index must be an integer from 0 to {MAX_LABEL_INDEX}, got {index!r}")


def check_coordinates(content_type: str, coordinates: str, text: str | None) -> str:
    """The stored form of ``coordinates`` for a dataset of ``content_type``, or InvalidInput."""
    if content_type == ContentType.NER.value:
        return format_span(parse_span(coordinates, text or ""))
    if content_type == ContentType.IMAGES.value and coordinates.strip():
        parse_box(coordinates)
        return " ".join(coordinates.split())
    if coordinates.strip():
        raise InvalidInput(
            f"{content_type} datasets take classification annotations with empty coordinates, got {coordinates!r}"
        )
    return ""

