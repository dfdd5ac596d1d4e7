"""The operator's limits on one import, read from the environment on every import.

Why every import: a server picks them up from its environment and a test
can set them per process. Sizes take the form ``16M``: bytes, or with K, M,
G or T (binary).

- ``DSEXPORT_IMPORT_MAX_TEXT`` (16 MiB): one text item, one line.
- ``DSEXPORT_IMPORT_MAX_DOCUMENT`` (64 MiB): one JSON document read whole.
- ``DSEXPORT_IMPORT_MAX_ENTRIES`` (1,000,000): entries in one archive.
- ``DSEXPORT_IMPORT_MAX_UPLOAD`` (16 GiB): one uploaded archive (HTTP).
- ``DSEXPORT_IMPORT_MAX_BYTES`` (64 GiB): the uncompressed total of one archive.
"""

from __future__ import annotations

import os
import re

from engine.errors import InvalidInput

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MAX_BYTES_ENV",
    "max_document",
    "max_entries",
    "max_import_bytes",
    "max_text",
    "max_upload",
]

#: Environment variable with the operator's cap on an import's uncompressed bytes (``10G``, ``512M``, ``1048576``).
MAX_BYTES_ENV = "DSEXPORT_IMPORT_MAX_BYTES"
DEFAULT_MAX_BYTES = 64 << 30

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE = re.compile(r"(\d+)\s*([KMGT]?)(?:i?B)?", re.IGNORECASE)
_COUNT = re.compile(r"(\d+)()")


def _limit(name: str, default: int, *, sizes: bool = True, example: str = "16M") -> int:
    """An operator's limit from the environment, or ``default`` when unset."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    match = (_SIZE if sizes else _COUNT).fullmatch(raw)
    if match is None or int(match[1]) == 0:
        if sizes:
            raise InvalidInput(
                f"{name}={raw!r} is not a size; give a positive number of bytes, "
                f"optionally with K, M, G or T (binary), e.g. {example}"
            )
        raise InvalidInput(f"{name}={raw!r} is not a limit; give a positive number")
    return int(match[1]) * _UNITS[match[2].upper()]


def max_text() -> int:
    """``DSEXPORT_IMPORT_MAX_TEXT``: bytes of one text item, characters of one line (16 MiB)."""
    return _limit("DSEXPORT_IMPORT_MAX_TEXT", 16 << 20)


def max_document() -> int:
    """``DSEXPORT_IMPORT_MAX_DOCUMENT``: bytes of one JSON document read whole (64 MiB)."""
    return _limit("DSEXPORT_IMPORT_MAX_DOCUMENT", 64 << 20)


def max_entries() -> int:
    """``DSEXPORT_IMPORT_MAX_ENTRIES``: entries of one archive (1,000,000)."""
    return _limit("DSEXPORT_IMPORT_MAX_ENTRIES", 1_000_000, sizes=False)


def max_upload() -> int:
    """``DSEXPORT_IMPORT_MAX_UPLOAD``: bytes of one uploaded archive (16 GiB)."""
    return _limit("DSEXPORT_IMPORT_MAX_UPLOAD", 16 << 30)


def max_import_bytes() -> int:
    """``DSEXPORT_IMPORT_MAX_BYTES``: the absolute cap on an import's uncompressed bytes (64 GiB)."""
    return _limit(MAX_BYTES_ENV, DEFAULT_MAX_BYTES, example="10G")
