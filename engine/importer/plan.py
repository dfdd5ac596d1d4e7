"""An import's plan (the :class:`~formats.reading.PlanSink` formats read into), spooled to a temporary SQLite file instead of held in memory.

Why: a plan holds a row per item of the archive, with its splits and
annotations. As Python objects, a million empty entries cost about half a
GiB on top of ``zipfile``'s own central directory; spooled, they cost a few
MiB of page cache whatever their number. SQLite (from the standard library)
also gives the keyed look-ups the readers of each format need (an item by
its name, its text, its splits) without a dict per entry.

The file is SQLite's private temporary database (the empty file name): it
lives in the temp directory, is written without a journal or fsync, and is
deleted when the plan is closed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from itertools import groupby

import msgspec

from engine.store import BlobRef

__all__ = ["Plan", "PlannedItem"]

#: Page cache of the spool; the rest of the plan stays on disk.
_CACHE_KIB = 8192
#: Rows fetched from the spool at a time while it is streamed back.
_FETCH = 1000

_SCHEMA = """
CREATE TABLE items (
    seq INTEGER PRIMARY KEY, key TEXT UNIQUE, stem TEXT, name TEXT, extension TEXT NOT NULL,
    text TEXT NOT NULL, member TEXT, sha256 TEXT, size INTEGER, crc32 INTEGER);
