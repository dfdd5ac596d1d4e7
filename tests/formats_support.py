"""Test helpers for the format modules: in-memory spools and a renderer.

``render`` plays the engine's part: it builds the format, feeds it the items,
and turns every Entry into bytes, failing on a duplicate (case-insensitive)
path as a ZIP extraction on Windows or macOS would.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator

import msgspec

from engine.model import Dataset, DatasetSplit, DatasetVersion, Label
from formats.base import Blob, Entry, ExportAnnotation, ExportContext, ExportItem, Format
from formats.paths import InMemoryClaims

__all__ = [
    "MemoryBlob",
    "MemorySpool",
    "SpoolFactory",
    "ann",
    "item",
    "label",
    "make_ctx",
    "materialise",
    "render",
    "render_entries",
    "split",
]


class MemoryBlob:
    """A Blob over bytes, served in small chunks so joins are exercised."""

    def __init__(self, data: bytes, chunk: int = 7) -> None:
        self._data = bytes(data)
        self._chunk = chunk
        self.size = len(self._data)
        self.crc32: int | None = zlib.crc32(self._data)

    def chunks(self) -> Iterator[bytes]:
        for start in range(0, len(self._data), self._chunk):
            yield self._data[start : start + self._chunk]


class MemorySpool:
    """A Spool backed by a bytearray; writing after close is an error."""

    def __init__(self, head: bytes = b"", separator: bytes = b"", tail: bytes = b"") -> None:
        self._buffer = bytearray(head)
        self._separator = separator
        self._tail = tail
        self.records = 0
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "write after close"
        assert isinstance(data, bytes | bytearray), type(data)
        if self.records:
            self._buffer += self._separator
        self._buffer += data
        self.records += 1

    def close(self) -> MemoryBlob:
        assert not self.closed, "closed twice"
        self.closed = True
        return MemoryBlob(bytes(self._buffer + self._tail))


class SpoolFactory:
    """``ctx.spool``: makes MemorySpools and remembers them for checks."""

    def __init__(self) -> None:
        self.spools: list[MemorySpool] = []

    def __call__(self, *, head: bytes = b"", separator: bytes = b"", tail: bytes = b"") -> MemorySpool:
        spool = MemorySpool(head, separator, tail)
        self.spools.append(spool)
        return spool


def label(name: str, id: str | None = None, color: str = "#123456", index: int = 0) -> Label:
    return Label(id=id or f"L-{name}", name=name, color=color, index=index)


def split(name: str, id: str | None = None) -> DatasetSplit:
    return DatasetSplit(id=id or f"S-{name}", name=name)


def ann(lbl: Label, coordinates: str = "") -> ExportAnnotation:
    return ExportAnnotation(label=lbl, coordinates=coordinates)


def item(
    id: str,
    name: str = "",
    extension: str = "",
    *,
    text: str = "",
    split: DatasetSplit | None = None,
    annotations: Iterable[ExportAnnotation] = (),
    content: bytes | Blob | None = None,
    width: int | None = None,
    height: int | None = None,
) -> ExportItem:
    return ExportItem(
        id=id,
        name=name,
        extension=extension,
        text=text,
        split=split,
        annotations=list(annotations),
        content=content,
        width=width,
        height=height,
    )


def make_ctx(
    *,
    content_type: str = "images",
    labels: Iterable[Label] = (),
    splits: Iterable[DatasetSplit] = (),
    version_id: str = "v1",
    config: str = "",
    multi_label: bool = False,
) -> ExportContext:
    labels = list(labels)
    splits = list(splits)
    dataset = Dataset(id="d1", name="ds", content_type=content_type, multi_label=multi_label)
    version = DatasetVersion(id=version_id, dataset_id="d1", labels=labels, splits=splits, config=config)
    return ExportContext(
        dataset=dataset,
        version=version,
        labels=labels,
        splits=splits,
        names=InMemoryClaims(),
        spool=SpoolFactory(),
    )


def materialise(data: object) -> bytes:
    if isinstance(data, bytes):
        return data
    assert isinstance(data, Blob), f"entry data is neither bytes nor Blob: {type(data)}"
    body = b"".join(data.chunks())
    assert len(body) == data.size
    if data.crc32 is not None:
        assert zlib.crc32(body) == data.crc32
    assert b"".join(data.chunks()) == body, "a Blob must be re-readable"
    return body


def render_entries(format_cls: type[Format], ctx: ExportContext, items: Iterable[ExportItem]) -> list[Entry]:
    """Every Entry in the order the format produced them, checked for type."""
    fmt = format_cls(ctx)
    items = list(items)
    out: list[Entry] = []
    for it in items:
        produced = fmt.entries(it)
        assert isinstance(produced, list)
        out.extend(produced)
    finished = fmt.finish()
    assert isinstance(finished, list)
    out.extend(finished)
    spools = getattr(ctx.spool, "spools", [])
    assert all(s.closed for s in spools), "every spool must be closed by finish()"
    for entry in out:
        assert isinstance(entry, Entry), entry
        assert isinstance(entry.path, str), entry
    if hasattr(format_cls, "entries_many"):  # the batch path gives the same entries
        assert _rendered_in_batches(format_cls, ctx, items) == [tuple(entry) for entry in out]
    return out


def _rendered_in_batches(format_cls: type[Format], ctx: ExportContext, items: list[ExportItem]) -> list[tuple]:
    """The entries of ``items`` by ``entries_many`` in batches of 2, on fresh name claims."""
    fmt = format_cls(msgspec.structs.replace(ctx, names=InMemoryClaims()))  # type: ignore[attr-defined]
    runs = [fmt.entries_many(items[start : start + 2]) for start in range(0, len(items), 2)]
    return [tuple(entry) for run in [*runs, fmt.finish()] for entry in run]


def render(format_cls: type[Format], ctx: ExportContext, items: Iterable[ExportItem]) -> dict[str, bytes]:
    """The archive as ``{path: bytes}``; no path may repeat, even in case."""
    files: dict[str, bytes] = {}
    folded: dict[str, str] = {}
    for entry in render_entries(format_cls, ctx, items):
        key = entry.path.casefold()
        assert key not in folded, f"duplicate path {entry.path!r} (vs {folded.get(key)!r})"
        folded[key] = entry.path
        files[entry.path] = materialise(entry.data)
    # A file may not sit where another entry needs a folder (a/b and a/b/c).
    for path in folded:
        parts = path.split("/")
        for depth in range(1, len(parts)):
            assert "/".join(parts[:depth]) not in folded, f"{path!r} is below a file"
    return files
