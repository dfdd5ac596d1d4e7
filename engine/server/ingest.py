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
   their annotations and the member holding their content). A layout that
   does not fit (no ``.names`` in a YOLO archive, a CSV archive without its
   config, a text file that is not UTF-8, nesting deeper than the format
   has, a format that cannot hold the version's content type) is an
   ``InvalidInput`` naming the entry: HTTP 400, CLI exit 2.
3. **Ingest** in one store transaction: labels and splits are matched by
   name (missing ones created), items added with their content and
   annotations. Any failure rolls the transaction back, so the version is
   exactly as it was. (Blob files of 64 KiB and more are written before the
   commit; they are content-addressed, so one left by a failed import is
   unreferenced and harmless.)

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

from engine.blobs import INLINE_LIMIT
from engine.errors import InvalidInput
from engine.model import ContentType
from engine.server.archive_guard import MAX_RATIO, check_inflation, check_layout, open_archive, refused
from engine.server.auth import check_version, service
from engine.server.bodies import JSON
from engine.store import NewItem, Store
from formats import FORMATS, get_format, natural_format

__all__ = ["MAX_ENTRIES", "MAX_RATIO", "ImportCounts", "check_archive", "import_archive", "routes"]

MAX_ENTRIES = 5_000_000
_RATIO_FLOOR = 1 << 20  # small entries may compress well; the ratio applies above 1 MiB


class ImportCounts(msgspec.Struct):
    items: int = 0
    labels: int = 0
    splits: int = 0
    annotations: int = 0


class _Item(msgspec.Struct):
    name: str | None
    extension: str
    text: str = ""
    member: str | None = None
    splits: list[str] = msgspec.field(default_factory=list)
    #: (label name, split name, coordinates)
    annotations: list[tuple[str, str, str]] = msgspec.field(default_factory=list)


class _Plan(msgspec.Struct):
    labels: dict[str, str] = msgspec.field(default_factory=dict)  # name -> colour ("" = palette)
    splits: list[str] = msgspec.field(default_factory=list)
    items: list[_Item] = msgspec.field(default_factory=list)
    config: str | None = None  # a tabular version's new config


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


def _read_text(zf: zipfile.ZipFile, name: str) -> str:
    try:
        return zf.read(name).decode("utf-8")
    except UnicodeDecodeError:
        raise _bad(f"{name} is not UTF-8 text") from None


def _read_json(zf: zipfile.ZipFile, name: str, kind: type):
    try:
        return msgspec.json.decode(zf.read(name), type=kind)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise _bad(f"{name} is not valid: {exc}") from None


def _split_stem(name: str) -> tuple[str, str]:
    stem, dot, ext = name.rpartition(".")
    return (stem, ext) if dot and stem else (name, "")


def _plan_folders(
    zf: zipfile.ZipFile,
    files: list[zipfile.ZipInfo],
    content_type: str,
    existing_labels: list[str],
    existing_splits: list[str],
) -> _Plan:
    text = content_type == ContentType.TEXT.value
    plan = _Plan()
    paths = [PurePosixPath(i.filename).parts for i in files]
    known_labels = {p[1] for p in paths if len(p) == 3} | set(existing_labels)
    seen: dict[tuple[str | None, str, int, int], _Item] = {}
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
        if split is not None and split not in plan.splits:
            plan.splits.append(split)
        if label is not None:
            plan.labels.setdefault(label, "")
        key = (split, parts[-1], info.CRC, info.file_size)
        item = seen.get(key)
        if item is None:
            item = _Item(name=stem, extension="" if text else ext)
            if text:
                item.text = _read_text(zf, info.filename)
            else:
                item.member = info.filename
            item.splits = [split] if split is not None else []
            seen[key] = item
            plan.items.append(item)
        if label is not None:
            if split is None:
                raise _bad(f"{info.filename}: a labelled item outside any split cannot be annotated")
            item.annotations.append((label, split, ""))
    return plan


def _plan_yolo(zf: zipfile.ZipFile, files: list[zipfile.ZipInfo]) -> _Plan:
    names = [i.filename for i in files if i.filename.endswith(".names") and "/" not in i.filename]
    if len(names) != 1:
        raise _bad(f"a YOLO archive has exactly one <version>.names file at its root; found {len(names)}")
    if any("/" in i.filename for i in files):
        nested = next(i.filename for i in files if "/" in i.filename)
        raise _bad(f"{nested}: a YOLO archive is flat")
    plan = _Plan()
    label_names = [line for line in _read_text(zf, names[0]).splitlines()]
    colors: dict[str, str] = {}
    if "config.json" in zf.NameToInfo:
        colors = _read_json(zf, "config.json", dict[str, dict[str, str]]).get("colors", {})
    for label in label_names:
        plan.labels.setdefault(label, colors.get(label, ""))
    all_names = {i.filename for i in files}
    images = [
        i.filename for i in files
        if not i.filename.endswith((".txt", ".names")) and i.filename != "config.json"
    ]
    box_files = {}
    for image in images:
        stem, _ = _split_stem(image)
        box_files[image] = stem + ".txt"
    box_set = set(box_files.values())
    lists = [i.filename for i in files if i.filename.endswith(".txt") and i.filename not in box_set]
    by_image: dict[str, _Item] = {}
    for image in images:
        stem, ext = _split_stem(image)
        by_image[image] = _Item(name=stem, extension=ext, member=image)
        plan.items.append(by_image[image])
    for listing in lists:
        split = listing[: -len(".txt")]
        plan.splits.append(split)
        for line in _read_text(zf, listing).splitlines():
            if not line:
                continue
            item = by_image.get(line)
            if item is None:
                raise _bad(f"{listing} lists {line!r}, which is not an image in the archive")
            item.splits.append(split)
    for image, item in by_image.items():
        boxes = box_files[image]
        if boxes not in all_names:
            continue
        for n, line in enumerate(_read_text(zf, boxes).splitlines(), start=1):
            if not line.strip():
                continue
            fields = line.split()
            if len(fields) != 5 or not fields[0].isdigit() or int(fields[0]) >= len(label_names):
                raise _bad(f"{boxes} line {n}: expected 'label_index cx cy w h' with a label of {names[0]}")
            for split in item.splits:
                item.annotations.append((label_names[int(fields[0])], split, " ".join(fields[1:])))
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


def _plan_csv(zf: zipfile.ZipFile, files: list[zipfile.ZipInfo]) -> _Plan:
    if "config.json" not in zf.NameToInfo:
        raise _bad("a CSV archive has a config.json naming its CSV file")
    config = _read_json(zf, "config.json", _CsvConfig)
    if config.filename not in zf.NameToInfo:
        raise _bad(f"config.json names {config.filename!r}, which is not in the archive")
    _check_csv_config(config)
    sep = config.csv_separator
    _allow_csv_fields_of(zf.getinfo(config.filename).file_size)
    rows = csv.reader(io.StringIO(_read_text(zf, config.filename), newline=""), delimiter=sep)
    header = next(rows, None)
    if header is None:
        raise _bad(f"{config.filename} is empty: it needs a header row")
    try:
        label_at, split_at = header.index(config.label_column), header.index(config.split_column)
    except ValueError:
        raise _bad(f"{config.filename} lacks the columns {config.label_column!r} and {config.split_column!r}") from None
    data_at = [n for n in range(len(header)) if n not in (label_at, split_at)]
    columns = [header[n] for n in data_at]
    plan = _Plan(config=msgspec.json.encode({"column_names": sep.join(columns), "csv_separator": sep}).decode())
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
        item = _Item(name=None, extension="", text=text, splits=[split] if split else [])
        if split and split not in plan.splits:
            plan.splits.append(split)
        labels = row[label_at].split(config.label_separator) if config.multi_label else [row[label_at]]
        for label in filter(None, labels):
            if not split:
                raise _bad(f"{config.filename} line {line}: a labelled row needs a split")
            plan.labels.setdefault(label, "")
            item.annotations.append((label, split, ""))
        plan.items.append(item)
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


def _plan_ner(zf: zipfile.ZipFile, files: list[zipfile.ZipInfo]) -> _Plan:
    if "config.json" not in zf.NameToInfo:
        raise _bad("a SPACY_NER archive has a config.json listing its splits")
    config = _read_json(zf, "config.json", _NerConfig)
    plan = _Plan()
    for label, color in config.colors.items():
        plan.labels.setdefault(label, color)
    by_id: dict[str, _Item] = {}
    for split_file in config.splits:
        name = split_file + ".json"
        if name not in zf.NameToInfo:
            raise _bad(f"config.json lists the split {split_file!r} but {name} is not in the archive")
        unassigned = split_file.startswith("unassigned") and split_file == config.splits[-1]
        split = None if unassigned else split_file
        if split is not None:
            plan.splits.append(split)
        for doc in _read_json(zf, name, list[_NerDoc]):
            item = by_id.get(doc.id)
            if item is None:
                item = by_id[doc.id] = _Item(name=doc.name or None, extension="", text=doc.text)
                plan.items.append(item)
            elif item.text != doc.text:
                raise _bad(f"{name}: item {doc.id} has a different text than in an earlier split")
            if split is None:
                continue
            item.splits.append(split)
            for span in doc.annotations:
                plan.labels.setdefault(span.label, "")
                item.annotations.append((span.label, split, f"{span.start} {span.end}"))
    return plan


# -- step 3 -------------------------------------------------------------------


def import_archive(store: Store, version_id: str, archive: str | Path | object, fmt: str) -> ImportCounts:
    """Import ``archive`` (a path or a seekable binary file) into the version, all or nothing."""
    format_name = get_format(fmt).name
    _, content_type = store._version_row(version_id)
    if content_type not in FORMATS[format_name].content_types:
        raise InvalidInput(
            f"a {format_name} archive cannot be imported into a {content_type!r} version; "
            f"its format is {natural_format(content_type)}"
        )
    zf = open_archive(archive)  # type: ignore[arg-type]
    with zf:
        files = check_archive(zf)
        try:
            if format_name == "folders":
                plan = _plan_folders(
                    zf,
                    files,
                    content_type,
                    [label.name for label in store.labels(version_id)],
                    [split.name for split in store.splits(version_id)],
                )
            elif format_name == "yolo":
                plan = _plan_yolo(zf, files)
            elif format_name == "csv":
                plan = _plan_csv(zf, files)
            else:
                plan = _plan_ner(zf, files)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
            raise _bad(f"an entry cannot be read ({exc})") from None
        return _ingest(store, version_id, zf, plan)


def _ingest(store: Store, version_id: str, zf: zipfile.ZipFile, plan: _Plan) -> ImportCounts:
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
            for item in plan.items:
                row = NewItem(
                    name=item.name,
                    extension=item.extension,
                    text=item.text,
                    split_ids=[splits[s] for s in item.splits],
                    annotations=[(labels[l], splits[s], c) for l, s, c in item.annotations],
                )
                if item.member is not None:
                    info = zf.getinfo(item.member)
                    try:
                        if info.file_size >= INLINE_LIMIT:
                            with zf.open(info) as f:
                                row.blob = store.put_blob_stream(iter(lambda: f.read(1 << 20), b""))
                        else:
                            row.data = zf.read(info)
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
    """Multipart field ``file``; the form parser spools it to disk past 1 MiB."""
    _, dataset_id, version_id = await check_version(request)
    svc = service(request)
    async with request.form(max_files=1, max_fields=10) as form:
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

        version = await anyio.to_thread.run_sync(lambda: svc.call(run))
    return JSON(version)


V = "/datasets/{d}/versions/{v}"
routes = [
    Route(V + "/upload", upload, methods=["POST"]),
    Route(V + "/upload/{format}", upload, methods=["POST"]),
]
