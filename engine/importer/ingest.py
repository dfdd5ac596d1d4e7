"""Import an exported ZIP back into a version (``dsexport import``, and ``POST .../upload`` through the server).

All or nothing, in three steps:

1. **Check the archive** (:func:`check_archive`) before reading any entry:
   a readable ZIP; no hostile names (:mod:`engine.archive_names`: absolute
   paths, ``..``, backslashes, drive letters, NUL or control characters,
   symlinks, duplicate names); at most :data:`MAX_ENTRIES` entries; no
   entry whose compression ratio passes :data:`MAX_RATIO`; and
   :mod:`engine.importer.archive_guard`'s checks: local
   headers that match the central directory, entries that neither overlap
   nor come out of order, stored or deflate only, nothing encrypted, and an
   uncompressed total within the archive's size times :data:`MAX_RATIO`
   and the operator's ``DSEXPORT_IMPORT_MAX_BYTES`` (zip bombs). Declared
   sizes bound every later read (``zipfile`` stops at them and checks each
   CRC), and every member is read through the guard, so a corrupt or short
   entry is an error naming it.
2. **Read the layout**: the format's own ``read()`` (``formats/<name>.py``)
   fills a plan (labels, splits, items with their annotations and the
   member holding their content), holding no store lock. The plan is
   spooled to a temporary file (:mod:`engine.importer.plan`) and entries
   are read in bounded memory within operator-set limits
   (:mod:`engine.importer.reads`, :mod:`engine.importer.limits`: a text at
   most 16 MiB, at most 1,000,000 entries, checked before ``zipfile`` loads
   the central directory). A layout that does not fit (no ``.names`` in a
   YOLO archive, a CSV archive without its config, a text file that is not
   UTF-8 or too long, nesting deeper than the format has, a format that
   cannot hold the version's content type) is an ``InvalidInput`` naming the
   entry: HTTP 400, CLI exit 2.
3. **Ingest** in one store transaction: labels and splits are matched by
   name (missing ones created), items streamed from the plan with their
   content and annotations. Any failure rolls the transaction back, so the
   version is exactly as it was. (Blob files of 64 KiB and more are written
   before the transaction, which only records them; they are
   content-addressed, so one left by a failed import is unreferenced and
   harmless.) Other requests' reads run beside
   the transaction and see none of it until it commits; other writes wait
   for it.

What each layout loses on the way back is said by its ``read()``.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import msgspec

from engine.archive_names import HostileName, check_names
from engine.errors import InvalidInput
from engine.images import blob_size, image_size
from engine.importer.archive_guard import MAX_RATIO, check_inflation, check_layout, open_archive
from engine.importer.plan import Plan
from engine.importer.reads import ZipArchiveReader, check_entry_count
from engine.store import INLINE_LIMIT, NewItem, Store
from formats import get_format, natural_format
from formats.reading import ImportTarget, refused

__all__ = ["MAX_ENTRIES", "MAX_RATIO", "ImportCounts", "check_archive", "import_archive"]

MAX_ENTRIES = 5_000_000
_RATIO_FLOOR = 1 << 20  # small entries may compress well; the ratio applies above 1 MiB


class ImportCounts(msgspec.Struct):
    """What an import added to the version."""

    items: int = 0
    labels: int = 0
    splits: int = 0
    annotations: int = 0


def _bad(message: str) -> InvalidInput:
    if message.startswith("rejected archive: "):  # already refused by the archive guard or a reader
        return InvalidInput(message)
    return refused(message)


# -- step 1 -------------------------------------------------------------------


def check_archive(zf: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """The archive's file entries, or InvalidInput naming the first hostile one."""
    infos = zf.infolist()
    if len(infos) > MAX_ENTRIES:
        raise _bad(f"{len(infos)} entries; at most {MAX_ENTRIES} are accepted")
    try:
        check_names(infos)
    except HostileName as exc:
        raise _bad(str(exc)) from None
    check_layout(zf)
    files = []
    for info in infos:
        if info.is_dir():
            continue
        if info.file_size > _RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise _bad(
                f"entry {info.filename!r} expands {info.file_size / max(info.compress_size, 1):.0f}x "
                f"(more than {MAX_RATIO}x): a zip bomb?"
            )
        files.append(info)
    check_inflation(zf)
    return files


