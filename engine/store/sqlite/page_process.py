"""The export's page queries in a second process: a page reader.

An export of many small items spends about a third of its time in
SQLite's page queries and in turning their rows into Python objects. In a
thread beside the writer that work barely overlaps with it: every SQLite
step releases and retakes the GIL, and on two cores the two threads spend
more time handing the GIL over than they save. A child process has a GIL of
its own: it runs the same queries (:meth:`PageReads._page_rows`, in a
read snapshot of its own) and sends each page's rows down a pipe, where
this process turns them into ExportItems exactly as it would its own rows.

The pipe carries frames: a kind byte, a 4-byte length, then msgpack
(msgspec encodes and decodes a page of rows in C, about 1 µs a row):

* ``LABELS``: the version's labels, first, read in the reader's snapshot;
* ``PAGE``: ``[split index (-1: no split), rows, annotations]``, the annotations in
  the compact form of :func:`compact_annotations`;
* ``END``: the reader's peak RSS in KiB (for the benchmark's memory figure);
* ``ERROR``: ``[error class name, message]`` (NotFound, InvalidInput...).

The reader is started by :class:`PageProcess`, which kills it (by PID) when
closed early, and turns a reader that dies into a :class:`ContentError`
naming its exit status.
"""

from __future__ import annotations

import fcntl
import os
import resource
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import msgspec

from engine import errors
from engine.errors import ContentError
from engine.model import DatasetSplit, Label
from engine.store.api import PageContent
from engine.store.sqlite.pages import _FIRST_BLOB_COLUMN

__all__ = ["PageProcess", "PageRequest", "compact_annotations", "compact_contents", "main"]

LABELS, PAGE, END, ERROR = 1, 2, 3, 4
_HEADER = struct.Struct("<BI")
#: Pipe buffer asked for: a page of 1 KiB items is ~0.6 MB, written in one go.
_PIPE_BYTES = 1 << 20
#: Content bytes a frame holds at most (several small pages join; a page of large inline
#: blobs goes alone).
FRAME_BYTES = 8 << 20


class PageRequest(msgspec.Struct, kw_only=True):
    """What the reader reads: :meth:`PageReads._page_rows`'s arguments, splits by id."""

    root: str
    version_id: str
    split_ids: list[str]
    content: str
    include_unsplit: bool
    page_size: int
    start: int = 0
    stop: int | None = None
    #: Rows of content in the form of :func:`compact_contents` (blobs not packed).
    inline: bool = False
    #: Rows a frame may hold (several of SQLite's pages of ``page_size`` rows).
    frame_rows: int = 2048


