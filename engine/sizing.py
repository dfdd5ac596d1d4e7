"""An archive's exact size before a byte of it is written.

The size comes from the code that writes the archive: the pipeline runs an
ordinary :class:`~engine.pipeline.ExportJob` (same plan, claims, spools,
format and trailer entries) over a :class:`SizesSource`, whose items carry
their blob's recorded size and CRC-32 in place of its bytes (the store
records both at ingest), and the job writes into a
:class:`~engine.zipwriter.ZipSizer`, which counts what the zip writer would
write and writes nothing. No blob is read. A change to a format, to the
order of pages or to the job's set-up therefore changes the predicted size
and the archive alike.

Cost: one pass over the metadata (about the cost of an export of text
items), so the download endpoint only does it up front for small versions,
for Range requests, and otherwise learns the size from the first complete
export (see ``engine/server/exports.py``). Only stored archives are sized:
a deflated one's length is known when it has been written.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator


from engine.pipeline import ExportJob, ExportOptions, export
from engine.sinks import Sink
from engine.sources import ExportPlan, ReaderSource, store_pages
from engine.store import PageContent, StoreReader
from engine.turns import CpuTurns
from engine.zipwriter import ZipSizer
from formats.base import ExportItem

__all__ = ["SizesSource", "archive_size"]

#: Sizing reads no content, so its pages can be larger than an export's.
SIZING_PAGE = 2048


class SizesSource(ReaderSource):
    """Pages of ``reader`` whose items carry their blob's size and CRC-32, never its bytes.

    A :class:`~engine.sources.ReaderSource` in all but what its pages carry
    and what a fetch does: an item whose format needs content and that has
    none is reported missing, as the real export's fetch reports it.
    Closing the source leaves ``reader`` open.
    """

    def __init__(self, reader: StoreReader, *, cpu: CpuTurns | None = None, page_size: int = SIZING_PAGE) -> None:
        super().__init__(reader, page_size=page_size, cpu=cpu)

    def pages(
        self, plan: ExportPlan, *, with_content: bool, start: int = 0, stop: int | None = None
    ) -> AsyncIterator[list[ExportItem]]:
        content = PageContent.SIZES if with_content else PageContent.NONE
        return store_pages(
            self._reader, plan, content, page_size=self._page_size, cpu=self._cpu, start=start, stop=stop
        )

    async def fetch(self, items: list[ExportItem], window: int) -> list[ExportItem]:
        """Nothing to read: the items without content."""
        return [item for item in items if item.content is None]


class _NoOutput:
    """The sink of a sizing run: the sizer writes no bytes, so nothing arrives here."""

    def write(self, data: bytes) -> None:
        raise AssertionError("a sizing run writes no bytes")

    def commit(self, size: int | None = None) -> None:
        pass

    def abort(self) -> None:
        pass


def _sizer(sink: Sink, compress_type: int) -> ZipSizer:
    return ZipSizer(compress_type)


async def archive_size(
    reader: StoreReader, dataset_id: str, version_id: str, options: ExportOptions, *, cpu: CpuTurns | None = None
) -> int:
    """The exact byte length of the archive the export of ``options`` writes from ``reader``.

    ``reader``: the download's snapshot, so the size is that of the bytes it
    will send. ``cpu``: the turns the process's exports share. InvalidInput
    for a compressed archive; MissingBlob (unless ``options.skip_missing``)
    for an item whose content was never stored. Cancelled, it leaves
    nothing behind (the job's spools and claims are removed).
    """
    result = await export(
        SizesSource(reader, cpu=cpu),
        dataset_id,
        version_id,
        _NoOutput(),
        options,
        job_factory=functools.partial(ExportJob, writer=_sizer),
        cpu=cpu,
    )
    return result.bytes
