"""Where an export's items come from.

A :class:`Source` resolves what is being exported (:meth:`Source.plan`),
yields the item occurrences page by page in a stable order (split, then
item id) and fetches their content. The pipeline takes any source: the
embedded store here (:class:`StoreSource` opens its own read connection,
:class:`ReaderSource` reads through one its caller holds, such as a
download's snapshot); a remote SeeMe-compatible API, a synthetic generator
or the sizes-only source of ``engine/sizing.py`` plug in the same way.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from typing import Any, Protocol

import anyio
import anyio.to_thread
import msgspec
from zlib_ng.zlib_ng import crc32

from engine.errors import InvalidInput, MissingBlob
from engine.model import Dataset, DatasetSplit, DatasetVersion, Label
from engine.store import MetadataReader, PageContent, StoreAddress
from engine.turns import CpuTurns, in_turn
from formats.base import ExportItem

__all__ = ["ExportPlan", "ReaderSource", "Source", "StoreSource", "fetch_blobs", "resolve_plan", "store_pages"]

#: File blobs up to this size are read ahead into memory by the fetch window;
#: larger ones are streamed from disk by the zip writer.
PREFETCH_MAX = 1 << 20
#: Exports of at least this many occurrences read their pages in a page reader process
#: (``engine/store/sqlite/page_process.py``) when the store offers one: below it, the
#: process's start (~0.3 s) costs more than it saves. ``$DSEXPORT_PAGE_PROCESS_FROM`` overrides it.
PAGE_PROCESS_FROM = 50_000
PAGE_PROCESS_VARIABLE = "DSEXPORT_PAGE_PROCESS_FROM"


def page_process_threshold() -> int:
    """The occurrence count from which exports read pages in a reader process: the variable, else the default."""
    raw = os.environ.get(PAGE_PROCESS_VARIABLE, "").strip()
    if not raw:
        return PAGE_PROCESS_FROM
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise InvalidInput(
            f"${PAGE_PROCESS_VARIABLE} must be a whole number of items, 0 or more, got {raw!r} "
            f"(0: always use a page reader process; a huge number: never)"
        )
    return value


class ExportPlan(msgspec.Struct, kw_only=True):
    """The resolved target of one export."""

    dataset: Dataset
    version: DatasetVersion
    labels: list[Label]
    splits: list[DatasetSplit]
    #: The split the export is limited to, or None for the whole version.
    split: DatasetSplit | None
    #: Item occurrences the export will visit (for progress and ETA).
    total: int


class Source(Protocol):
    async def plan(self, dataset_id: str, version_id: str, split: str | None) -> ExportPlan:
        """Resolve ids (``split`` by name or id); NotFound names what is unknown."""
        ...

    def pages(
        self, plan: ExportPlan, *, with_content: bool, start: int = 0, stop: int | None = None
    ) -> AsyncIterator[list[ExportItem]]:
        """Item occurrences in order, a page at a time.

        Only occurrences ``start`` to ``stop - 1`` of that order (None: to
        the end), as a shard of a scale-out export reads them; a source
        should skip the prefix without reading it.
        """
        ...

    async def fetch(self, items: list[ExportItem], window: int) -> list[ExportItem]:
        """Make each item's content ready, ``window`` reads at a time.

        Returns the items whose content is missing (the pipeline decides
        whether that fails the export). On cancellation some, all or none of
        the items may have been fetched.
        """
        ...

    async def aclose(self) -> None: ...


def resolve_plan(
    reader: MetadataReader, dataset_id: str, version_id: str, split: str | None, *, count_up_to: int | None = None
) -> ExportPlan:
    """The target of one export (``split`` by name or id), read through ``reader``.

    ``total`` is the exact count of occurrences when ``count_up_to`` is None
    (an export's progress bar). Otherwise it is the items (of the split)
    counted up to ``count_up_to + 1``: a bound that costs nothing at any
    size, where the exact count costs ~0.4 s at 1 M items (the "in no
    split" part scans every item), too much before a download's first byte.
    """
    dataset = reader.get_dataset(dataset_id)
    version = reader.get_version(dataset_id, version_id)
    chosen = reader.resolve_split(version_id, split) if split else None
    splits = [chosen] if chosen else reader.splits(version_id)
    if count_up_to is None:
        total = reader.count_occurrences(version_id, [chosen.id] if chosen else None)
    else:
        total = reader.count_items_up_to(version_id, chosen.id if chosen else None, count_up_to + 1)
    return ExportPlan(
        dataset=dataset, version=version, labels=reader.labels(version_id), splits=splits, split=chosen, total=total
    )


async def store_pages(
    reader: MetadataReader,
    plan: ExportPlan,
    content: PageContent,
    *,
    page_size: int = 512,
    cpu: CpuTurns | None = None,
    start: int = 0,
    stop: int | None = None,
    in_process: bool = False,
    on_reader_end: Callable[[int], None] | None = None,
) -> AsyncIterator[list[ExportItem]]:
    """The plan's occurrences ``start`` to ``stop - 1`` read through ``reader``, a page at a time.

    Each page is read in a worker thread, one at a time, taking a turn of
    ``cpu``. ``in_process``: the queries run in a page reader process
    (``iter_pages_in_process``) if the reader offers one, which calls
    ``on_reader_end`` with its peak RSS (KiB) when done. Cancelled or
    closed, it closes the page iterator (ending its read transaction, or
    stopping its reader process, if it began one).
    """
    arguments: dict[str, Any] = dict(
        content=content, include_unsplit=plan.split is None, page_size=page_size, start=start, stop=stop
    )
    iter_pages = getattr(reader, "iter_pages_in_process", None) if in_process else None
    if iter_pages is not None:
        arguments["on_end"] = on_reader_end
    page_iter = (iter_pages or reader.iter_pages)(
        plan.version.id or "", [plan.split.id or ""] if plan.split else None, **arguments
    )
    try:
        while page := await anyio.to_thread.run_sync(in_turn, cpu, next, page_iter, None):
            yield page
    finally:
        page_iter.close()


async def fetch_blobs(items: list[ExportItem], window: int) -> list[ExportItem]:
    """Read small file blobs into memory, ``window`` reads at a time; the items without content.

    Large file blobs are left for the zip writer to stream (checked to
    exist). On cancellation some, all or none of the small ones are read.
    """
    missing: list[ExportItem] = []
    small = []
    for item in items:
        content = item.content
        if content is None:
            missing.append(item)
        elif not isinstance(content, bytes):
            if content.size <= PREFETCH_MAX:
                small.append(item)
            elif not os.path.exists(content.path):  # type: ignore[attr-defined]
                missing.append(item)
    if small:
        groups = [small[i::window] for i in range(min(window, len(small)))]
        async with anyio.create_task_group() as tg:
            for group in groups:
                tg.start_soon(anyio.to_thread.run_sync, _read_all, group, missing)
    return missing


def _page_content(with_content: bool) -> PageContent:
    return PageContent.BYTES if with_content else PageContent.NONE


class ReaderSource:
    """Exports through a reader someone else opened and closes (a download's read snapshot).

    Every page is read through that reader, so an export sees exactly the
    state its caller has looked at. The plan's ``total`` is a cheap bound
    (see :func:`resolve_plan`): only progress bars use it.
    """

    def __init__(self, reader: MetadataReader, *, page_size: int = 512, cpu: CpuTurns | None = None) -> None:
        self._reader = reader
        self._page_size = page_size
        self._cpu = cpu

    async def plan(self, dataset_id: str, version_id: str, split: str | None) -> ExportPlan:
        reader = self._reader
        return await anyio.to_thread.run_sync(
            lambda: resolve_plan(reader, dataset_id, version_id, split, count_up_to=0)
        )

    def pages(
        self, plan: ExportPlan, *, with_content: bool, start: int = 0, stop: int | None = None
    ) -> AsyncIterator[list[ExportItem]]:
        return store_pages(
            self._reader, plan, _page_content(with_content),
            page_size=self._page_size, cpu=self._cpu, start=start, stop=stop,
        )

    async def fetch(self, items: list[ExportItem], window: int) -> list[ExportItem]:
        return await fetch_blobs(items, window)

    async def aclose(self) -> None:
        """Nothing to release: the reader belongs to the caller."""


class StoreSource:
    """Exports from the store at ``address`` (a ``StoreAddress``, or a folder path), through a reader of its own.

    Store reads run in worker threads, one at a time per export, so the
    event loop stays free for the fetch window and the sink; an export of
    ``page_process_from`` occurrences or more runs its page queries in a
    page reader process instead, where the store offers one (SQLite), unless
    ``page_process`` is False (a ``--ray`` shard: the cluster's CPUs already
    run a shard each). The reader is opened on first use and closed by
    :meth:`aclose`.
    """

    def __init__(
        self,
        address: StoreAddress | str | os.PathLike[str],
        *,
        page_size: int = 512,
        cpu: CpuTurns | None = None,
        page_process_from: int | None = None,
        page_process: bool = True,
    ) -> None:
        self._address = StoreAddress.of(address)
        self._page_size = page_size
        self._page_process_from = page_process_from if page_process_from is not None else page_process_threshold()
        self._page_process = page_process
        #: The page reader process's peak RSS in KiB, once one has read every page (None: none ran).
        self.page_reader_peak_rss_kib: int | None = None
        self._store: MetadataReader | None = None
        #: Page reads take a turn of these (shared with the writers of concurrent exports).
        self._cpu = cpu

    async def _open(self) -> MetadataReader:
        """A read-only reader: every page of the export sees one snapshot."""
        if self._store is None:
            self._store = await anyio.to_thread.run_sync(self._address.reader)
        return self._store

    async def plan(self, dataset_id: str, version_id: str, split: str | None) -> ExportPlan:
        store = await self._open()
        return await anyio.to_thread.run_sync(resolve_plan, store, dataset_id, version_id, split)

    async def pages(
        self, plan: ExportPlan, *, with_content: bool, start: int = 0, stop: int | None = None
    ) -> AsyncIterator[list[ExportItem]]:
        store = await self._open()
        count = (plan.total if stop is None else min(stop, plan.total)) - start
        pages = store_pages(
            store, plan, _page_content(with_content), page_size=self._page_size, cpu=self._cpu, start=start, stop=stop,
            in_process=self._page_process and count >= self._page_process_from, on_reader_end=self._reader_ended,
        )
        async with aclosing(pages):
            async for page in pages:
                yield page

    def _reader_ended(self, peak_rss_kib: int) -> None:
        self.page_reader_peak_rss_kib = peak_rss_kib

    async def fetch(self, items: list[ExportItem], window: int) -> list[ExportItem]:
        return await fetch_blobs(items, window)

    async def aclose(self) -> None:
        if self._store is not None:
            store, self._store = self._store, None
            await anyio.to_thread.run_sync(store.close)


def _read_all(items: list[ExportItem], missing: list[ExportItem]) -> None:
    """Read small file blobs into memory, checking size and CRC-32."""
    for item in items:
        blob = item.content
        try:
            data = blob.read()  # type: ignore[union-attr]
        except MissingBlob:
            missing.append(item)
            continue
        if len(data) != blob.size or crc32(data) != blob.crc32:  # type: ignore[union-attr]
            missing.append(item)
            continue
        item.content = data
