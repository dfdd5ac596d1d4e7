"""A folder that fills up after ``room`` bytes, for testing full disks for real.

As root (CI runs as root) the folder is a tiny tmpfs, filled up but for
``room`` bytes: every write past that fails with ENOSPC, as on a full disk.
Otherwise a child process started with :attr:`FullDisk.preexec` may write
no file bigger than ``file_limit`` bytes (RLIMIT_FSIZE): its writes past
that fail with EFBIG (Python ignores SIGXFSZ), the same short write then
error. That limit is per file, so it cannot stand in for a disk filled by
many files together: such a test says ``needs_tmpfs`` and fails without root.
"""

from __future__ import annotations

import os
import resource
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

__all__ = ["FullDisk", "full_disk"]

_TMPFS_BYTES = 300 << 10


class FullDisk:
    def __init__(self, folder: Path, room: int, mounted: bool) -> None:
        self.folder = folder
        self.room = room
        #: True: a tmpfs (ENOSPC); False: a file size limit for child processes (EFBIG).
        self.mounted = mounted

    @property
    def preexec(self) -> Callable[[], None] | None:
        """For ``subprocess``'s ``preexec_fn``: the size limit, when there is no tmpfs."""
        if self.mounted:
            return None
        room = self.room

        def limit() -> None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (room, room))

        return limit

    @property
    def problem(self) -> str:
        """What the product's message says of this kind of full disk."""
        return "no space left" if self.mounted else "file size limit"


@contextmanager
def full_disk(
    folder: Path, room: int = 0, *, file_limit: int | None = None, needs_tmpfs: bool = False
) -> Iterator[FullDisk]:
    """``folder``, created, with ``room`` bytes (rounded to pages) left to write.

    Without root: a limit of ``file_limit`` (default ``room``) bytes a file.
    """
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        if needs_tmpfs:
            pytest.fail("this full disk needs a tmpfs, which needs root (CI runs as root)")
        yield FullDisk(folder, room if file_limit is None else file_limit, mounted=False)
        return
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={_TMPFS_BYTES}", "tmpfs", str(folder)], check=True)
    try:
        filler = folder / ".filler"
        with open(filler, "wb", buffering=0) as out:
            try:
                while out.write(b"\0" * 65536):
                    pass
            except OSError:
                pass
        os.truncate(filler, max(0, filler.stat().st_size - room))
        yield FullDisk(folder, room, mounted=True)
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)
