"""Pure helpers of the export download's conditional and partial requests (RFC 9110 §13, §14).

No I/O here: each function takes header values and answers, so every form
accepted and refused is unit-tested (``tests/server/test_http_range.py``).

Accepted ``Range``: one range of bytes, ``bytes=START-END``, ``bytes=START-``
or ``bytes=-SUFFIX``, with blanks around the whole value. Refused as
malformed (a 400): any other unit, several ranges, ``bytes=-``, signs,
blanks inside. Unsatisfiable (a 416 naming the size): a start at or past the
end, a start after the end, a suffix of 0.
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["content_range", "etag_of", "if_none_match_hits", "if_range_holds", "parse_range", "unsatisfied_range"]

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def etag_of(key: str) -> str:
    """A strong ETag (quoted) naming ``key``: 40 hex digits of its SHA-256."""
    return '"' + hashlib.sha256(key.encode()).hexdigest()[:40] + '"'


def if_none_match_hits(header: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` list names ``etag`` (then the answer is 304)."""
    return bool(header) and etag in [t.strip() for t in (header or "").split(",")]


def if_range_holds(header: str | None, etag: str) -> bool:
    """Whether a Range may be answered: no ``If-Range``, or one naming the current ``etag``."""
    return header is None or header.strip() == etag


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """(start, end inclusive) of a single ``bytes=`` range of ``size`` bytes; None if unsatisfiable.

    Raises ValueError if the header is malformed. An end past the last byte is cut to it.
    """
    m = _RANGE.fullmatch(header.strip())
    if m is None or m.groups() == ("", ""):
        raise ValueError(header)
    first, last = m.groups()
    if size <= 0:  # nothing to send a part of (no archive is empty: this guards the arithmetic)
        return None
    if first == "":
        length = int(last)
        if length == 0:
            return None
        return max(size - length, 0), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        return None
    return start, end


def content_range(start: int, end: int, size: int) -> str:
    """The ``Content-Range`` of a 206: ``bytes START-END/SIZE``."""
    return f"bytes {start}-{end}/{size}"


def unsatisfied_range(size: int) -> str:
    """The ``Content-Range`` of a 416: ``bytes */SIZE``."""
    return f"bytes */{size}"
