"""An archive's exact size before a byte of it is written.

The format is run over the version's metadata with :class:`SizedBlob`
stand-ins for content (the store recorded every blob's size at ingest), and
the ``(path, size)`` of each entry it asks for goes into
``predicted_zip_size``, zipstream-ng's own accounting. No blob is read. The
names, order and trailer files are those of the real export because they
come from the same format code over the same pages.

Cost: one pass over the metadata (about the cost of an export of text
items), so the download endpoint only does it up front for small versions,
for Range requests, and otherwise learns the size from the first complete
export (see ``download.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing

from engine.errors import MissingBlob
from engine.pipeline import ExportOptions, check_options
from engine.sources import ExportPlan
from engine.spool import FileSpool, SpillingClaims
from engine.store import StoreReader
from engine.zipwriter import predicted_zip_size
from formats.base import ExportContext

__all__ = ["archive_size", "resolve_plan"]


def resolve_plan(
    store: StoreReader, dataset_id: str, version_id: str, split: str | None, *, count_up_to: int = 0
) -> ExportPlan:
    """The plan ``StoreSource.plan`` makes (split by id or name), with a cheap, bounded ``total``.

    ``total`` counts the items (of the split) up to ``count_up_to + 1``: the
    exact count of occurrences costs ~0.4 s at 1 M items (the "in no split"
    part scans every item), too much before a first byte.
    """
    dataset = store.get_dataset(dataset_id)
    version = store.get_version(dataset_id, version_id)
    chosen = store.resolve_split(version_id, split) if split else None
    splits = [chosen] if chosen else store.splits(version_id)
    if chosen is None:
        sql, key = "SELECT count(*) FROM (SELECT 1 FROM items WHERE version_id = ? LIMIT ?)", version_id
    else:
        sql, key = "SELECT count(*) FROM (SELECT 1 FROM item_splits WHERE split_id = ? LIMIT ?)", chosen.id
    total = store._one(sql, (key, count_up_to + 1))[0]
    return ExportPlan(
        dataset=dataset, version=version, labels=store.labels(version_id), splits=splits, split=chosen, total=total
    )


def archive_size(reader: StoreReader, dataset_id: str, version_id: str, options: ExportOptions) -> int:
    """The exact byte length of the stored (uncompressed) archive this export writes.

    ``reader``: the download's snapshot, so the size is that of the bytes it will send.
    """
    plan = resolve_plan(reader, dataset_id, version_id, options.split)
    format_cls = check_options(plan, options)
    claims = SpillingClaims()
    spools: list[FileSpool] = []

    def new_spool(*, head: bytes = b"", separator: bytes = b"", tail: bytes = b"") -> FileSpool:
        spools.append(FileSpool(head=head, separator=separator, tail=tail))
        return spools[-1]

    ctx = ExportContext(
        dataset=plan.dataset, version=plan.version, labels=plan.labels, splits=plan.splits,
        names=claims, spool=new_spool,
    )
    fmt = format_cls(ctx)
    needs = format_cls.needs_content(plan.dataset)

    def entries() -> Iterator[tuple[str, int]]:
        pages = reader.iter_pages(
            version_id,
            [plan.split.id or ""] if plan.split else None,
            with_content=needs,
            include_unsplit=plan.split is None,
            page_size=2048,
            sizes_only=True,
        )
        with closing(pages):  # a format's refusal ends the page read here, not when the garbage collector gets to it
            for page in pages:
                for item in page:
                    if needs and item.content is None:
                        raise MissingBlob(f"item {item.id} has no content; upload its file first", item_id=item.id)
                    for path, data in fmt.entries(item):
                        yield path, len(data) if isinstance(data, bytes) else data.size
        for entry in fmt.finish():
            yield entry.path, len(entry.data) if isinstance(entry.data, bytes) else entry.data.size

    try:
        return predicted_zip_size(entries())
    finally:
        claims.close()
        for spool in spools:
            spool.discard()
