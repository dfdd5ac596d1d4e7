"""Where archive bytes go: a file (atomically), a FIFO or device, or standard output.

A sink is written from one thread (the zip writer's) with blocking calls, so
a slow sink slows the writer and, through it, the fetchers. ``commit`` is
called once after the last byte, with the archive's size as the writer
counted it; ``abort`` instead when anything failed, including cancellation
(Ctrl-C, SIGTERM).

Every sink writes all the bytes it is given or raises :class:`OutputError`:
``write(2)`` may take fewer bytes than offered (a disk that fills up, a file
size limit), so the remainder is written again until the kernel refuses with
an error, and ``commit`` refuses an archive whose bytes on disk are not the
writer's count. A truncated archive is never reported as written.

What ``open_sink`` does with what is already at the output path:

* nothing there, or a regular file: :class:`FileSink` writes
  ``.<name>.<random>.partial`` beside it and renames it over the path only
  in ``commit``, after an fsync, so a reader sees the old file, or nothing,
  or the complete new archive. A replaced file keeps its permission bits;
  a read-only file is refused, not replaced;
* a symbolic link: followed; its target is written as above and the link
  stays (as the shell's ``>`` does);
* a FIFO or a character device (``/dev/null``, ``/dev/full``, a tape):
  :class:`StreamSink` writes into it as a stream, since renaming a file
  over it would replace the node (and leave a FIFO's reader waiting forever);
* a folder, a socket or a block device: refused.
"""

from __future__ import annotations

import errno
import os
import select
import stat
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO, Protocol

from engine.errors import OutputError

__all__ = ["FileSink", "Sink", "StdoutSink", "StreamSink", "describe_write_error", "open_sink", "write_all"]


class Sink(Protocol):
    def write(self, data: bytes) -> None: ...

    def commit(self, size: int | None = None) -> None: ...

    def abort(self) -> None: ...


def describe_write_error(exc: OSError, target: str) -> str:
    """One line naming ``target`` and what the kernel said, in words a user acts on."""
    if exc.errno == errno.ENOSPC:
        return f"no space left on the device while writing {target}"
    if exc.errno == errno.EDQUOT:
        return f"disk quota exceeded while writing {target}"
    if exc.errno == errno.EFBIG:
        return f"cannot write {target}: the file size limit was reached (ulimit -f)"
    if exc.errno == errno.EPIPE:
        return f"cannot write {target}: the reader closed it"
    return f"cannot write {target}: {exc.strerror or exc}"


def write_all(fd: int, data: bytes | memoryview) -> int:
    """Write every byte of ``data`` to ``fd``, or raise OSError; return the count.

    ``os.write`` returns how much the kernel took, which is less than asked
    when a disk fills up or a size limit is reached mid-write; writing the
    rest again makes the kernel say why (ENOSPC, EFBIG) instead of losing
    it silently.
    """
    view = memoryview(data).cast("B")
    total = len(view)
    while view:
        try:
            done = os.write(fd, view)
        except BlockingIOError:  # a non-blocking pipe handed to us as stdout: wait until it drains
            select.select([], [fd], [])
            continue
        if done == 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[done:]
    return total


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    return "not a regular file"


def _is_read_only(path: Path, mode: int) -> bool:
    """No write bit at all (root may write anything, so access() alone would not say), or not writable by us."""
    return not mode & 0o222 or not os.access(path, os.W_OK)


