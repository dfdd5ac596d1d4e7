"""A Source over a remote SeeMe-compatible API: client-side export.

It reads a version's metadata and items through the same calls the SeeMe
SDK makes (``GET datasets/{d}``, ``.../versions/{v}``, ``.../labels``,
``.../splits``, ``.../items?pageSize=&pageCount=&splitId=``) and fetches
item files from ``.../items/{i}/download``, so the engine can build any
of its formats from any back end that speaks that API.

Order matters for byte-identical archives: the engine visits each split's
items by id, then items in no split. It pages each split with ``splitId``;
for items in no split it asks for ``onlyUnsplit=true`` (our server filters
by it; a back end that ignores it sends every item, and this source keeps
those with no split, so the result is the same either way).

Fetching: ``window`` downloads run at once over a pooled connection set,
each retried with backoff on timeouts, dropped connections and 5xx. Item
files are kept in memory up to :data:`MEMORY_PER_BATCH` bytes per batch
(and :data:`IN_MEMORY_MAX` per file); the rest go to unlinked temporary
files, so a batch of large images never piles up in RAM.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import msgspec

from engine.client.api import RemoteApi, is_transient
from engine.errors import NotFound, choices_hint
from engine.model import Dataset, DatasetSplit, DatasetVersion, Label
from engine.sources import ExportPlan
from engine.spool import FileSpool
from formats.base import ExportAnnotation, ExportItem

__all__ = ["HttpSource", "RemoteFile", "http_source"]

IN_MEMORY_MAX = 1 << 20
MEMORY_PER_BATCH = 8 << 20
PAGE_SIZE = 1000


class _Ref(msgspec.Struct):
    id: str


class _Ann(msgspec.Struct):
    label_id: str
    split_id: str | None = None
    coordinates: str | None = None


class _Item(msgspec.Struct):
    """The fields of a DatasetItem an export needs; the rest of the JSON is skipped by the decoder."""

    id: str
    name: str | None = None
    extension: str | None = None
    text: str | None = None
    splits: list[_Ref] | None = None
    annotations: list[_Ann] | None = None
    #: The image's size in pixels (COCO needs it); absent from servers that do not record it.
    width: int | None = None
    height: int | None = None


class RemoteFile:
    """An item's file still on the server: a placeholder until :meth:`HttpSource.fetch` replaces it."""

    __slots__ = ("path",)
    size = 0  # unknown until fetched; batches are cut by item count meanwhile
    crc32 = None

    def __init__(self, path: str) -> None:
        self.path = path

    def chunks(self) -> Iterator[bytes]:
        raise RuntimeError("a remote file is written only after it has been fetched")