class PageProcess:
    """Page rows from a reader process: iterate for ``(rows, split, annotations)``; :meth:`close` stops it.

    ``inline``: rows of content come in the form of
    :func:`compact_contents` (for blobs not packed).

    ``on_end`` is called with the reader's peak RSS (KiB) after its last page.
    """

    def __init__(
        self,
        root: Path,
        version_id: str,
        splits: list[DatasetSplit],
        content: PageContent,
        include_unsplit: bool,
        page_size: int,
        start: int = 0,
        stop: int | None = None,
        *,
        inline: bool = False,
        on_end: Callable[[int], None] | None = None,
    ) -> None:
        self._splits = splits
        self._on_end = on_end
        request = PageRequest(
            root=str(Path(root).resolve()), version_id=version_id, split_ids=[s.id or "" for s in splits],
            content=content.value, include_unsplit=include_unsplit, page_size=page_size, start=start, stop=stop,
            inline=inline,
        )
        self._stderr = tempfile.TemporaryFile(prefix="dsexport-pages-")
        package_root = str(Path(__file__).resolve().parents[3])  # so -m finds engine however it was imported
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "engine.store.sqlite.page_process"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, bufsize=0, env=env,
        )
        assert self._process.stdin is not None and self._process.stdout is not None
        self._pipe: BinaryIO = self._process.stdout
        _widen(self._pipe.fileno())
        try:
            self._process.stdin.write(msgspec.json.encode(request))
            self._process.stdin.close()
        except OSError:
            pass  # the reader died at once: reading its first frame says why
        self._buffer = bytearray(1 << 20)
        self._decode = msgspec.msgpack.Decoder()
        self._labels: list[Label] | None = None
        self._done = False
        self._last_words = ""  # the end of what the reader wrote to stderr, once it has exited

    def labels(self) -> list[Label]:
        """The version's labels in the reader's snapshot (its first frame)."""
        if self._labels is None:
            kind, payload = self._frame()
            if kind != LABELS:
                raise self._broken(f"expected the labels first, got frame kind {kind}")
            self._labels = msgspec.msgpack.decode(payload, type=list[Label])
        return self._labels

    def __iter__(self) -> Iterator[tuple[list, DatasetSplit | None, list]]:
        self.labels()
        splits = self._splits
        while True:
            kind, payload = self._frame()
            if kind == PAGE:
                index, rows, annotations = self._decode.decode(payload)
                yield rows, (None if index < 0 else splits[index]), annotations
            elif kind == END:
                peak_rss_kib = self._decode.decode(payload)
                self._finish()
                if self._on_end is not None:
                    self._on_end(peak_rss_kib)
                return
            else:
                raise self._broken(f"unexpected frame kind {kind}")

    def _frame(self) -> tuple[int, memoryview]:
        head = self._read(_HEADER.size)
        kind, length = _HEADER.unpack(head)
        payload = self._read(length)
        if kind == ERROR:
            name, message = self._decode.decode(payload)
            self._finish()
            error = getattr(errors, name, None)
            if isinstance(error, type) and issubclass(error, errors.DsexportError) and error is not ContentError:
                raise error(message)
            raise ContentError(f"the store's page reader failed: {message}")
        return kind, payload

    def _read(self, count: int) -> memoryview:
        """The next ``count`` bytes of the pipe (valid until the next read)."""
        if len(self._buffer) < count:
            self._buffer = bytearray(count)
        view = memoryview(self._buffer)[:count]
        got = 0
        while got < count:
            n = self._pipe.readinto(view[got:])
            if not n:
                raise self._broken("its output ended early")
            got += n
        return view

    def _broken(self, what: str) -> ContentError:
        code = self._finish(kill=True)
        last = self._last_words.strip().splitlines()
        tail = f": {last[-1]}" if last else ""
        return ContentError(f"the store's page reader stopped ({what}; exit status {code}){tail}")

    def _finish(self, kill: bool = False) -> int | None:
        """Wait for the reader (killing it first if ``kill``); its exit status."""
        if not self._done:
            self._done = True
            if kill:
                self._process.kill()
            self._pipe.close()
            self._process.wait()
            self._stderr.seek(max(0, self._stderr.seek(0, os.SEEK_END) - 4096))
            self._last_words = self._stderr.read().decode(errors="replace")
            self._stderr.close()
        return self._process.returncode

    def close(self) -> None:
        """Stop the reader (killed by its PID if still running) and release the pipe."""
        self._finish(kill=self._process.poll() is None)


def _widen(fd: int) -> None:
    """Ask for a 1 MiB pipe buffer (Linux): a page then crosses in one write, not 16."""
    try:
        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), _PIPE_BYTES)
    except OSError:
        pass  # a smaller buffer still works, in more hand-offs


# -- the reader process ------------------------------------------------------------


def compact_contents(rows: list[tuple]) -> list[tuple]:
    """A page of content rows (blobs not packed) as the page reader sends them.

    The six item columns, then the content where the row holds it: None for
    no blob, the bytes of a whole inline blob; any other blob (a file, or
    inline bytes of the wrong length) keeps its blob columns as a list, which
    this process resolves as it resolves its own rows (an error included).
    The 64-character SHA-256 of every inline blob then never crosses the pipe.
    """
    out = []
    for r in rows:
        sha, size, data, pack = r[6], r[7], r[9], r[10]
        if sha is None:
            content = None
        elif pack is None and data is not None and len(data) == size:
            content = data
        else:
            content = list(r[_FIRST_BLOB_COLUMN:])
        out.append((r[0], r[1], r[2], r[3], r[4], r[5], content))
    return out


#: Columns of a :func:`compact_contents` row: the six item columns, then the content.
_COMPACT_COLUMNS = 7


