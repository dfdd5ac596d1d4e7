"""Import an exported ZIP back into a version: ``POST .../upload[/{format}]`` and ``dsexport import``.

All or nothing, in three steps:

1. **Check the archive** (:func:`check_archive`) before reading any entry:
   a readable ZIP; no absolute paths, ``..``, backslashes, drive letters, NUL
   or control characters; no symlinks, no duplicate names; at most
   :data:`MAX_ENTRIES` entries; no entry whose compression ratio passes
   :data:`MAX_RATIO`; and :mod:`engine.server.archive_guard`'s checks: local
   headers that match the central directory, entries that neither overlap
   nor come out of order, stored or deflate only, nothing encrypted, and an
   uncompressed total within the archive's size times :data:`MAX_RATIO`
   and the operator's ``DSEXPORT_IMPORT_MAX_BYTES`` (zip bombs). Declared
   sizes bound every later read (``zipfile`` stops at them and checks each
   CRC), and every member is read through the guard, so a corrupt or short
   entry is an error naming it.
2. **Read the layout** of the format into a plan (labels, splits, items with
   their annotations and the member holding their content), holding no
   store lock. The plan is spooled to a temporary file
   (``engine.server.import_plan``) and entries are read in bounded memory
   within operator-set limits (``engine.server.import_reads``: a text at
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

Choices where the export loses information: FOLDERS and CSV cannot tell an
item in two splits from two items, so they import as two; a FOLDERS file
repeated under several label folders of one split with the same bytes (a
multi-label copy) imports as one item with those labels. An item exported
under its id (unnamed) comes back named by that id, so a second export
writes the same paths. SPACY_NER and YOLO keep one item per id/image and its
split memberships.
"""

from __future__ import annotations

import csv
import io
import stat
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import anyio.to_thread
import msgspec
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.routing import Route

from engine.errors import InvalidInput
from engine.model import ContentType
from engine.server.archive_guard import (
    MAX_RATIO,
    check_inflation,
    check_layout,
    open_archive,
    refused,
)
from engine.server.auth import check_version, service
from engine.server.bodies import JSON
from engine.server.import_plan import Plan
from engine.server.import_reads import (
    check_entry_count,
    iter_json_array,
    max_text,
    open_text,
    read_json,
    read_text,
    text_lines,
)
from engine.server.import_upload import capped_form
from engine.store import INLINE_LIMIT, NewItem, Store
from formats import FORMATS, get_format, natural_format

__all__ = ["MAX_ENTRIES", "MAX_RATIO", "ImportCounts", "check_archive", "import_archive", "routes"]

MAX_ENTRIES = 5_000_000
_RATIO_FLOOR = 1 << 20  # small entries may compress well; the ratio applies above 1 MiB


class ImportCounts(msgspec.Struct):
    items: int = 0
    labels: int = 0
    splits: int = 0
    annotations: int = 0


def _bad(message: str) -> InvalidInput:
    if message.startswith("rejected archive: "):  # already refused by the archive guard
        return InvalidInput(message)
    return refused(message)


# -- step 1 -------------------------------------------------------------------


