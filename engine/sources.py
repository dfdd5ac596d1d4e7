"""Where an export's items come from.

A :class:`Source` resolves what is being exported (:meth:`Source.plan`),
yields the item occurrences page by page in a stable order (split, then
item id) and fetches their content. The pipeline takes any source: the
embedded store here; a remote SeeMe-compatible API or a synthetic generator
plug in the same way.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

import anyio
import anyio.to_thread
import msgspec

from engine.errors import MissingBlob
from engine.model import Dataset, DatasetSplit, DatasetVersion, Label
from engine.store import PageContent, StoreReader
from engine.turns import CpuTurns, in_turn
from formats.base import ExportItem

__all__ = ["ExportPlan", "Source", "StoreSource"]

#: File blobs up to this size are read ahead into memory by the fetch window;
#: larger ones are streamed from disk by the zip writer.
PREFETCH_MAX = 1 << 20


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


class StoreSource:
    """Exports from the embedded store at ``root``.

    SQLite reads run in worker threads, one at a time per export, so the
    event loop stays free for the fetch window and the sink.
    """

    def __init__(self, root: str | os.PathLike[str], *, page_size: int = 512, cpu: CpuTurns | None = None) -> None:
        self._root = Path(root)
        self._page_size = page_size
        self._store: StoreReader | None = None
        #: Page reads take a turn of these (shared with the writers of concurrent exports).
        self._cpu = cpu

    async def _open(self) -> StoreReader:
        """A read-only connection: every page of the export sees one snapshot."""
        if self._store is None:

            self._store = await anyio.to_thread.run_sync(StoreReader.open, self._root)
        return self._store

    async def plan(self, dataset_id: str, version_id: str, split: str | None) -> ExportPlan:
        store = await self._open()

        def resolve() -> ExportPlan:
            dataset = store.get_dataset(dataset_id)
            version = store.get_version(dataset_id, version_id)
            chosen = store.resolve_split(version_id, split) if split else None
            splits = [chosen] if chosen else store.splits(version_id)
            total = store.count_occurrences(version_id, [chosen.id] if chosen else None)
            return ExportPlan(
                dataset=dataset,
                version=version,
                labels=store.labels(version_id),
                splits=splits,
                split=chosen,
                total=total,
            )

        return await anyio.to_thread.run_sync(resolve)

    async def pages(
        self, plan: ExportPlan, *, with_content: bool, start: int = 0, stop: int | None = None
    ) -> AsyncIterator[list[ExportItem]]:
        store = await self._open()
        page_iter = store.iter_pages(
            plan.version.id or "",
            [plan.split.id or ""] if plan.split else None,
            content=PageContent.BYTES if with_content else PageContent.NONE,
            include_unsplit=plan.split is None,
            page_size=self._page_size,
            start=start,
            stop=stop,
        )
        try:
            while page := await anyio.to_thread.run_sync(in_turn, self._cpu, next, page_iter, None):
                yield page
        finally:
            page_iter.close()

    async def fetch(self, items: list[ExportItem], window: int) -> list[ExportItem]:
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
        if len(data) != blob.size or zlib.crc32(data) != blob.crc32:  # type: ignore[union-attr]
            missing.append(item)
            continue
        item.content = data