def compact_annotations(rows: list[tuple], annotation_rows: list[tuple[str, str, str]], position: dict[str, int]) -> list:
    """A page's annotation rows as the page reader sends them: one entry per row, in order.

    ``None`` (no annotation), a label's position (one annotation without
    coordinates: the common case), or a list of positions and
    ``[position, coordinates]`` pairs. Small ints and no repeated ids make
    this a fraction of the rows' cost to encode and decode.
    """
    row_of = {r[0]: n for n, r in enumerate(rows)}
    out: list = [None] * len(rows)
    for item_id, label_id, coordinates in annotation_rows:
        n = row_of.get(item_id)
        if n is None:  # an annotation of an item outside the page: the rows decide what is exported
            continue
        entry = position[label_id] if not coordinates else [position[label_id], coordinates]
        held = out[n]
        if held is None:
            out[n] = entry if not coordinates else [entry]
        elif type(held) is int:
            out[n] = [held, entry]
        else:
            held.append(entry)
    return out



def _send(out: BinaryIO, kind: int, payload: bytes) -> None:
    out.write(_HEADER.pack(kind, len(payload)))
    out.write(payload)


def _inline_bytes(rows: list) -> int:
    """The content bytes in a page of rows: only :func:`compact_contents` rows hold any."""
    if not rows or len(rows[0]) != _COMPACT_COLUMNS:
        return 0
    return sum(len(c) for r in rows if type(c := r[_COMPACT_COLUMNS - 1]) is bytes)


class _Frame:
    """Consecutive pages of one split joined into one frame, up to ``max_rows`` rows and FRAME_BYTES of content.

    Why: each frame is a page on the other side, and each page costs that
    process two thread hand-offs (reading it, writing its batch); SQLite's
    pages stay small so this process never holds more than one frame.
    """

    def __init__(self, max_rows: int) -> None:
        self._max_rows = max_rows
        self.rows: list = []
        self._notes: list = []
        self._where = -1
        self._bytes = 0

    def takes(self, where: int, rows: list) -> bool:
        """Whether ``rows`` of split ``where`` still fit (an empty frame takes anything)."""
        if not self.rows:
            return True
        return (
            where == self._where
            and len(self.rows) + len(rows) <= self._max_rows
            and self._bytes + _inline_bytes(rows) <= FRAME_BYTES
        )

    def add(self, where: int, rows: list, notes: list) -> None:
        self._where = where
        self.rows += rows
        self._notes += notes
        self._bytes += _inline_bytes(rows)

    def flush(self) -> tuple[int, list, list]:
        """The frame's payload (split position, rows, annotations); the frame is empty again."""
        payload = (self._where, self.rows, self._notes)
        self.rows, self._notes, self._bytes = [], [], 0
        return payload


def run(request: PageRequest, out: BinaryIO) -> None:
    """Read the pages ``request`` names and write them as frames to ``out``."""
    from engine.store.sqlite.store import StoreReader

    encode = msgspec.msgpack.Encoder().encode
    reader = StoreReader.open(request.root)
    try:
        with reader._snapshot():
            labels = reader.labels(request.version_id)
            position = {label.id: n for n, label in enumerate(labels)}
            _send(out, LABELS, encode(labels))
            splits = reader._export_splits(request.version_id, request.split_ids)
            index = {id(split): n for n, split in enumerate(splits)}
            pages = reader._page_rows(
                request.version_id, splits, PageContent(request.content), request.include_unsplit,
                request.page_size, request.start, request.stop,
            )
            frame = _Frame(request.frame_rows)
            for rows, split, annotations in pages:
                notes = compact_annotations(rows, annotations, position)
                if request.inline:
                    rows = compact_contents(rows)
                where = -1 if split is None else index[id(split)]
                if not frame.takes(where, rows):
                    _send(out, PAGE, encode(frame.flush()))
                frame.add(where, rows, notes)
            if frame.rows:
                _send(out, PAGE, encode(frame.flush()))
    finally:
        reader.close()
    _send(out, END, encode(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


def main() -> None:
    """The reader's entry point: a JSON :class:`PageRequest` on stdin, frames on stdout."""
    out = os.fdopen(sys.stdout.fileno(), "wb", buffering=1 << 20, closefd=False)
    try:
        run(msgspec.json.decode(sys.stdin.buffer.read(), type=PageRequest), out)
    except BrokenPipeError:  # the export stopped reading (it was cancelled or failed): nothing left to say
        return
    except errors.DsexportError as exc:
        _send(out, ERROR, msgspec.msgpack.encode((type(exc).__name__, str(exc))))
    except Exception as exc:  # a store that cannot be read: its message, not a traceback, reaches the user
        _send(out, ERROR, msgspec.msgpack.encode(("", f"{type(exc).__name__}: {exc}")))
    try:
        out.flush()
    except BrokenPipeError:
        pass


if __name__ == "__main__":
    main()