def check_archive(zf: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """The archive's file entries, or InvalidInput naming the first hostile one."""
    infos = zf.infolist()
    if len(infos) > MAX_ENTRIES:
        raise _bad(f"{len(infos)} entries; at most {MAX_ENTRIES} are accepted")
    check_layout(zf)
    seen, files = set(), []
    for info in infos:
        name = info.filename
        if "\\" in name or "\x00" in name or any(ord(c) < 32 for c in name):
            raise _bad(f"entry {name!r} has a backslash or control character in its path")
        if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
            raise _bad(f"entry {name!r} has an absolute path")
        if ".." in PurePosixPath(name).parts:
            raise _bad(f"entry {name!r} climbs out of the archive with '..'")
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise _bad(f"entry {name!r} is a symbolic link")
        if info.is_dir():
            continue
        if name.casefold() in seen:
            raise _bad(f"entry {name!r} appears twice")
        seen.add(name.casefold())
        if info.file_size > _RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise _bad(
                f"entry {name!r} expands {info.file_size / max(info.compress_size, 1):.0f}x "
                f"(more than {MAX_RATIO}x): a zip bomb?"
            )
        files.append(info)
    check_inflation(zf)
    return files


# -- step 2 -------------------------------------------------------------------


# Entries are read in bounded memory (engine.server.import_reads); the plan is spooled
# to disk (engine.server.import_plan), so neither grows with the archive.
_read_text = read_text
_read_json = read_json


def _split_stem(name: str) -> tuple[str, str]:
    stem, dot, ext = name.rpartition(".")
    return (stem, ext) if dot and stem else (name, "")


def _plan_folders(
    zf: zipfile.ZipFile,
    files: list[zipfile.ZipInfo],
    content_type: str,
    existing_labels: list[str],
    existing_splits: list[str],
    plan: Plan,
) -> Plan:
    text = content_type == ContentType.TEXT.value
    known_labels = {parts[1] for i in files if len(parts := PurePosixPath(i.filename).parts) == 3}
    known_labels |= set(existing_labels)
    for info in files:
        parts = PurePosixPath(info.filename).parts
        if len(parts) > 3:
            raise _bad(f"{info.filename}: FOLDERS archives are <split>/<label>/<file> at most")
        split = label = None
        if len(parts) == 3:
            split, label = parts[0], parts[1]
        elif len(parts) == 2:
            # <split>/<file> (unlabelled) or <label>/<file> (in no split): a label only if
            # the name is known as one (a label folder elsewhere, or a label of the version).
            if parts[0] in known_labels and parts[0] not in existing_splits:
                label = parts[0]
            else:
                split = parts[0]
        stem, ext = _split_stem(parts[-1])
        if text and ext.lower() != "txt":
            raise _bad(f"{info.filename}: a text dataset's FOLDERS archive holds .txt files only")
        if split is not None:
            plan.add_split(split)
        if label is not None:
            plan.labels.setdefault(label, "")
        # A multi-label copy: the same file name and bytes under another label folder of the split.
        key = f"{'' if split is None else '/' + split}\0{parts[-1]}\0{info.CRC}\0{info.file_size}"
        item = plan.find(key)
        if item is None:
            if text:
                item = plan.add_item(stem, "", text=_read_text(zf, info.filename), key=key)
            else:
                item = plan.add_item(stem, ext, member=info.filename, key=key)
            if split is not None:
                plan.add_membership(item, split)
        if label is not None:
            if split is None:
                raise _bad(f"{info.filename}: a labelled item outside any split cannot be annotated")
            plan.annotate(item, label, split)
    return plan


def _plan_yolo(zf: zipfile.ZipFile, files: list[zipfile.ZipInfo], plan: Plan) -> Plan:
    names = [i.filename for i in files if i.filename.endswith(".names") and "/" not in i.filename]
    if len(names) != 1:
        raise _bad(f"a YOLO archive has exactly one <version>.names file at its root; found {len(names)}")
    if any("/" in i.filename for i in files):
        nested = next(i.filename for i in files if "/" in i.filename)
        raise _bad(f"{nested}: a YOLO archive is flat")
    label_names = list(text_lines(zf, names[0]))
    colors: dict[str, str] = {}
    if "config.json" in zf.NameToInfo:
        colors = _read_json(zf, "config.json", dict[str, dict[str, str]]).get("colors", {})
    for label in label_names:
        plan.labels.setdefault(label, colors.get(label, ""))
    for info in files:  # images, in archive order; each one's boxes are in <stem>.txt
        image = info.filename
        if not image.endswith((".txt", ".names")) and image != "config.json":
            stem, ext = _split_stem(image)
            plan.add_item(stem, ext, member=image, key=image, stem=stem)
    for info in files:  # a .txt that is no image's box file lists a split's images
        listing = info.filename
        if not listing.endswith(".txt") or plan.has_stem(listing[: -len(".txt")]):
            continue
        split = listing[: -len(".txt")]
        plan.add_split(split)
        for line in text_lines(zf, listing):
            if not line:
                continue
            item = plan.find(line)
            if item is None:
                raise _bad(f"{listing} lists {line!r}, which is not an image in the archive")
            plan.add_membership(item, split)
    for item, stem, _ in plan.stems():
        boxes = stem + ".txt"
        if boxes not in zf.NameToInfo:
            continue
        splits = plan.splits_of(item)
        for n, line in enumerate(text_lines(zf, boxes), start=1):
            if not line.strip():
                continue
            fields = line.split()
            if len(fields) != 5 or not fields[0].isdigit() or int(fields[0]) >= len(label_names):
                raise _bad(f"{boxes} line {n}: expected 'label_index cx cy w h' with a label of {names[0]}")
            for split in splits:
                plan.annotate(item, label_names[int(fields[0])], split, " ".join(fields[1:]))
    return plan


class _CsvConfig(msgspec.Struct):
    filename: str
    multi_label: bool = False
    label_column: str = "labels"
    split_column: str = "split"
    label_separator: str = " "
    csv_separator: str = ","


_CSV_LIMIT_LOCK = threading.Lock()


def _allow_csv_fields_of(size: int) -> None:
    """Let the csv module read a field as long as the CSV entry itself (131,072 characters by default).

    A row we export ourselves may hold a longer cell. The limit is global to
    the process, so it is only ever raised, to the entry's size, which the
    archive check has already bounded.
    """
    with _CSV_LIMIT_LOCK:
        if csv.field_size_limit() < size:
            csv.field_size_limit(min(size, sys.maxsize))


def _check_csv_config(config: _CsvConfig) -> None:
    if len(config.csv_separator) != 1 or config.csv_separator in '"\r\n':
        raise _bad(
            f"config.json: csv_separator must be one character other than a quote or a line break, "
            f"got {config.csv_separator!r}"
        )
    if not config.label_separator:
        raise _bad("config.json: label_separator must not be empty; it splits a multi-label row's labels (e.g. \" \")")


def _plan_csv(zf: zipfile.ZipFile, files: list[zipfile.ZipInfo], plan: Plan) -> Plan:
    if "config.json" not in zf.NameToInfo:
        raise _bad("a CSV archive has a config.json naming its CSV file")
    config = _read_json(zf, "config.json", _CsvConfig)
    if config.filename not in zf.NameToInfo:
        raise _bad(f"config.json names {config.filename!r}, which is not in the archive")
    _check_csv_config(config)
    sep = config.csv_separator
    # A row's values become one item's text, so no field is longer than a text may be.
    text_limit = max_text()
    _allow_csv_fields_of(min(zf.getinfo(config.filename).file_size, text_limit))
    with open_text(zf, config.filename) as stream:  # a row at a time, never the whole file
        rows = csv.reader(stream, delimiter=sep)
        try:
            return _plan_csv_rows(config, rows, plan)
        except UnicodeDecodeError:
            raise _bad(f"{config.filename} is not UTF-8 text") from None
        except csv.Error as exc:
            why = f" (a text is at most {text_limit} bytes: DSEXPORT_IMPORT_MAX_TEXT)" if "limit" in str(exc) else ""
            raise _bad(f"{config.filename} line {rows.line_num}: {exc}{why}") from None


def _plan_csv_rows(config: _CsvConfig, rows: Iterator[list[str]], plan: Plan) -> Plan:
    sep = config.csv_separator
    header = next(rows, None)
    if header is None:
        raise _bad(f"{config.filename} is empty: it needs a header row")
    try:
        label_at, split_at = header.index(config.label_column), header.index(config.split_column)
    except ValueError:
        raise _bad(f"{config.filename} lacks the columns {config.label_column!r} and {config.split_column!r}") from None
    data_at = [n for n in range(len(header)) if n not in (label_at, split_at)]
    columns = [header[n] for n in data_at]
    plan.config = msgspec.json.encode({"column_names": sep.join(columns), "csv_separator": sep}).decode()
    for line, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise _bad(f"{config.filename} line {line}: {len(row)} fields, the header has {len(header)}")
        values = [row[n] for n in data_at]
        if any(sep in v or '"' in v or "\n" in v for v in values):
            out = io.StringIO()
            csv.writer(out, delimiter=sep, lineterminator="").writerow(values)
            text = out.getvalue()
        else:
            text = sep.join(values)
        split = row[split_at]
        item = plan.add_item(None, "", text=text)
        if split:
            plan.add_split(split)
            plan.add_membership(item, split)
        labels = row[label_at].split(config.label_separator) if config.multi_label else [row[label_at]]
        for label in filter(None, labels):
            if not split:
                raise _bad(f"{config.filename} line {line}: a labelled row needs a split")
            plan.labels.setdefault(label, "")
            plan.annotate(item, label, split)
    return plan


class _NerSpan(msgspec.Struct):
    start: int
    end: int
    label: str


class _NerDoc(msgspec.Struct):
    id: str
    text: str
    name: str | None = None
    annotations: list[_NerSpan] = msgspec.field(default_factory=list)


class _NerConfig(msgspec.Struct):
    splits: list[str]
    colors: dict[str, str] = msgspec.field(default_factory=dict)


def _plan_ner(zf: zipfile.ZipFile, files: list[zipfile.ZipInfo], plan: Plan) -> Plan:
    if "config.json" not in zf.NameToInfo:
        raise _bad("a SPACY_NER archive has a config.json listing its splits")
    config = _read_json(zf, "config.json", _NerConfig)
    text_limit = max_text()
    for label, color in config.colors.items():
        plan.labels.setdefault(label, color)
    for split_file in config.splits:
        name = split_file + ".json"
        if name not in zf.NameToInfo:
            raise _bad(f"config.json lists the split {split_file!r} but {name} is not in the archive")
        unassigned = split_file.startswith("unassigned") and split_file == config.splits[-1]
        split = None if unassigned else split_file
        if split is not None:
            plan.add_split(split)
        for doc in iter_json_array(zf, name, _NerDoc):  # a document at a time, never the whole file
            if len(doc.text) > text_limit:
                raise _bad(
                    f"{name}: item {doc.id} has a text of {len(doc.text)} characters;"
                    f" at most {text_limit} are accepted (DSEXPORT_IMPORT_MAX_TEXT)"
                )
            item = plan.find(doc.id)
            if item is None:
                item = plan.add_item(doc.name or None, "", text=doc.text, key=doc.id)
            elif plan.text_of(item) != doc.text:
                raise _bad(f"{name}: item {doc.id} has a different text than in an earlier split")
            if split is None:
                continue
            plan.add_membership(item, split)
            for span in doc.annotations:
                plan.labels.setdefault(span.label, "")
                plan.annotate(item, span.label, split, f"{span.start} {span.end}")
    return plan


# -- step 3 -------------------------------------------------------------------


def import_archive(store: Store, version_id: str, archive: str | Path | object, fmt: str) -> ImportCounts:
    """Import ``archive`` (a path or a seekable binary file) into the version, all or nothing.

    The archive is checked and read into a spooled plan first, with no store
    lock held (reads of the store go on meanwhile, and so do other writes);
    then one write transaction adds the plan's labels, splits and items.
    """
    format_name = get_format(fmt).name
    _, content_type = store._version_row(version_id)
    if content_type not in FORMATS[format_name].content_types:
        raise InvalidInput(
            f"a {format_name} archive cannot be imported into a {content_type!r} version; "
            f"its format is {natural_format(content_type)}"
        )
    check_entry_count(archive)  # type: ignore[arg-type]
    zf = open_archive(archive)  # type: ignore[arg-type]
    with zf, Plan() as plan:
        files = check_archive(zf)
        try:
            if format_name == "folders":
                _plan_folders(
                    zf,
                    files,
                    content_type,
                    [label.name for label in store.labels(version_id)],
                    [split.name for split in store.splits(version_id)],
                    plan,
                )
            elif format_name == "yolo":
                _plan_yolo(zf, files, plan)
            elif format_name == "csv":
                _plan_csv(zf, files, plan)
            else:
                _plan_ner(zf, files, plan)
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
    with store._tx():
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
                if item.blob is not None:  # written by _write_files
                    store.blobs.record_file(item.blob)
                    row.blob = item.blob
                elif item.member is not None:  # a small member: inline, read now
                    try:
                        row.data = zf.read(item.member)
                    except zipfile.BadZipFile as exc:
                        raise _bad(f"{item.member}: {exc}") from None
                counts.annotations += len(row.annotations)
                yield row

        try:
            counts.items = store.add_items(version_id, rows())
        except InvalidInput as exc:
            raise _bad(str(exc)) from None
    return counts


# -- HTTP ---------------------------------------------------------------------


async def upload(request: Request) -> JSON:
    """Multipart field ``file``, at most ``DSEXPORT_IMPORT_MAX_UPLOAD`` bytes (413 past it).

    The form parser spools the file to disk past 1 MiB; the import runs in a
    worker thread holding no lock while it plans, and the store's write lock
    for its one transaction. Cancelled (the client went away) while the body
    is read: nothing was written. Once the worker thread runs, it finishes on
    its own: the import commits or rolls back whole, and the spooled upload
    is deleted when the form closes.
    """
    _, dataset_id, version_id = await check_version(request)
    svc = service(request)
    async with capped_form(request) as form:
        upload_file = form.get("file")
        if not isinstance(upload_file, UploadFile):
            raise InvalidInput("upload the archive in the multipart field 'file'")
        fmt = request.path_params.get("format") or request.query_params.get("format")

        def run():
            if fmt is None:
                content_type = svc.store.get_dataset(dataset_id).content_type
                chosen = natural_format(content_type)
            else:
                chosen = fmt
            import_archive(svc.store, version_id, upload_file.file, chosen)
            return svc.store.get_version(dataset_id, version_id)

        version = await anyio.to_thread.run_sync(run)
    return JSON(version)


V = "/datasets/{d}/versions/{v}"
routes = [
    Route(V + "/upload", upload, methods=["POST"]),
    Route(V + "/upload/{format}", upload, methods=["POST"]),
]
