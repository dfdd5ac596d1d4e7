"""CSV: tabular datasets as one CSV file plus a config.json describing it.

From ``spec/export-datasets.txt`` (export_format: CSV):

    Tabular datasets are exported in a .zip file that contains a
    dataset_version_id.csv file accompanied by a config.json, which provides
    more details on how the data should be interpreted.

    .
    +-- dataset_version_id.csv
    +-- config.json

    {
        "multi_label": false,
        "label_column": "labels",
        "split_column": "split",
        "label_separator": " ",
        "filename": "dataset_version_id.csv",
        "csv_separator": ","
    }

Choices where the spec is silent:

* **Columns** come from ``version.config``, the SDK's JSON string
  ``{"column_names": "a,b,c", "csv_separator": ","}`` where ``column_names``
  is one string joined with the separator (a JSON list is accepted too). A
  missing or empty config, or no ``column_names``, means one column
  ``text`` and separator ``,``. A config that is not a JSON object, or a
  separator that is not one character, is an ``InvalidInput``.
* **Rows**: the SDK stores a row as the values joined with the separator and
  no quoting. A text without ``"`` is split on the separator, as the SDK's
  own reader does. A text with ``"`` that parses as one strict CSV record
  (stdlib ``csv``, that delimiter) has its quotes honoured (``a,"b,c"`` is
  two fields); otherwise it is split plainly. The column names are parsed
  the same way. With a single column the whole text is the value, as is
  (separators and quotes included): there is nothing to split. A field count other than the column count is an
  ``InvalidInput`` naming the item and both counts.
* **Header**: the data columns, then the label and split columns, named
  ``labels`` and ``split``; if a data column already has that name, ``_`` is
  appended until it is free, and config.json names the column actually used.
* **Labels column**: the item's label names in label export order, each once,
  joined with ``" "`` (``label_separator``) when the dataset is multi-label;
  only the first of them when it is not. Empty when unlabelled. A label name
  containing a space cannot be told apart after splitting: the spec fixes
  the separator.
* **Split column**: the split's name; empty for items in no split. An item in
  two splits gives one row per split, each with that split's labels.
* **Writing**: stdlib ``csv.writer``, ``QUOTE_MINIMAL``, ``\\n`` line ends,
  UTF-8 without BOM, into a spool. The file is ``<version_id>.csv``
  (path-safe); ``filename`` in config.json is that name. config.json keys are
  in the spec's order, compact JSON.

Reading (:meth:`CsvFormat.read`): ``config.json`` (:class:`CsvConfig`)
names the CSV file, its separators and its label and split columns; the
other columns are the data columns, which become the version's
``column_names``. Each row is one item whose text is its data values
joined with the separator (quoted as a CSV record when a value holds the
separator, a quote or a line break; with one data column, the value as
is); its labels (split by
``label_separator`` when ``multi_label``) annotate it in its split. A
labelled row needs a split. The file is read a row at a time.
"""

from __future__ import annotations

import csv
import io
import sys
import threading
from collections.abc import Iterator
from typing import ClassVar

import msgspec

from engine.errors import InvalidInput
from engine.model import ContentType, Dataset
from formats.base import Entry, ExportContext, ExportItem, Spool
from formats.paths import UniquePaths, safe_component
from formats.reading import ArchiveReader, ImportTarget, PlanSink, refused

__all__ = ["CsvConfig", "CsvFormat"]


class CsvConfig(msgspec.Struct, kw_only=True):
    """``config.json``: how to read the CSV file, keys in the spec's order."""

    multi_label: bool = False
    label_column: str = "labels"
    split_column: str = "split"
    label_separator: str = " "
    filename: str
    csv_separator: str = ","

_DEFAULT_COLUMNS = ["text"]
_DEFAULT_SEPARATOR = ","


class _SpoolText:
    """The file object ``csv.writer`` writes str to, encoding into the spool."""

    __slots__ = ("write",)

    def __init__(self, spool: Spool) -> None:
        write = spool.write
        self.write = lambda text: write(text.encode("utf-8"))


def _fields(text: str, sep: str) -> list[str]:
    """One stored row -> its values (see "Rows" in the module docstring)."""
    if '"' in text:
        try:
            rows = list(csv.reader([text], delimiter=sep, strict=True))
        except csv.Error:
            rows = []
        if len(rows) == 1:
            return rows[0]
    return text.split(sep)


def _columns(config: str) -> tuple[list[str], str]:
    """Data column names and separator from ``version.config``."""
    if not config.strip():
        return list(_DEFAULT_COLUMNS), _DEFAULT_SEPARATOR
    try:
        parsed = msgspec.json.decode(config)
    except msgspec.DecodeError:
        raise InvalidInput(f"version config is not JSON: {config[:200]!r}") from None
    if not isinstance(parsed, dict):
        raise InvalidInput(f"version config must be a JSON object, got {config[:200]!r}")
    sep = parsed.get("csv_separator") or _DEFAULT_SEPARATOR
    if not isinstance(sep, str) or len(sep) != 1 or sep in '"\r\n':
        raise InvalidInput(
            f"csv_separator must be one character other than a quote or line break, got {sep!r}"
        )
    names = parsed.get("column_names")
    if isinstance(names, list) and names:
        return [str(n) for n in names], sep
    if isinstance(names, str) and names:
        return _fields(names, sep), sep
    return list(_DEFAULT_COLUMNS), sep


def _free(name: str, taken: list[str]) -> str:
    while name in taken:
        name += "_"
    return name