CREATE INDEX items_stem ON items(stem) WHERE stem IS NOT NULL;
CREATE TABLE memberships (seq INTEGER NOT NULL, split TEXT NOT NULL);
CREATE INDEX memberships_seq ON memberships(seq);
CREATE TABLE annotations (seq INTEGER NOT NULL, label TEXT NOT NULL, split TEXT NOT NULL, coordinates TEXT NOT NULL);
CREATE INDEX annotations_seq ON annotations(seq);
CREATE TABLE notes (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
"""


class PlannedItem(msgspec.Struct):
    """One item as the ingest writes it: content is ``text``, a ``blob`` already in place, or the archive
    ``member`` holding its bytes."""

    name: str | None
    extension: str
    text: str
    member: str | None
    blob: BlobRef | None
    splits: list[str]
    #: (label name, split name, coordinates)
    annotations: list[tuple[str, str, str]]


class Plan:
    """What an archive adds to a version: labels, splits, a config, and its items (spooled).

    Labels and splits stay in memory: there is one per folder or name, not
    per entry. Items are numbered in the order they are added, which is the
    order they are written.
    """

    def __init__(self) -> None:
        self.labels: dict[str, str] = {}  # name -> colour ("" = palette)
        self.splits: list[str] = []
        self.config: str | None = None  # a tabular version's new config
        self._split_set: set[str] = set()
        self._db = sqlite3.connect("", isolation_level=None, check_same_thread=False)
        self._db.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.executescript(_SCHEMA)
        self._db.execute("BEGIN")  # one open transaction: inserts are not each a commit
        self.items = 0

    def close(self) -> None:
        """Drop the spool (its file is deleted with the connection)."""
        self._db.close()

    def __enter__(self) -> Plan:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- building ------------------------------------------------------------

    def add_label(self, name: str, color: str = "") -> None:
        """A label of the version (the first mention's colour is kept)."""
        self.labels.setdefault(name, color)

    def set_config(self, config: str) -> None:
        """The version's new config (a tabular version's column names)."""
        self.config = config

    def add_split(self, name: str) -> None:
        """A split of the version (kept in first-seen order)."""
        if name not in self._split_set:
            self._split_set.add(name)
            self.splits.append(name)

    def add_item(
        self,
        name: str | None,
        extension: str,
        *,
        text: str = "",
        member: str | None = None,
        key: str | None = None,
        stem: str | None = None,
    ) -> int:
        """Spool an item; returns its number. ``key`` makes it findable by :meth:`find`, ``stem`` by :meth:`has_stem`."""
        cursor = self._db.execute(
            "INSERT INTO items (key, stem, name, extension, text, member) VALUES (?, ?, ?, ?, ?, ?)",
            (key, stem, name, extension, text, member),
        )
        self.items += 1
        return cursor.lastrowid or 0

    def add_membership(self, item: int, split: str) -> None:
        self._db.execute("INSERT INTO memberships (seq, split) VALUES (?, ?)", (item, split))

    def set_blob(self, item: int, blob: BlobRef) -> None:
        """The item's content is this blob, already in the store's blob folder."""
        self._db.execute(
            "UPDATE items SET sha256 = ?, size = ?, crc32 = ? WHERE seq = ?", (blob.sha256, blob.size, blob.crc32, item)
        )

    def annotate(self, item: int, label: str, split: str, coordinates: str = "") -> None:
        self._db.execute(
            "INSERT INTO annotations (seq, label, split, coordinates) VALUES (?, ?, ?, ?)",
            (item, label, split, coordinates),
        )

    def note(self, key: str, value: str) -> None:
        """Keep ``value`` under ``key`` for the reader (a COCO image id's item and size); a later note replaces it."""
        self._db.execute("INSERT OR REPLACE INTO notes (key, value) VALUES (?, ?)", (key, value))

    # -- look-ups while building --------------------------------------------

    def noted(self, key: str) -> str | None:
        """What :meth:`note` kept under ``key``, or None."""
        row = self._db.execute("SELECT value FROM notes WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def find(self, key: str) -> int | None:
        """The number of the item added with ``key``, or None."""
        row = self._db.execute("SELECT seq FROM items WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def has_stem(self, stem: str) -> bool:
        return self._db.execute("SELECT 1 FROM items WHERE stem = ? LIMIT 1", (stem,)).fetchone() is not None

    def text_of(self, item: int) -> str:
        return self._db.execute("SELECT text FROM items WHERE seq = ?", (item,)).fetchone()[0]

    def splits_of(self, item: int) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT split FROM memberships WHERE seq = ? ORDER BY rowid", (item,))]

    def stems(self) -> Iterator[tuple[int, str, str]]:
        """(number, stem, member) of every item added with a stem, in order."""
        cursor = self._db.execute("SELECT seq, stem, member FROM items WHERE stem IS NOT NULL ORDER BY seq")
        while rows := cursor.fetchmany(_FETCH):
            yield from rows

    def members(self) -> Iterator[tuple[int, str]]:
        """(number, member) of every item whose content is an archive member, in order.

        Read a page at a time by number, so :meth:`set_blob` may be called meanwhile.
        """
        after = 0
        while rows := self._db.execute(
            "SELECT seq, member FROM items WHERE member IS NOT NULL AND seq > ? ORDER BY seq LIMIT ?", (after, _FETCH)
        ).fetchall():
            yield from rows
            after = rows[-1][0]

    # -- reading back --------------------------------------------------------

    def __iter__(self) -> Iterator[PlannedItem]:
        """The items in order, each with its splits and annotations, streamed from the spool."""
        items = self._rows("SELECT seq, name, extension, text, member, sha256, size, crc32 FROM items ORDER BY seq")
        memberships = self._grouped("SELECT seq, split FROM memberships ORDER BY seq, rowid")
        annotations = self._grouped("SELECT seq, label, split, coordinates FROM annotations ORDER BY seq, rowid")
        next_split, next_ann = next(memberships, None), next(annotations, None)
        for seq, name, extension, text, member, sha, size, crc in items:
            splits: list[str] = []
            anns: list[tuple[str, str, str]] = []
            if next_split is not None and next_split[0] == seq:
                splits = [r[1] for r in next_split[1]]
                next_split = next(memberships, None)
            if next_ann is not None and next_ann[0] == seq:
                anns = [(r[1], r[2], r[3]) for r in next_ann[1]]
                next_ann = next(annotations, None)
            blob = BlobRef(sha, size, crc) if sha is not None else None
            yield PlannedItem(name, extension, text, member, blob, splits, anns)

    def _rows(self, sql: str) -> Iterator[tuple]:
        # A cursor of its own per query: the three are read side by side.
        cursor = self._db.cursor().execute(sql)
        while rows := cursor.fetchmany(_FETCH):
            yield from rows

    def _grouped(self, sql: str) -> Iterator[tuple[int, list[tuple]]]:
        for seq, group in groupby(self._rows(sql), key=lambda r: r[0]):
            yield seq, list(group)
