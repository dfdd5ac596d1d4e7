"""The export read path: an export's item occurrences from SQLite, a page at a time.

Keyset pagination over ``item_splits`` (split, then item id), so 5 M items
stream in pages of a thousand with flat memory. Item ids are time-ordered
(``engine.ids``), so "by item id" is also "by creation" for items the store
made. This is the hot path: one query per page for the rows (with their
blob's columns joined), one for their annotations, and one comprehension
that builds the page; no call per item it can avoid.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing

from engine.errors import InvalidInput
from engine.model import DatasetSplit, Label
from engine.store.api import BlobRef, PageContent
from engine.store.sqlite.catalog import CatalogReads
from formats.base import ExportAnnotation, ExportItem

__all__ = ["PageReads"]


# The hot queries of the export read path; ``x.id > ?`` is the keyset cursor.
_ROW = "coalesce(i.name, ''), coalesce(i.extension, ''), coalesce(i.text, ''), i.width, i.height"
_PAGE = (
    f"SELECT s.item_id, {_ROW} {{extra}} FROM item_splits s JOIN items i ON i.id = s.item_id {{join}}"
    " WHERE s.split_id = ? AND s.item_id > ? ORDER BY s.item_id LIMIT ?"
)
_UNSPLIT = (
    f"SELECT i.id, {_ROW} {{extra}} FROM items i {{join}} WHERE i.version_id = ? AND i.id > ?"
    " AND NOT EXISTS (SELECT 1 FROM item_splits s WHERE s.item_id = i.id) ORDER BY i.id LIMIT ?"
)
_UNSPLIT_COUNT = (
    "SELECT count(*) FROM items i WHERE i.version_id = ?"
    " AND NOT EXISTS (SELECT 1 FROM item_splits s WHERE s.item_id = i.id)"
)
# The id of the n-th occurrence (0-based) of a split, or of the unsplit items:
# an OFFSET walk of an index inside SQLite, no rows brought into Python.
_SPLIT_SEEK = "SELECT item_id FROM item_splits WHERE split_id = ? ORDER BY item_id LIMIT 1 OFFSET ?"
_UNSPLIT_SEEK = (
    "SELECT i.id FROM items i WHERE i.version_id = ?"
    " AND NOT EXISTS (SELECT 1 FROM item_splits s WHERE s.item_id = i.id) ORDER BY i.id LIMIT 1 OFFSET ?"
)
_CONTENT = {
    "extra": ", b.sha256, b.size, b.crc32, b.data, b.pack, b.pack_offset",
    "join": "LEFT JOIN blobs b ON b.id = i.blob_id",
}
_NO_CONTENT = {"extra": "", "join": ""}
_SIZES = {"extra": ", b.sha256, b.size, b.crc32", "join": "LEFT JOIN blobs b ON b.id = i.blob_id"}
#: In a page row of content, the blob columns (see ``SqliteBlobs.page_contents``) follow
#: id, name, extension, text, width and height.
_FIRST_BLOB_COLUMN = 6
_COLUMNS = {PageContent.NONE: _NO_CONTENT, PageContent.SIZES: _SIZES, PageContent.BYTES: _CONTENT}


class PageReads(CatalogReads):
    """Counts of an export's occurrences and the pages themselves."""

    def count_occurrences(
        self, version_id: str, split_ids: list[str] | None = None, *, include_unsplit: bool | None = None
    ) -> int:
        """How many ExportItems :meth:`iter_pages` yields for the same arguments."""
        splits = self._export_splits(version_id, split_ids)
        total = sum(self._one("SELECT count(*) FROM item_splits WHERE split_id = ?", (s.id,))[0] for s in splits)
        if _with_unsplit(split_ids, include_unsplit):
            total += self._one(
                "SELECT count(*) FROM items i WHERE i.version_id = ?"
                " AND NOT EXISTS (SELECT 1 FROM item_splits s WHERE s.item_id = i.id)",
                (version_id,),
            )[0]
        return total

    # -- the export read path ------------------------------------------------

    def _export_splits(self, version_id: str, split_ids: list[str] | None) -> list[DatasetSplit]:
        self._version_row(version_id)
        if split_ids is None:
            return self.splits(version_id)
        return [self._split_in(version_id, s) for s in split_ids]

    def iter_pages(
        self,
        version_id: str,
        split_ids: list[str] | None = None,
        *,
        content: PageContent,
        include_unsplit: bool | None = None,
        page_size: int = 1000,
        start: int = 0,
        stop: int | None = None,
    ) -> Iterator[list[ExportItem]]:
        """Item occurrences in export order, ``page_size`` at a time.

        ``start``/``stop`` limit the iteration to occurrences ``start`` to
        ``stop - 1`` of that order (a shard of a scale-out export). The
        prefix is skipped inside SQLite: whole splits by their counts, then
        one ``OFFSET`` walk of the split's index to find the first item id,
        from which keyset paging goes on as usual.

        Order: each split of ``split_ids`` in turn (None: all the version's
        splits, in creation order), its items by id, each with that split's
        annotations; then, if ``include_unsplit``, items in no split
        (``split=None``). ``include_unsplit=None`` means "when exporting the
        whole version", i.e. when ``split_ids`` is None; a split export
        leaves them out. Unknown ids raise NotFound here, before the first
        page. On a :class:`StoreReader` the whole iteration reads one
        snapshot (a read transaction, ended when the iterator is exhausted
        or closed).
        """
        splits, unsplit = self._target(version_id, split_ids, include_unsplit, page_size, start, stop)
        return self._pages(version_id, splits, PageContent(content), unsplit, page_size, start, stop)

    def _target(
        self, version_id: str, split_ids: list[str] | None, include_unsplit: bool | None,
        page_size: int, start: int, stop: int | None,
    ) -> tuple[list[DatasetSplit], bool]:
        """The splits and whether the unsplit items follow, after checking the arguments (NotFound, InvalidInput)."""
        if page_size < 1:
            raise InvalidInput(f"page_size must be at least 1, got {page_size}")
        if start < 0 or (stop is not None and stop < start):
            raise InvalidInput(f"invalid occurrence range {start}..{stop}")
        return self._export_splits(version_id, split_ids), _with_unsplit(split_ids, include_unsplit)

    def _pages(
        self,
        version_id: str,
        splits: list[DatasetSplit],
        content: PageContent,
        include_unsplit: bool,
        size: int,
        start: int = 0,
        stop: int | None = None,
    ) -> Iterator[list[ExportItem]]:
        with self._snapshot():
            rows = self._page_rows(version_id, splits, content, include_unsplit, size, start, stop)
            yield from self._items_of(lambda: self.labels(version_id), rows, content, compact=False)

    def iter_pages_in_process(
        self,
        version_id: str,
        split_ids: list[str] | None = None,
        *,
        content: PageContent,
        include_unsplit: bool | None = None,
        page_size: int = 1000,
        start: int = 0,
        stop: int | None = None,
        on_end: Callable[[int], None] | None = None,
    ) -> Iterator[list[ExportItem]]:
        """:meth:`iter_pages`, its queries run by a page reader process (``page_process.py``).

        The same pages, built here from the same rows; the reader holds a
        snapshot of its own. Why: the queries and their rows are a third of
        an export of small items, and a second process runs them on the
        other core (a thread could not: the GIL hand-offs of every SQLite
        step cost more than they save). Closing the iterator stops the reader.
        ``on_end`` is called with the reader's peak RSS (KiB) once it has sent every page.
        """
        from engine.store.sqlite.page_process import PageProcess

        splits, unsplit = self._target(version_id, split_ids, include_unsplit, page_size, start, stop)
        content = PageContent(content)
        inline = content is PageContent.BYTES and not self.blobs.packed
        process = PageProcess(
            self.root, version_id, splits, content, unsplit, page_size, start, stop, inline=inline, on_end=on_end
        )
        return self._items_of(process.labels, process, content, compact=True)

    def _items_of(
        self,
        labels: Callable[[], list[Label]],
        pages: Iterator[tuple[list, DatasetSplit | None, list]],
        content: PageContent,
        *,
        compact: bool,
    ) -> Iterator[list[ExportItem]]:
        """ExportItems of each page of rows, annotations resolved against ``labels()`` (asked first).

        A page's annotations are its annotation rows, or with ``compact`` the
        page reader's form of them (``page_process.compact_annotations``).
        """
        with closing(pages):  # type: ignore[type-var]
            annotator = _Annotator(labels())
            notes_of = annotator.expand if compact else annotator.group
            if content is PageContent.BYTES and self.blobs.packed:
                yield from self._prefetched(pages, notes_of)
                return
            if compact and content is PageContent.BYTES:
                for rows, split, annotations in pages:
                    yield self._inline_items(rows, split, notes_of(rows, annotations))
                return
            for rows, split, annotations in pages:
                yield self._export_items(rows, split, notes_of(rows, annotations), content)

    def _prefetched(self, pages: Iterator[tuple], notes_of: Callable[[list, list], list]) -> Iterator[list[ExportItem]]:
        """Pages of packed content, each page's ranged reads in flight while the one before is consumed.

        Why: a page's packed blobs are one network round trip; overlapping it
        with the export of the previous page (and this page's query) hides it.
        Closing the iterator waits for at most one read in flight.
        """
        with ThreadPoolExecutor(1, thread_name_prefix="pack-read") as pool:
            pending = None
            for rows, split, annotations in pages:
                future = pool.submit(self.blobs.page_contents, rows, _FIRST_BLOB_COLUMN)
                if pending is not None:
                    yield self._packed_items(*pending)
                pending = (rows, split, notes_of(rows, annotations), future)
            if pending is not None:
                yield self._packed_items(*pending)

    @staticmethod
    def _packed_items(
        rows: list[tuple], split: DatasetSplit | None, notes: list[list[ExportAnnotation]], contents: Future
    ) -> list[ExportItem]:
        return [
            ExportItem(r[0], r[1], r[2], r[3], split, a, c, r[4], r[5])
            for r, a, c in zip(rows, notes, contents.result())
        ]

    def _page_rows(
        self,
        version_id: str,
        splits: list[DatasetSplit],
        content: PageContent,
        include_unsplit: bool,
        size: int,
        start: int = 0,
        stop: int | None = None,
    ) -> Iterator[tuple[list[tuple], DatasetSplit | None, list[tuple]]]:
        """Each page's rows with its split and annotation rows, in export order, from one snapshot."""
        with self._snapshot():
            cols = _COLUMNS[content]
            page = _PAGE.format(**cols)
            unsplit = _UNSPLIT.format(**cols)
            ranges = self._ranges(version_id, splits, include_unsplit, start, stop)
            for split in splits:
                if (cut := ranges.get(split.id)) is None:
                    continue
                for rows in self._keyset(page, split.id, size, *cut):
                    annotations = self._all(
                        "SELECT item_id, label_id, coordinates FROM annotations"
                        " WHERE split_id = ? AND item_id BETWEEN ? AND ? ORDER BY item_id, rowid",
                        (split.id, rows[0][0], rows[-1][0]),
                    )
                    yield rows, split, annotations
            if include_unsplit and (cut := ranges.get(None)) is not None:
                for rows in self._keyset(unsplit, version_id, size, *cut):
                    ids = [r[0] for r in rows]
                    annotations = self._all(
                        f"SELECT item_id, label_id, coordinates FROM annotations"
                        f" WHERE item_id IN ({','.join('?' * len(ids))}) ORDER BY item_id, rowid",
                        tuple(ids),
                    )
                    yield rows, None, annotations

    def _ranges(
        self, version_id: str, splits: list[DatasetSplit], include_unsplit: bool, start: int, stop: int | None
    ) -> dict[str | None, tuple[str, int | None]]:
        """For each split (None: the unsplit items) that overlaps ``start..stop``:
        the item id to resume after and how many rows to read (None: all)."""
        groups: list[tuple[str | None, str, str]] = [
            (s.id, "SELECT count(*) FROM item_splits WHERE split_id = ?", s.id or "") for s in splits
        ]
        if include_unsplit:
            groups.append((None, _UNSPLIT_COUNT, version_id))
        if start == 0 and stop is None:
            return {key: ("", None) for key, _, _ in groups}
        out: dict[str | None, tuple[str, int | None]] = {}
        before = 0  # occurrences in the groups already passed
        for key, count_sql, arg in groups:
            if stop is not None and before >= stop:
                break
            count = self._one(count_sql, (arg,))[0]
            skip = max(start - before, 0)
            if skip < count:
                take = None if stop is None or stop - before >= count else stop - before - skip
                after = ""
                if skip:
                    seek = _SPLIT_SEEK if key is not None else _UNSPLIT_SEEK
                    after = self._one(seek, (arg, skip - 1))[0]
                out[key] = (after, take)
            before += count
        return out

    def _keyset(
        self, sql: str, key: str, size: int, after: str = "", limit: int | None = None
    ) -> Iterator[list[tuple]]:
        """Pages of ``sql`` rows (first column the cursor), each query resuming after the last id.

        At most ``limit`` rows in all when given.
        """
        left = limit
        while True:
            want = size if left is None else min(size, left)
            if want <= 0 or not (rows := self._all(sql, (key, after, want))):
                return
            yield rows
            if len(rows) < want:
                return
            if left is not None:
                left -= len(rows)
            after = rows[-1][0]

    def _export_items(
        self,
        rows: list[tuple],
        split: DatasetSplit | None,
        notes: list[list[ExportAnnotation]],
        content: PageContent,
    ) -> list[ExportItem]:
        """One page of ExportItems, ``notes`` the annotations of each row (the hot loop: one
        comprehension, no call per item it can avoid)."""
        if content is PageContent.NONE:
            return [ExportItem(r[0], r[1], r[2], r[3], split, a, None, r[4], r[5]) for r, a in zip(rows, notes)]
        if content is PageContent.SIZES:
            return [
                ExportItem(
                    r[0], r[1], r[2], r[3], split, a, BlobRef(r[6], r[7], r[8]) if r[6] else None, r[4], r[5]
                )
                for r, a in zip(rows, notes)
            ]
        read = self.blobs.content
        return [
            ExportItem(r[0], r[1], r[2], r[3], split, a, read(r[0], *r[_FIRST_BLOB_COLUMN:]), r[4], r[5])
            for r, a in zip(rows, notes)
        ]


    def _inline_items(
        self, rows: list[list], split: DatasetSplit | None, notes: list[list[ExportAnnotation]]
    ) -> list[ExportItem]:
        """One page of ExportItems from the page reader's rows of ``page_process.compact_contents``."""
        read = self.blobs.content
        return [
            ExportItem(
                r[0], r[1], r[2], r[3], split, a,
                c if (c := r[6]) is None or type(c) is bytes else read(r[0], *c),
                r[4], r[5],
            )
            for r, a in zip(rows, notes)
        ]