class CsvFormat:
    """``<version_id>.csv`` + ``config.json``; see the module docstring."""

    name: ClassVar[str] = "csv"
    content_types: ClassVar[frozenset[str]] = frozenset({ContentType.TABULAR.value})

    @classmethod
    def needs_content(cls, dataset: Dataset) -> bool:
        return False  # rows live in item.text

    def __init__(self, ctx: ExportContext) -> None:
        columns, self._sep = _columns(ctx.version.config)
        self._width = len(columns)
        self._multi = ctx.dataset.multi_label
        self._label_column = _free("labels", columns)
        self._split_column = _free("split", columns)
        self._rank = {label.id: i for i, label in enumerate(ctx.labels)}
        paths = UniquePaths(ctx.names)
        version = safe_component(ctx.version.id or "", fallback="dataset")
        self._csv_path = paths.unique(safe_component(version + ".csv"), "csv")
        self._config_path = paths.unique("config.json", "config")
        header = io.StringIO()
        self._dialect = {"delimiter": self._sep, "quoting": csv.QUOTE_MINIMAL, "lineterminator": "\n"}
        csv.writer(header, **self._dialect).writerow([*columns, self._label_column, self._split_column])
        # The header is the spool's head: each row is then one record of its own.
        self._spool = ctx.spool(head=header.getvalue().encode("utf-8"))
        self._writer = csv.writer(_SpoolText(self._spool), **self._dialect)

    def entries(self, item: ExportItem) -> list[Entry]:
        row = [item.text] if self._width == 1 else _fields(item.text, self._sep)
        if len(row) != self._width:
            raise InvalidInput(
                f"item {item.id!r}: its row has {len(row)} fields but the version has "
                f"{self._width} columns (separator {self._sep!r})"
            )
        row.append(self._labels(item))
        row.append("" if item.split is None else item.split.name)
        self._writer.writerow(row)
        return []

    def _labels(self, item: ExportItem) -> str:
        annotations = item.annotations
        if not annotations:
            return ""
        if len(annotations) == 1:
            return annotations[0].label.name
        rank = self._rank
        labels = {a.label.id: a.label for a in annotations}
        ordered = sorted(labels.values(), key=lambda lb: rank.get(lb.id, len(rank)))
        if not self._multi:
            return ordered[0].name
        return " ".join(label.name for label in ordered)

    def finish(self) -> list[Entry]:
        config = CsvConfig(
            multi_label=self._multi,
            label_column=self._label_column,
            split_column=self._split_column,
            label_separator=" ",
            filename=self._csv_path,
            csv_separator=self._sep,
        )
        return [
            Entry(self._csv_path, self._spool.close()),
            Entry(self._config_path, msgspec.json.encode(config)),
        ]

    @classmethod
    def read(cls, archive: ArchiveReader, plan: PlanSink, target: ImportTarget) -> None:
        """Plan a CSV archive's rows, a row at a time (see "Reading" above)."""
        if not archive.has("config.json"):
            raise refused("a CSV archive has a config.json naming its CSV file")
        config = archive.read_json("config.json", CsvConfig)
        if not archive.has(config.filename):
            raise refused(f"config.json names {config.filename!r}, which is not in the archive")
        _check_config(config)
        # A row's values become one item's text, so no field is longer than a text may be.
        text_limit = archive.text_limit
        _allow_fields_of(min(archive.size(config.filename), text_limit))
        with archive.open_text(config.filename) as stream:  # a row at a time, never the whole file
            rows = csv.reader(stream, delimiter=config.csv_separator)
            try:
                _read_rows(config, rows, plan)
            except UnicodeDecodeError:
                raise refused(f"{config.filename} is not UTF-8 text") from None
            except csv.Error as exc:
                why = f" (a text is at most {text_limit} bytes: DSEXPORT_IMPORT_MAX_TEXT)" if "limit" in str(exc) else ""
                raise refused(f"{config.filename} line {rows.line_num}: {exc}{why}") from None


_FIELD_LIMIT_LOCK = threading.Lock()


def _allow_fields_of(size: int) -> None:
    """Let the csv module read a field as long as the CSV entry itself (131,072 characters by default).

    A row we export ourselves may hold a longer cell. The limit is global to
    the process, so it is only ever raised, to the entry's size, which the
    archive check has already bounded.
    """
    with _FIELD_LIMIT_LOCK:
        if csv.field_size_limit() < size:
            csv.field_size_limit(min(size, sys.maxsize))


def _check_config(config: CsvConfig) -> None:
    if len(config.csv_separator) != 1 or config.csv_separator in '"\r\n':
        raise refused(
            f"config.json: csv_separator must be one character other than a quote or a line break, "
            f"got {config.csv_separator!r}"
        )
    if not config.label_separator:
        raise refused(
            "config.json: label_separator must not be empty; it splits a multi-label row's labels (e.g. \" \")"
        )


def _read_rows(config: CsvConfig, rows: Iterator[list[str]], plan: PlanSink) -> None:
    sep = config.csv_separator
    header = next(rows, None)
    if header is None:
        raise refused(f"{config.filename} is empty: it needs a header row")
    try:
        label_at, split_at = header.index(config.label_column), header.index(config.split_column)
    except ValueError:
        raise refused(
            f"{config.filename} lacks the columns {config.label_column!r} and {config.split_column!r}"
        ) from None
    data_at = [n for n in range(len(header)) if n not in (label_at, split_at)]
    columns = [header[n] for n in data_at]
    plan.set_config(msgspec.json.encode({"column_names": sep.join(columns), "csv_separator": sep}).decode())
    for line, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise refused(f"{config.filename} line {line}: {len(row)} fields, the header has {len(header)}")
        values = [row[n] for n in data_at]
        if len(values) == 1:  # one column: the text is the value as is, as it is written
            text = values[0]
        elif any(sep in v or '"' in v or "\n" in v for v in values):
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
                raise refused(f"{config.filename} line {line}: a labelled row needs a split")
            plan.add_label(label)
            plan.annotate(item, label, split)