class HttpSource:
    """Exports from the API at ``api`` (which the source owns and closes)."""

    def __init__(self, api: RemoteApi, *, page_size: int = PAGE_SIZE) -> None:
        self._api = api
        self._page_size = page_size
        self._pages = msgspec.json.Decoder(list[_Item])

    async def plan(self, dataset_id: str, version_id: str, split: str | None) -> ExportPlan:
        base = f"datasets/{dataset_id}/versions/{version_id}"
        dataset = await self._api.get_json(f"datasets/{dataset_id}", type=Dataset)
        version = await self._api.get_json(base, type=DatasetVersion)
        labels = await self._api.get_json(f"{base}/labels", type=list[Label] | None) or []
        splits = await self._api.get_json(f"{base}/splits", type=list[DatasetSplit] | None) or []
        chosen = _resolve_split(splits, split) if split else None
        if chosen is not None:
            splits = [chosen]
        total = sum([await self._count(base, {"splitId": s.id or ""}) or 0 for s in splits])
        if chosen is None:
            total += await self._count(base, {"onlyUnsplit": "true"}) or 0
        return ExportPlan(
            dataset=dataset,
            version=version,
            labels=sorted(labels, key=lambda label: label.index or 0),  # the server's order, index first
            splits=splits,
            split=chosen,
            total=total,
        )

    async def _count(self, base: str, filters: dict[str, str]) -> int | None:
        """Items matching ``filters``: ``X-Total-Count`` where the server sends it, else None (unknown)."""
        response = await self._api.get(f"{base}/items", {**filters, "pageSize": "1", "pageCount": "0"})
        header = response.headers.get("x-total-count")
        return int(header) if header and header.isdigit() else None

    async def pages(
        self, plan: ExportPlan, *, with_content: bool, start: int = 0, stop: int | None = None
    ) -> AsyncIterator[list[ExportItem]]:
        """Each split's items by id, then (whole-version exports) items in no split.

        ``start``/``stop``: only those occurrences of that order (a scale-out
        shard). Where the server counts (``X-Total-Count``), whole splits and
        pages before ``start`` are skipped unread.
        """
        base = f"datasets/{plan.dataset.id}/versions/{plan.version.id}"
        labels = {label.id: label for label in plan.labels}
        seen = 0
        groups: list[tuple[DatasetSplit | None, dict[str, str]]] = [(s, {"splitId": s.id or ""}) for s in plan.splits]
        if plan.split is None:
            groups.append((None, {"onlyUnsplit": "true"}))
        for split, filters in groups:
            page_number = 0
            if start > seen and split is not None:  # a shard: skip whole splits and pages before ``start``
                count = await self._count(base, filters)
                if count is not None and seen + count <= start:
                    seen += count
                    continue
                if count is not None:
                    page_number = (start - seen) // self._page_size
                    seen += page_number * self._page_size
            while True:
                params = {**filters, "pageSize": str(self._page_size), "pageCount": str(page_number)}
                response = await self._api.get(f"{base}/items", params)
                listed = self._pages.decode(response.content)
                kept = listed if split is not None else [item for item in listed if not item.splits]
                page = [_export_item(item, split, labels, base, with_content) for item in kept]
                first, seen = seen, seen + len(page)
                lo, hi = max(start - first, 0), len(page) if stop is None else min(stop - first, len(page))
                if lo < hi:
                    yield page[lo:hi]
                if stop is not None and seen >= stop:
                    return
                if len(listed) < self._page_size:
                    break
                page_number += 1

    async def fetch(self, items: list[ExportItem], window: int) -> list[ExportItem]:
        missing: list[ExportItem] = []
        queue = iter([item for item in items if isinstance(item.content, RemoteFile)])
        missing.extend(item for item in items if item.content is None)
        budget = [MEMORY_PER_BATCH]

        async def worker(lane: int) -> None:
            for item in queue:
                if not await self._fetch_one(item, budget, lane):
                    missing.append(item)

        async with anyio.create_task_group() as tg:
            for lane in range(min(window, len(items))):
                tg.start_soon(worker, lane)
        return missing

    async def _fetch_one(self, item: ExportItem, budget: list[int], lane: int) -> bool:
        """Fetch one item's file; False if the server has none.

        The first try goes without the retry machinery (it costs ~60 µs an item,
        a tenth of a small item's cost); only a failed try enters the backoff loop.
        """
        try:
            return await self._download(item, budget, lane)
        except Exception as exc:  # noqa: BLE001
            if not is_transient(exc):
                raise
        with self._api.errors():
            async for attempt in self._api.retrying():
                with attempt:
                    return await self._download(item, budget, lane)
        raise AssertionError("unreachable: the retry loop returns or raises")

    async def _download(self, item: ExportItem, budget: list[int], lane: int) -> bool:
        """One GET of the item's file, into memory or (past the budget) an unlinked temporary file."""
        parts: list[bytes] = []
        held = 0
        spool: FileSpool | None = None
        try:
            async with self._api.stream(item.content.path, lane=lane) as response:  # type: ignore[union-attr]
                async for chunk in response.aiter_raw(1 << 16):
                    if spool is None and held + len(chunk) > min(IN_MEMORY_MAX, budget[0]):
                        spool = FileSpool()
                        for part in parts:
                            spool.write(part)
                        parts = []
                    if spool is not None:
                        spool.write(chunk)
                    else:
                        parts.append(chunk)
                    held += len(chunk)
        except NotFound:
            return False
        except BaseException:
            if spool is not None:
                spool.discard()
            raise
        if spool is not None:
            item.content = spool.close()
        else:
            item.content = b"".join(parts)
            budget[0] -= held
        return True

    async def aclose(self) -> None:
        await self._api.aclose()


def http_source(backend: str, apikey: str | None, **settings: Any) -> HttpSource:
    """An HttpSource with its own API client (``settings``: RemoteApi's keywords); a partial of this
    is the picklable source factory a scale-out worker gets."""
    return HttpSource(RemoteApi(backend, apikey, **settings))


def _resolve_split(splits: list[DatasetSplit], wanted: str) -> DatasetSplit:
    """A split by id, else by name; NotFound lists the valid ones."""
    for split in splits:
        if split.id == wanted:
            return split
    for split in splits:
        if split.name == wanted:
            return split
    raise NotFound(f"unknown split {wanted!r}; valid: {choices_hint(s.name or s.id or '' for s in splits)}")


def _export_item(
    item: _Item, split: DatasetSplit | None, labels: dict[str | None, Label], base: str, with_content: bool
) -> ExportItem:
    """One occurrence of ``item`` in ``split`` (None: no split), with that split's annotations."""
    annotations = [
        ExportAnnotation(labels[ann.label_id], ann.coordinates or "")
        for ann in item.annotations or ()
        if ann.label_id in labels and (split is None or ann.split_id == split.id)
    ]
    content = RemoteFile(f"{base}/items/{item.id}/download") if with_content else None
    return ExportItem(
        item.id, item.name or "", item.extension or "", item.text or "", split, annotations, content,
        item.width, item.height,
    )
