"""Unique archive names across shards: each shard logs its claims, the driver checks them.

Paths are made unique in export order (:class:`formats.paths.UniquePaths`):
whether an item keeps its plain name depends on every name claimed before
it, also in earlier shards, which a shard cannot see. The scheme is
optimistic:

* a shard runs with only its own claims and logs every key it claimed after
  the format was set up (and every key it looked up in vain), in a SQLite
  file beside its part (:class:`RecordingClaims`);
* the driver walks the shards in order, keeping the union of the final
  claims of the shards before (:class:`ClaimsLedger`). A shard none of
  whose logged keys is in that union saw exactly the answers the
  single-process export would have given it, so its part is final. A shard
  with an overlap is run again, seeded with the union
  (``RecordingClaims(seed=...)``), which makes it final too.

Every answer a shard gets depends only on whether a key is taken (and, for
YOLO, the value stored with it); every key it asks about is either logged or
was claimed while the format was set up, which is the same in every shard.
So a shard without overlap is exact, and a re-run shard is exact by
construction. The cost: one SQLite merge of each shard's log on the driver,
and a serial re-run of each shard that collided (see the README).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from engine.spool import SpillingClaims

__all__ = ["ClaimsLedger", "RecordingClaims"]

_BATCH = 4096


def _connect(path: str | os.PathLike[str], *, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        db = sqlite3.connect(f"{Path(path).as_uri()}?mode=ro", uri=True, check_same_thread=False)
    else:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-4096")
    return db


class RecordingClaims:
    """A shard's name claims: answered locally (or from a seed), logged to a file.

    Logging starts with :meth:`start_recording`, called once the format is
    set up: the claims made while setting up are the same in every shard.
    """

    def __init__(self, log: str | os.PathLike[str], seed: str | os.PathLike[str] | None = None) -> None:
        self._local = SpillingClaims()
        self._recording = False
        self._pending: list[tuple[str, str | None]] = []
        self._log = _connect(log)
        self._log.execute("CREATE TABLE log (key TEXT NOT NULL, value TEXT)")  # value NULL: looked up only
        self._log.execute("BEGIN")
        self._seed = None if seed is None else _connect(seed, readonly=True)

    def start_recording(self) -> None:
        self._recording = True

    def _seeded(self, key: str) -> str | None:
        if self._seed is None:
            return None
        row = self._seed.execute("SELECT value FROM taken WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def claim(self, key: str, value: str = "") -> bool:
        if self._seed is not None and self._seeded(key) is not None:
            return False
        if not self._local.claim(key, value):
            return False
        if self._recording:
            self._pending.append((key, value))
            if len(self._pending) >= _BATCH:
                self._flush()
        return True

    def value(self, key: str) -> str | None:
        found = self._local.value(key)
        if found is None:
            found = self._seeded(key)
        if found is None and self._recording:
            self._pending.append((key, None))
        return found

    def _flush(self) -> None:
        if self._pending:
            self._log.executemany("INSERT INTO log VALUES (?, ?)", self._pending)
            self._pending.clear()

    def save(self) -> None:
        """Commit the log (the shard succeeded)."""
        self._flush()
        self._log.execute("COMMIT")
        self._log.close()

    def close(self) -> None:
        self._local.close()
        if self._seed is not None:
            self._seed.close()
            self._seed = None
        try:
            self._log.close()
        except sqlite3.ProgrammingError:  # already closed by save()
            pass


class ClaimsLedger:
    """The driver's union of the final claims of the shards checked so far.

    Kept in a SQLite file in the run folder, because a re-run shard reads it
    as its seed (read-only, while the driver waits for it).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._db = _connect(self.path)
        self._db.execute("PRAGMA journal_mode=DELETE")
        self._db.execute("CREATE TABLE taken (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID")

    def collides(self, log: str | os.PathLike[str]) -> bool:
        """Whether a shard's log names a key that an earlier shard claimed."""
        self._db.execute("ATTACH DATABASE ? AS shard", (str(log),))
        try:
            row = self._db.execute(
                "SELECT 1 FROM shard.log l WHERE EXISTS (SELECT 1 FROM taken t WHERE t.key = l.key) LIMIT 1"
            ).fetchone()
        finally:
            self._db.execute("DETACH DATABASE shard")
        return row is not None

    def add(self, log: str | os.PathLike[str]) -> None:
        """Add a final shard's claims."""
        self._db.execute("ATTACH DATABASE ? AS shard", (str(log),))
        try:
            self._db.execute("BEGIN")
            self._db.execute("INSERT INTO taken SELECT key, value FROM shard.log WHERE value IS NOT NULL")
            self._db.execute("COMMIT")
        finally:
            self._db.execute("DETACH DATABASE shard")

    def close(self) -> None:
        self._db.close()
