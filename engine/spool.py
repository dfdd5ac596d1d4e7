"""Bounded-memory services the engine lends to formats.

* :class:`FileSpool` keeps data a format gathers across items (a CSV body,
  a per-split JSON array, a YOLO list file) in a temporary file, and hands
  it back as a Blob whose size and CRC-32 were computed while writing. It
  frames the records it is given (``head``, records joined by
  ``separator``, ``tail``), so the records alone can be cut into ranges
  and joined again (see ``engine/scaleout``).
* :class:`SpillingClaims` remembers which archive paths are taken: in a set
  while the export is small, in a temporary SQLite table once it is not, so
  a 5-million-item export does not hold 5 million names in RAM.

Both clean up after themselves: temporary files are deleted on close, even
when the export fails. A spool that cannot be written (a full or
size-limited temporary folder) raises :class:`OutputError` naming the folder.
"""

from __future__ import annotations

import errno
import sqlite3
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from msgspec.json import encode as json_encode

from engine.errors import OutputError
from engine.sinks import describe_write_error

__all__ = ["FileSpool", "RecordWriter", "SpillingClaims", "SpooledBlob", "close_quietly", "spool_error"]

_CHUNK = 1 << 20


class SpooledBlob:
    """The finished content of a FileSpool; readable any number of times."""

    def __init__(self, file: BinaryIO, size: int, crc: int) -> None:
        self._file = file
        self.size = size
        self.crc32: int | None = crc

    def chunks(self) -> Iterator[bytes]:
        self._file.seek(0)
        while chunk := self._file.read(_CHUNK):
            yield chunk

    def close(self) -> None:
        close_quietly(self._file)


def close_quietly(file: BinaryIO) -> None:
    """Close a spool being thrown away: a failed flush of its last bytes (full disk) no longer matters."""
    try:
        file.close()
    except OSError:
        pass


def spool_error(exc: OSError, where: str) -> OutputError:
    """A spool's OSError as the user's error, naming ``where`` (a full disk is the usual cause)."""
    return OutputError(f"{describe_write_error(exc, where)} (set TMPDIR to a folder with more room)")


class RecordWriter:
    """Records written to a file with a separator between them, counting bytes, records and CRC-32."""

    def __init__(self, file: BinaryIO, separator: bytes = b"", where: str = "a temporary file") -> None:
        self._file = file
        self._separator = separator
        #: What a write error names: the file, or the folder of an unnamed temporary file.
        self.where = where
        #: Records written so far, bytes written (framing included) and their CRC-32.
        self.records = 0
        self.size = 0
        self.crc = 0

    def write(self, record: bytes) -> None:
        if self.records and self._separator:
            self._put(self._separator)
        self._put(record)
        self.records += 1

    def _put(self, data: bytes) -> None:
        try:
            self._file.write(data)
        except OSError as exc:  # try costs nothing here: this runs once per record
            raise spool_error(exc, self.where) from None
        self.size += len(data)
        self.crc = zlib.crc32(data, self.crc)


class FileSpool(RecordWriter):
    """A write-once temporary file that tracks its size and CRC-32.

    Holds ``head``, then each record given to :meth:`write` with
    ``separator`` between two records, then (from :meth:`close`) ``tail``.
    """

    def __init__(
        self,
        directory: str | None = None,
        *,
        head: bytes = b"",
        separator: bytes = b"",
        tail: bytes = b"",
    ) -> None:
        where = f"a temporary file in {directory or tempfile.gettempdir()}"
        try:
            file = tempfile.TemporaryFile(prefix="dsexport-spool-", dir=directory)
        except OSError as exc:
            raise spool_error(exc, where) from None
        super().__init__(file, separator, where)
        self._tail = tail
        if head:
            self._put(head)

    def close(self) -> SpooledBlob:
        if self._tail:
            self._put(self._tail)
        try:
            self._file.flush()
        except OSError as exc:
            raise spool_error(exc, self.where) from None
        return SpooledBlob(self._file, self.size, self.crc)

    def discard(self) -> None:
        close_quietly(self._file)


