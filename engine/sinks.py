"""Where archive bytes go: a file (atomically) or standard output.

A sink is written from one thread (the zip writer's) with blocking calls, so
a slow sink slows the writer and, through it, the fetchers. ``commit`` is
called once after the last byte; ``abort`` instead when anything failed,
including cancellation (Ctrl-C).

:class:`FileSink` writes ``<name>.<random>.partial`` beside the target and
renames it over the target only in ``commit``, after an fsync: a reader of
the target path sees either the old file, or nothing, or the complete new
archive, never a half-written one.
"""

from __future__ import annotations

import errno
import os
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO, Protocol

from engine.errors import OutputError

__all__ = ["FileSink", "Sink", "StdoutSink", "open_sink"]


class Sink(Protocol):
    def write(self, data: bytes) -> None: ...

    def commit(self) -> None: ...

    def abort(self) -> None: ...


def _describe(exc: OSError, target: str) -> str:
    if exc.errno == errno.ENOSPC:
        return f"no space left on the device while writing {target}"
    if exc.errno == errno.EDQUOT:
        return f"disk quota exceeded while writing {target}"
    return f"cannot write {target}: {exc.strerror or exc}"


class FileSink:
    """Writes to a temporary file beside ``path``; renames it in on commit."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        folder = self.path.parent
        if not folder.is_dir():
            raise OutputError(f"cannot write {self.path}: folder {folder} does not exist")
        if self.path.is_dir():
            raise OutputError(f"cannot write {self.path}: it is a folder")
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".partial", dir=folder)
        except OSError as exc:
            raise OutputError(_describe(exc, str(self.path))) from exc
        self._tmp = Path(tmp)
        self._file: BinaryIO | None = os.fdopen(fd, "wb", buffering=0)

    def write(self, data: bytes) -> None:
        assert self._file is not None, "write after commit/abort"
        try:
            self._file.write(data)
        except OSError as exc:
            raise OutputError(_describe(exc, str(self.path))) from exc

    def fileno(self) -> int:
        """The temporary file's descriptor, for copies made by the kernel (scale-out stitch)."""
        assert self._file is not None, "fileno after commit/abort"
        return self._file.fileno()

    def commit(self) -> None:
        assert self._file is not None
        try:
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
            os.chmod(self._tmp, 0o644 & ~_umask())
            os.replace(self._tmp, self.path)
        except OSError as exc:
            self.abort()
            raise OutputError(_describe(exc, str(self.path))) from exc

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class StdoutSink:
    """Writes to standard output's binary stream (a pipe or a file).

    Nothing can be taken back from a pipe: on abort the reader gets a
    truncated archive, which every ZIP reader rejects (no end record), and
    the non-zero exit status says why.
    """

    def __init__(self, stream: BinaryIO | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdout.buffer

    def write(self, data: bytes) -> None:
        try:
            self._stream.write(data)
        except BrokenPipeError as exc:
            raise OutputError("standard output was closed by the reader") from exc

    def commit(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError as exc:
            raise OutputError("standard output was closed by the reader") from exc

    def abort(self) -> None:
        try:
            self._stream.flush()
        except OSError:
            pass


def open_sink(target: str | os.PathLike[str]) -> Sink:
    """``"-"`` is standard output; anything else a file path."""
    if str(target) == "-":
        return StdoutSink()
    return FileSink(target)
