"""One policy for the entry names of an archive we did not write: what may be read or extracted.

Why one module: the importer (``dsexport import``, the upload endpoint) and
the client's extraction (``download --extract-to``) both take archives
from elsewhere; each side refuses every name either side once refused.
An entry is hostile when it

* is a symbolic link (its mode says so, whatever system wrote it);
* has a NUL byte in its name (``zipfile`` would cut the name there) or
  another control character;
* has an absolute path (``/etc/x``, or a drive letter ``C:x``), or a
  ``..`` component, a backslash counting as a folder separator
  (``..\\x``);
* has a backslash anywhere (Windows would make it a folder);
* is flagged as a UTF-8 name but is not UTF-8 (``zipfile`` refuses to
  read such an archive's central directory at all);
* repeats the name of an earlier file entry, also differing only in case
  (one would overwrite the other when extracted on macOS or Windows).

Every refusal is a :class:`HostileName` holding the entry's name as
shown to a person and the reason; each side words its own error around
it (``rejected archive: entry ...``, ``archive entry ... nothing was
extracted``).
"""

from __future__ import annotations

import stat
import zipfile
from collections.abc import Callable, Iterable
from pathlib import PurePosixPath
from typing import IO, TypeVar

__all__ = ["HostileName", "check_names", "name_problem", "open_zip"]

_UTF8_FLAG = 0x800
Z = TypeVar("Z", bound=zipfile.ZipFile)


class HostileName(Exception):
    """An entry the policy refuses: ``shown`` (its name, quoted) and ``reason`` (a predicate, "is a ...")."""

    def __init__(self, shown: str, reason: str) -> None:
        super().__init__(f"entry {shown} {reason}")
        self.shown, self.reason = shown, reason


def _raw_name(info: zipfile.ZipInfo) -> bytes:
    """An entry's name as the archive holds it (``filename`` is cut at a NUL byte)."""
    return info.orig_filename.encode("utf-8" if info.flag_bits & _UTF8_FLAG else "cp437", "surrogateescape")


def name_problem(info: zipfile.ZipInfo) -> HostileName | None:
    """Why this one entry's name is hostile (see the module docstring), or None."""
    name = info.orig_filename
    if "\x00" in name:
        return HostileName(repr(_raw_name(info)), f"has a NUL byte in its name (it would be cut to {info.filename!r})")
    if stat.S_ISLNK(info.external_attr >> 16):
        return HostileName(repr(name), "is a symbolic link")
    posix = name.replace("\\", "/")
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        return HostileName(repr(name), "has an absolute path")
    if ".." in PurePosixPath(posix).parts:
        return HostileName(repr(name), "climbs out of its folder with '..'")
    if "\\" in name:
        return HostileName(repr(name), "has a backslash in its path")
    if any(ord(c) < 32 for c in name):
        return HostileName(repr(name), "has a control character in its path")
    return None


def check_names(infos: Iterable[zipfile.ZipInfo]) -> None:
    """Raise :class:`HostileName` for the first hostile entry of ``infos`` (duplicates included)."""
    seen: set[str] = set()
    for info in infos:
        problem = name_problem(info)
        if problem is not None:
            raise problem
        if info.is_dir():
            continue
        key = info.filename.casefold()
        if key in seen:
            raise HostileName(repr(info.filename), "appears twice (names differing only in case count as one)")
        seen.add(key)


def open_zip(archive: str | IO[bytes] | object, opener: Callable[[object], Z]) -> Z:
    """``opener(archive)``; a name flagged UTF-8 that is not UTF-8 is a :class:`HostileName` naming its bytes.

    ``zipfile`` decodes those names while reading the central directory, so
    the raw bytes in its error are all there is to show.
    """
    try:
        return opener(archive)
    except UnicodeDecodeError as exc:
        raise HostileName(
            repr(bytes(exc.object)), f"is flagged as a UTF-8 name but is not UTF-8 (byte {exc.start}: {exc.reason})"
        ) from None
