"""Check a downloaded archive, then extract it without letting it escape its folder.

Python's ``zipfile`` reads the archive (it checks every entry's CRC-32 as
it reads); this module adds what ``ZipFile.extractall`` does not do:

* the whole archive is verified before the first file is written, so a
  corrupt archive extracts nothing;
* every entry name is checked before the first file is written, by the
  policy the importer uses too (:mod:`engine.archive_names`: absolute
  paths, drive letters, ``..`` components, backslashes, NUL and control
  characters, names flagged UTF-8 that are not, symbolic links, duplicate
  names); a hostile one is refused with an error that names the entry
  (``extractall`` silently rewrites such names instead, which hides a
  hostile archive), and so is a path that would pass through a symbolic
  link already in the folder;
* the entries are written into a staging folder and moved into place once
  all are written, so a full disk leaves the folder as it was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from engine.archive_names import HostileName, check_names, open_zip
from engine.errors import ArchiveError, OutputError, UnsafeArchive
from engine.sinks import describe_write_error

__all__ = ["Extracted", "extract_archive", "verify_archive"]

_CHUNK = 1 << 20


def verify_archive(path: Path, expected_size: int | None = None) -> int:
    """Read every entry once, checking sizes and CRC-32s; return the number of entries."""
    size = path.stat().st_size
    if expected_size is not None and size != expected_size:
        raise ArchiveError(f"{path} has {size:,} bytes, the server announced {expected_size:,}")
    try:
        with _opened(path) as archive:
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


def _destination(root: Path, info: zipfile.ZipInfo) -> Path:
    """Where ``info`` (a name the policy accepted) goes under ``root``; UnsafeArchive if anywhere else."""
    dest = root.joinpath(*[p for p in info.filename.split("/") if p not in ("", ".")])
    # A symbolic link already inside the folder could lead the path out of it.
    if not os.path.realpath(dest).startswith(str(root) + os.sep) and os.path.realpath(dest) != str(root):
        raise UnsafeArchive(
            f"archive entry {info.filename!r} would be written outside {root}: its path leads outside through a "
            "symbolic link; nothing was extracted"
        )
    return dest


def _refused(exc: HostileName) -> UnsafeArchive:
    return UnsafeArchive(f"archive entry {exc.shown} {exc.reason}; nothing was extracted")


@contextmanager
def _opened(path: Path) -> Iterator[zipfile.ZipFile]:
    """``path`` as a ZipFile; a name flagged UTF-8 that is not is UnsafeArchive naming its bytes."""
    try:
        archive = open_zip(path, zipfile.ZipFile)
    except HostileName as exc:
        raise _refused(exc) from None
    with archive:
        yield archive


class Extracted:
    """What :func:`extract_archive` wrote."""

    def __init__(self, folder: Path, files: int, bytes: int) -> None:
        self.folder, self.files, self.bytes = folder, files, bytes


def extract_archive(path: Path, folder: Path) -> Extracted:
    """Extract a verified archive into ``folder`` (created if need be), whole or not at all.

    The entries are written into a hidden staging folder inside ``folder``
    (same file system: moving them is a rename) and moved into place only
    once all are written. If writing fails (a full disk), the staging
    folder is removed and ``folder`` is as it was, down to files the archive
    would have replaced; a folder created here is removed again.
    """
    made = _make_folder(folder)
    root = Path(os.path.realpath(folder))
    try:
        with _opened(path) as archive:
            infos = archive.infolist()
            try:
                check_names(infos)
            except HostileName as exc:
                raise _refused(exc) from None
            plan = [(info, _destination(root, info)) for info in infos]
            _check_room_for(root, plan)
            staging = Path(tempfile.mkdtemp(prefix=".extracting-", dir=root))
            try:
                files, written = _write_all(archive, plan, root, staging)
                _move_into(staging, root)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        for created in made:  # deepest first; only if still empty
            try:
                created.rmdir()
            except OSError:
                break
        raise
    return Extracted(root, files, written)


def _make_folder(folder: Path) -> list[Path]:
    """Create ``folder`` and missing parents; return those created, deepest first."""
    missing = [p for p in [folder, *folder.parents] if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {folder}: {exc.strerror or exc}") from None
    return missing


def _check_room_for(root: Path, plan: list[tuple[zipfile.ZipInfo, Path]]) -> None:
    """Refuse, before writing anything, an entry whose place holds a file of the other kind."""
    for info, dest in plan:
        for parent in dest.relative_to(root).parents:
            here = root / parent
            if parent != Path(".") and here.exists() and not here.is_dir():
                raise OutputError(f"cannot extract {info.filename!r}: {here} is a file, not a folder; nothing was extracted")
        if dest.is_dir() and not info.is_dir():
            raise OutputError(f"cannot extract {info.filename!r}: {dest} is a folder; nothing was extracted")


def _write_all(archive: zipfile.ZipFile, plan: list[tuple[zipfile.ZipInfo, Path]], root: Path, staging: Path) -> tuple[int, int]:
    """Write every entry under ``staging``, at its place relative to ``root``; return (files, bytes)."""
    files = written = 0
    for info, dest in plan:
        staged = staging / dest.relative_to(root)
        try:
            if info.is_dir():
                staged.mkdir(parents=True, exist_ok=True)
                continue
            staged.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as source, open(staged, "wb") as out:
                shutil.copyfileobj(source, out, _CHUNK)
        except OSError as exc:
            raise OutputError(
                f"{describe_write_error(exc, str(dest))} (extracting {info.filename!r}); nothing was extracted"
            ) from None
        files += 1
        written += info.file_size
    return files, written


def _move_into(staging: Path, target: Path) -> None:
    """Rename what is in ``staging`` into ``target``: a whole subtree at once where ``target`` has none yet."""
    for entry in staging.iterdir():
        dest = target / entry.name
        try:
            if entry.is_dir() and dest.is_dir():
                _move_into(entry, dest)
            else:
                os.replace(entry, dest)
        except OSError as exc:
            raise OutputError(f"cannot move {entry.name!r} into {target}: {exc.strerror or exc}") from None