class SpillingClaims:
    """Taken keys (with optional values) that move to SQLite when many.

    Exact, not probabilistic: a false "taken" would rename a file, so the
    answer always comes from the keys themselves. Memory stays fixed: the
    in-memory keys up to ``memory_limit``, then a bitmap and SQLite's cache.

    Two ways in, for the same set of keys:

    * :meth:`claim`, one key at a time. Once spilled, a fixed-size bitmap of
      key hashes proves most new keys new without asking SQLite (their
      inserts are then batched); only a key whose bit is already set (a
      repeat, or a hash collision) is looked up.
    * :meth:`claim_many`, a run of keys in one SQLite statement: the keys go
      in as one JSON array (``json_each``), so no Python runs per key. The
      common answer, "all new", is read from the count of inserted rows; only
      a run with a taken key asks which. Keys claimed this way are not in the
      bitmap, so from then on :meth:`claim` asks SQLite for every key.
    """

    _BITMAP_BITS = 1 << 24  # 2 MiB: about 6 % false "maybe" per million keys
    _BATCH = 4096
    # Each row records the claim_many run that inserted it (0: claim()), so a run
    # that met a taken key can tell the keys it found from the keys it added.
    _INSERT_RUN = "INSERT OR IGNORE INTO taken SELECT value, '', ? FROM json_each(?)"

    def __init__(self, memory_limit: int = 20_000, directory: str | None = None) -> None:
        self._memory: dict[str, str] | None = {}
        self._limit = memory_limit
        self._directory = directory
        self._db: sqlite3.Connection | None = None
        self._bits = bytearray()
        self._bits_complete = True  # every key on disk has its bit set
        self._pending: list[tuple[str, str]] = []
        self._run = 0

    def claim(self, key: str, value: str = "") -> bool:
        memory = self._memory
        if memory is not None:
            if key in memory:
                return False
            memory[key] = value
            if len(memory) > self._limit:
                self._spill()
            return True
        h = hash(key) & (self._BITMAP_BITS - 1)
        mask = 1 << (h & 7)
        if not self._bits[h >> 3] & mask:
            self._bits[h >> 3] |= mask
            if self._bits_complete:  # certainly new: insert later, in a batch
                self._pending.append((key, value))
                if len(self._pending) >= self._BATCH:
                    self._flush()
                return True
        self._flush()
        assert self._db is not None
        try:
            return self._db.execute("INSERT OR IGNORE INTO taken VALUES (?, ?, 0)", (key, value)).rowcount == 1
        except sqlite3.Error as exc:
            raise self._failed(exc) from None

    def claim_many(self, keys: list[str]) -> int:
        """Claim ``keys`` in order up to the first taken one; how many were claimed.

        The same as calling :meth:`claim` on each key (with no value) and
        stopping at the first False: the taken key and those after it are
        left unclaimed.
        """
        memory = self._memory
        if memory is not None:
            run = dict.fromkeys(keys, "")
            if len(run) == len(keys) and memory.keys().isdisjoint(run):
                memory.update(run)
                if len(memory) > self._limit:
                    self._spill()
                return len(keys)
            return self._claim_each(keys)
        payload = json_encode(keys)
        if not keys or b"\\u0000" in payload:  # SQLite's JSON cuts a text at NUL: claim such keys one by one
            return self._claim_each(keys)
        self._flush()
        self._bits_complete = False
        self._run += 1
        db = self._db
        assert db is not None
        try:
            before = db.total_changes
            db.execute(self._INSERT_RUN, (self._run, payload))
            if db.total_changes - before == len(keys):
                return len(keys)
            return self._undo_after_first_taken(keys, payload)
        except sqlite3.Error as exc:
            raise self._failed(exc) from None

    def _claim_each(self, keys: list[str]) -> int:
        """:meth:`claim_many` one key at a time."""
        for done, key in enumerate(keys):
            if not self.claim(key):
                return done
        return len(keys)

    def _undo_after_first_taken(self, keys: list[str], payload: bytes) -> int:
        """A run met a taken key (or a repeat): keep the claims before it, remove those after."""
        assert self._db is not None
        found = {
            key
            for (key,) in self._db.execute(
                "SELECT key FROM taken WHERE run != ? AND key IN (SELECT value FROM json_each(?))",
                (self._run, payload),
            )
        }
        seen: set[str] = set()
        first = len(keys)
        for index, key in enumerate(keys):
            if key in found or key in seen:
                first = index
                break
            seen.add(key)
        extra = [key for key in set(keys[first:]) if key not in seen]
        self._db.execute(
            "DELETE FROM taken WHERE run = ? AND key IN (SELECT value FROM json_each(?))",
            (self._run, json_encode(extra)),
        )
        return first

    def value(self, key: str) -> str | None:
        if self._memory is not None:
            return self._memory.get(key)
        self._flush()
        assert self._db is not None
        try:
            row = self._db.execute("SELECT value FROM taken WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error as exc:
            raise self._failed(exc) from None
        return None if row is None else row[0]

    def _flush(self) -> None:
        if self._pending:
            assert self._db is not None
            try:
                self._insert_pairs(self._pending)
            except sqlite3.Error as exc:
                raise self._failed(exc) from None
            self._pending.clear()

    def _insert_pairs(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Insert new ``(key, value)`` pairs (as fast as one JSON statement would be, measured)."""
        assert self._db is not None
        self._db.executemany("INSERT INTO taken VALUES (?, ?, 0)", pairs)

    def _failed(self, exc: sqlite3.Error | OSError) -> OutputError:
        """The table's error as the user's: SQLITE_FULL is a full disk like ENOSPC."""
        if isinstance(exc, sqlite3.Error):
            full = getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
            exc = OSError(errno.ENOSPC if full else errno.EIO, str(exc))
        return spool_error(exc, f"a temporary file in {self._directory or tempfile.gettempdir()}")

    def _spill(self) -> None:
        """Move the in-memory keys to a temporary on-disk table."""
        try:
            self._open_table()
        except (sqlite3.Error, OSError) as exc:
            raise self._failed(exc) from None

    def _open_table(self) -> None:
        self._tmp = tempfile.NamedTemporaryFile(prefix="dsexport-names-", suffix=".sqlite3", dir=self._directory)
        db = sqlite3.connect(self._tmp.name, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("PRAGMA cache_size=-2048")  # 2 MiB page cache, then disk
        db.execute(
            "CREATE TABLE taken (key TEXT PRIMARY KEY, value TEXT NOT NULL, run INTEGER NOT NULL) WITHOUT ROWID"
        )
        db.execute("BEGIN")
        self._bits = bytearray(self._BITMAP_BITS // 8)
        self._db, memory, self._memory = db, self._memory or {}, None
        for key in memory:
            h = hash(key) & (self._BITMAP_BITS - 1)
            self._bits[h >> 3] |= 1 << (h & 7)
        self._insert_pairs(memory.items())

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._tmp.close()
            self._db = None
        self._memory = {}
        self._bits = bytearray()
        self._pending.clear()
