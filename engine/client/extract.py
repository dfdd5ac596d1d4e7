"""Check a downloaded archive, then extract it without letting it escape its folder.

Python's ``zipfile`` reads the archive (it checks every entry's CRC-32 as
it reads); this module adds what ``ZipFile.extractall`` does not do:

* the whole archive is verified before the first file is written, so a
  corrupt archive extracts nothing;
* every entry name is checked before the first file is written: absolute
  paths, drive letters, ``..`` components, NUL bytes and symbolic links are
  refused with an error that names the entry (``extractall`` silently
  rewrites such names instead, which hides a hostile archive), and so is a
  path that would pass through a symbolic link already in the folder.
"""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

from engine.errors import ArchiveError, OutputError, UnsafeArchive

__all__ = ["Extracted", "extract_archive", "verify_archive"]

_CHUNK = 1 << 20


def verify_archive(path: Path, expected_size: int | None = None) -> int:
    """Read every entry once, checking sizes and CRC-32s; return the number of entries."""
    size = path.stat().st_size
    if expected_size is not None and size != expected_size:
        raise ArchiveError(f"{path} has {size:,} bytes, the server announced {expected_size:,}")
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            for info in infos:
                if info.is_dir():
                    continue
                with archive.open(info) as entry:
                    while entry.read(_CHUNK):
                        pass
    except zipfile.BadZipFile as exc:
        raise ArchiveError(f"{path} is not a valid ZIP archive: {exc}; nothing was extracted") from None
    except (EOFError, OSError, zipfile.LargeZipFile) as exc:
        raise ArchiveError(f"{path} is truncated or unreadable: {exc}; nothing was extracted") from None
    return len(infos)


def _unsafe_reason(info: zipfile.ZipInfo) -> str | None:
    """Why an entry may not be extracted, or None if it may."""
    name = info.filename
    if "\0" in name:
        return "its name holds a NUL byte"
    mode = info.external_attr >> 16
    if info.create_system == 3 and stat.S_ISLNK(mode):
        return "it is a symbolic link"
    posix = name.replace("\\", "/")
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        return "its path is absolute"
    if ".." in PurePosixPath(posix).parts:
        return "its path climbs out with '..'"
    return None


def _destination(root: Path, info: zipfile.ZipInfo) -> Path:
    """Where ``info`` goes under ``root``; UnsafeArchive if anywhere else."""
    reason = _unsafe_reason(info)
    if reason is None:
        dest = root.joinpath(*[p for p in info.filename.replace("\\", "/").split("/") if p not in ("", ".")])
        # A symbolic link already inside the folder could lead the path out of it.
        if not os.path.realpath(dest).startswith(str(root) + os.sep) and os.path.realpath(dest) != str(root):
            reason = "its path leads outside through a symbolic link"
        else:
            return dest
    raise UnsafeArchive(
        f"archive entry {info.filename!r} would be written outside {root}: {reason}; nothing was extracted"
    )


class Extracted:
    """What :func:`extract_archive` wrote."""

    def __init__(self, folder: Path, files: int, bytes: int) -> None:
        self.folder, self.files, self.bytes = folder, files, bytes


def extract_archive(path: Path, folder: Path) -> Extracted:
    """Extract a verified archive into ``folder`` (created if need be)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {folder}: {exc.strerror or exc}") from None
    root = Path(os.path.realpath(folder))
    files = written = 0
    with zipfile.ZipFile(path) as archive:
        plan = [(info, _destination(root, info)) for info in archive.infolist()]
        for info, dest in plan:
            try:
                if info.is_dir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as source, open(dest, "wb") as out:
                    shutil.copyfileobj(source, out, _CHUNK)
            except OSError as exc:
                raise OutputError(f"cannot extract {info.filename!r} to {dest}: {exc.strerror or exc}") from None
            files += 1
            written += info.file_size
    return Extracted(root, files, written)