class FileSink:
    """Writes to a temporary file beside ``path`` (a symlink's target); renames it in on commit."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        shown = str(self.path)
        target = Path(os.path.realpath(self.path)) if self.path.is_symlink() else self.path
        folder = target.parent
        if not folder.is_dir():
            raise OutputError(f"cannot write {shown}: folder {folder} does not exist")
        try:
            existing = os.stat(target)
        except FileNotFoundError:
            existing = None
        except OSError as exc:
            raise OutputError(f"cannot write {shown}: {exc.strerror or exc}") from None
        self._mode = 0o644 & ~_umask()
        if existing is not None:
            if stat.S_ISDIR(existing.st_mode):
                raise OutputError(f"cannot write {shown}: it is a folder")
            if not stat.S_ISREG(existing.st_mode):
                raise OutputError(f"cannot write {shown}: it is {_kind(existing.st_mode)}, not a regular file")
            if _is_read_only(target, existing.st_mode):
                raise OutputError(f"cannot write {shown}: it is read-only; remove it or make it writable first")
            self._mode = stat.S_IMODE(existing.st_mode) & 0o777
        self._target = target
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=folder)
        except OSError as exc:
            raise OutputError(describe_write_error(exc, shown)) from exc
        self._tmp = Path(tmp)
        self._fd: int | None = fd

    def write(self, data: bytes) -> None:
        assert self._fd is not None, "write after commit/abort"
        try:
            write_all(self._fd, data)
        except OSError as exc:
            raise OutputError(describe_write_error(exc, str(self.path))) from exc

    def fileno(self) -> int:
        """The temporary file's descriptor, for copies made by the kernel (scale-out stitch)."""
        assert self._fd is not None, "fileno after commit/abort"
        return self._fd

    def commit(self, size: int | None = None) -> None:
        """Check that ``size`` bytes reached the file, fsync it, and rename it over the path.

        The size comes from the file itself, so bytes the kernel copied in
        (``fileno``) count as well as those passed to :meth:`write`.
        """
        assert self._fd is not None
        shown = str(self.path)
        try:
            on_disk = os.fstat(self._fd).st_size
            if size is not None and on_disk != size:
                raise OutputError(
                    f"cannot write {shown}: only {on_disk:,} of the archive's {size:,} bytes reached the disk"
                )
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None
            os.chmod(self._tmp, self._mode)
            os.replace(self._tmp, self._target)
        except OutputError:
            self.abort()
            raise
        except OSError as exc:
            self.abort()
            raise OutputError(describe_write_error(exc, shown)) from exc

    def abort(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class StreamSink:
    """Writes into an existing FIFO or character device, in place.

    Opening a FIFO waits for its reader, as the shell's ``>`` does. Nothing
    can be taken back from a stream: on abort the reader gets a truncated
    archive, which every ZIP reader rejects (no end record), and the
    non-zero exit status says why.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError as exc:
            raise OutputError(f"cannot open {self.path}: {exc.strerror or exc}") from None
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)):  # replaced since we looked: never write over a file in place
            os.close(fd)
            raise OutputError(f"cannot write {self.path}: it changed while being opened")
        self._fd: int | None = fd
        self.bytes_written = 0

    def write(self, data: bytes) -> None:
        assert self._fd is not None, "write after commit/abort"
        try:
            self.bytes_written += write_all(self._fd, data)
        except OSError as exc:
            raise OutputError(describe_write_error(exc, str(self.path))) from exc

    def fileno(self) -> int:
        assert self._fd is not None, "fileno after commit/abort"
        return self._fd

    def commit(self, size: int | None = None) -> None:
        assert self._fd is not None
        fd, self._fd = self._fd, None
        try:
            os.close(fd)
        except OSError as exc:
            raise OutputError(describe_write_error(exc, str(self.path))) from exc
        if size is not None and self.bytes_written != size:
            raise OutputError(f"cannot write {self.path}: {self.bytes_written:,} of the archive's {size:,} bytes were written")

    def abort(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None


class StdoutSink:
    """Writes to standard output (a pipe, a file or a terminal).

    The bytes go straight to the descriptor, past Python's buffer, so a
    failed write leaves nothing buffered for the interpreter to retry (and
    fail on) at exit. Nothing can be taken back from a pipe: on abort the
    reader gets a truncated archive, which every ZIP reader rejects (no end
    record), and the non-zero exit status says why.
    """

    def __init__(self, stream: BinaryIO | None = None) -> None:
        if stream is None:
            sys.stdout.flush()  # text printed before goes first, then the binary layer below it
            stream = sys.stdout.buffer
        self._stream = stream
        try:
            self._fd: int | None = self._stream.fileno()
        except (OSError, ValueError):  # an in-memory stream (tests, embedding)
            self._fd = None
        self.bytes_written = 0
        self._flush()  # whatever was printed before goes first

    def write(self, data: bytes) -> None:
        try:
            if self._fd is not None:
                self.bytes_written += write_all(self._fd, data)
            else:
                self._stream.write(data)
                self.bytes_written += len(data)
        except OSError as exc:
            raise OutputError(_describe_stdout(exc)) from exc

    def commit(self, size: int | None = None) -> None:
        self._flush()
        if size is not None and self.bytes_written != size:
            raise OutputError(f"cannot write standard output: {self.bytes_written:,} of the archive's {size:,} bytes were written")

    def _flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            raise OutputError(_describe_stdout(exc)) from exc

    def abort(self) -> None:
        try:
            self._stream.flush()
        except (OSError, ValueError):
            pass


def _describe_stdout(exc: OSError) -> str:
    if exc.errno == errno.EPIPE:
        return "standard output was closed by the reader"
    return describe_write_error(exc, "standard output")


def open_sink(target: str | os.PathLike[str]) -> Sink:
    """``"-"`` is standard output; ``s3://bucket/key`` an object (``engine.sink_s3``); a FIFO or character
    device is written as a stream; anything else is a file path."""
    if str(target) == "-":
        return StdoutSink()
    if str(target).startswith("s3://"):
        from engine.sink_s3 import S3Sink

        return S3Sink(str(target))
    try:
        mode = os.stat(target).st_mode  # follows a symlink: a link to a FIFO is a FIFO
    except OSError:
        mode = 0
    if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode):
        return StreamSink(target)
    return FileSink(target)