class _Annotator:
    """Resolves a page's annotations to ExportAnnotations, one list per row, labels loaded once per export."""

    def __init__(self, labels: list[Label]) -> None:
        self._labels = {label.id: label for label in labels}
        self._by_position = labels
        # Classification annotations (no coordinates) are shared: one per label.
        self._plain = [ExportAnnotation(label, "") for label in labels]
        self._plain_by_id = {label.id: plain for label, plain in zip(labels, self._plain)}

    def group(self, rows: list[tuple], annotation_rows: list[tuple[str, str, str]]) -> list[list[ExportAnnotation]]:
        """From annotation rows ``(item id, label id, coordinates)`` in order."""
        found: dict[str, list[ExportAnnotation]] = {}
        for item_id, label_id, coordinates in annotation_rows:
            if coordinates:
                ann = ExportAnnotation(self._labels[label_id], coordinates)
            else:
                ann = self._plain_by_id[label_id]
            found.setdefault(item_id, []).append(ann)
        get = found.get
        return [get(r[0]) or [] for r in rows]

    def expand(self, rows: list, compact: list) -> list[list[ExportAnnotation]]:
        """From the page reader's form (``page_process.compact_annotations``): label positions, nothing to look up."""
        plain = self._plain
        return [
            [] if c is None else [plain[c]] if type(c) is int else self._several(c)
            for c in compact
        ]

    def _several(self, entries: list) -> list[ExportAnnotation]:
        labels, plain = self._by_position, self._plain
        return [plain[e] if type(e) is int else ExportAnnotation(labels[e[0]], e[1]) for e in entries]


def _with_unsplit(split_ids: list[str] | None, include_unsplit: bool | None) -> bool:
    """Items in no split belong to a whole-version export, not to a split export, unless told."""
    return split_ids is None if include_unsplit is None else include_unsplit