# -- steps 2 and 3 --------------------------------------------------------------


def import_archive(store: Store, version_id: str, archive: str | Path | IO[bytes], fmt: str) -> ImportCounts:
    """Import ``archive`` (a path or a seekable binary file) into the version, all or nothing.

    The archive is checked and read into a spooled plan first, with no store
    lock held (reads of the store go on meanwhile, and so do other writes);
    then one write transaction adds the plan's labels, splits and items.
    """
    layout = get_format(fmt)
    content_type = store.version_content_type(version_id).value
    if content_type not in layout.content_types:
        raise InvalidInput(
            f"a {layout.name} archive cannot be imported into a {content_type!r} version; "
            f"its format is {natural_format(content_type)}"
        )
    check_entry_count(archive)
    zf = open_archive(archive)
    with zf, Plan() as plan:
        files = check_archive(zf)
        target = ImportTarget(
            content_type,
            [label.name for label in store.labels(version_id)],
            [split.name for split in store.splits(version_id)],
        )
        try:
            layout.read(ZipArchiveReader(zf, files), plan, target)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
            raise _bad(f"an entry cannot be read ({exc})") from None
        del files  # the plan holds what the ingest needs
        _write_files(store, zf, plan)
        return _ingest(store, version_id, zf, plan)


def _write_files(store: Store, zf: zipfile.ZipFile, plan: Plan) -> None:
    """Put each large member's bytes in the blob folder before the write transaction.

    Blob files are content-addressed, so those of an import that fails later
    are unreferenced and harmless; the transaction then only records them.
    """
    for item, member in plan.members():
        info = zf.getinfo(member)
        if info.file_size < INLINE_LIMIT:
            continue
        try:
            with zf.open(info) as f:
                blob = store.blobs.write_file(iter(lambda: f.read(1 << 20), b""))
        except zipfile.BadZipFile as exc:
            raise _bad(f"{member}: {exc}") from None
        if blob is None:
            raise _bad(f"{member}: shorter than its declared {info.file_size} bytes")
        plan.set_blob(item, blob)


def _ingest(store: Store, version_id: str, zf: zipfile.ZipFile, plan: Plan) -> ImportCounts:
    """Write the plan in one transaction: labels and splits by name, then the items streamed from the spool."""
    counts = ImportCounts()
    with store.transaction():
        labels = {label.name: label.id for label in store.labels(version_id)}
        for name, color in plan.labels.items():
            if name not in labels:
                labels[name] = store.create_label(version_id, name, color=color).id or ""
                counts.labels += 1
        splits = {split.name: split.id for split in store.splits(version_id)}
        for name in plan.splits:
            if name not in splits:
                splits[name] = store.create_split(version_id, name).id or ""
                counts.splits += 1
        if plan.config is not None:
            store.update_version_config(version_id, plan.config)

        def rows() -> Iterator[NewItem]:
            for item in plan:
                row = NewItem(
                    name=item.name,
                    extension=item.extension,
                    text=item.text,
                    split_ids=[splits[s] for s in item.splits],
                    annotations=[(labels[l], splits[s], c) for l, s, c in item.annotations],
                )
                try:
                    if item.blob is not None:  # written by _write_files; its size read from the member's header
                        store.blobs.record_file(item.blob)
                        row.blob = item.blob
                        with zf.open(item.member or "") as f:  # its header: the first chunks, read on if need be
                            chunks = iter(lambda: f.read(1 << 16), b"")
                            size = blob_size(chunks, item.blob.size, item.extension)
                        row.width, row.height = size or (None, None)
                    elif item.member is not None:  # a small member: inline, read now
                        row.data = zf.read(item.member)
                        row.width, row.height = image_size(row.data, item.extension) or (None, None)
                except zipfile.BadZipFile as exc:
                    raise _bad(f"{item.member}: {exc}") from None
                counts.annotations += len(row.annotations)
                yield row

        try:
            counts.items = store.add_items(version_id, rows())
        except InvalidInput as exc:
            raise _bad(str(exc)) from None
    return counts
