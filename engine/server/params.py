"""Query parameters and the If-Match header: declared once, parsed and documented from the declaration.

Every refusal is a 400 naming the parameter and its valid values; the
OpenAPI document states the same types and ranges (:meth:`Query.schema`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from engine.errors import InvalidInput
from engine.server.bodies import MAX_VERSION_NUMBER

__all__ = ["MAX_PAGE_COUNT", "MAX_PAGE_SIZE", "Query", "clip", "if_match", "parse_query"]

#: ``pageSize`` runs from 1 to this. A larger page is refused rather than shortened: a client
#: that stops at the first short page would take a shortened one for the last.
MAX_PAGE_SIZE = 10_000
#: ``pageCount`` runs from 0 to this (2^31 - 1): enough pages of one item for any version,
#: and ``pageCount * pageSize`` stays far inside SQLite's 64-bit OFFSET.
MAX_PAGE_COUNT = 2**31 - 1

_INTEGER = re.compile(r"[+-]?[0-9]{1,30}")  # longer is out of every range, and slow for int()
_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no", ""}


class Query(msgspec.Struct, frozen=True, kw_only=True):
    """One query parameter: its name on the wire, its type, and its valid values.

    ``kind`` is ``"str"`` (empty means absent: None), ``"bool"`` (true/1/yes,
    false/0/no, any case: the SDK sends Python's ``True``), ``"int"`` (in
    ``lowest..highest``) or ``"enum"`` (one of ``choices``; checked by the
    handler that takes it, which knows its message).
    """

    name: str
    kind: str = "str"
    description: str = ""
    default: Any = None
    lowest: int | None = None
    highest: int | None = None
    choices: tuple[str, ...] = ()

    def parse(self, value: str | None) -> Any:
        if self.kind == "bool":
            return _bool(value, self.name)
        if self.kind == "int":
            assert self.lowest is not None and self.highest is not None
            return _int(value, self.name, self.default, self.lowest, self.highest)
        return value or self.default

    def schema(self) -> dict[str, Any]:
        """The parameter as an OpenAPI ``parameters`` entry."""
        schema: dict[str, Any]
        if self.kind == "int":
            schema = {"type": "integer", "minimum": self.lowest, "maximum": self.highest}
        elif self.kind == "bool":
            schema = {"type": "boolean"}
        elif self.kind == "enum":
            schema = {"type": "string", "enum": list(self.choices)}
        else:
            schema = {"type": "string"}
        if self.default is not None:
            schema["default"] = self.default
        entry: dict[str, Any] = {"name": self.name, "in": "query", "schema": schema}
        if self.description:
            entry["description"] = self.description
        return entry


def parse_query(declared: Sequence[Query], given: Mapping[str, str]) -> dict[str, Any]:
    """The declared parameters' values (name on the wire -> value), in declaration order; 400 on the first bad one."""
    return {q.name: q.parse(given.get(q.name)) for q in declared}


def clip(text: str, limit: int = 40) -> str:
    """``text`` quoted for a message, cut short: an error must not echo a megabyte back."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _bool(value: str | None, name: str) -> bool:
    text = (value or "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidInput(f"{name} must be true or false, got {value!r}")


def _int(value: str | None, name: str, default: int, lowest: int, highest: int) -> int:
    """A query integer in ``lowest..highest``; anything else is a 400 naming the field and its range."""
    if value is None or value == "":
        return default
    number = int(value) if _INTEGER.fullmatch(value) else None
    if number is None or not lowest <= number <= highest:
        raise InvalidInput(f"{name} must be an integer from {lowest} to {highest}, got {clip(value)}")
    return number


def if_match(header: str | None) -> int | None:
    """``If-Match: "<version>"``; a version outside 0..MAX_VERSION_NUMBER can match nothing: a 400."""
    if header is None:
        return None
    text = header.strip().removeprefix("W/").strip('"')
    number = int(text) if _INTEGER.fullmatch(text) else None
    if number is None or not 0 <= number <= MAX_VERSION_NUMBER:
        raise InvalidInput(
            f'If-Match must be a quoted item version from 0 to {MAX_VERSION_NUMBER} like "3", got {clip(header)}'
        )
    return number
