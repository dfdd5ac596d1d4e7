"""SPACY_NER: named-entity datasets as one JSON array per split.

From ``spec/export-datasets.txt`` (export_format: SPACY_NER):

    .
    +-- train.json
    +-- valid.json
    +-- test.json
    +-- config.json

    config.json: {"splits": ["train", "valid", "test"],
                  "colors": {"label_name": "#82ebfd", "label_name2": "#e95211"}}

    split_name.json:
    [
        {
            "id": "the_dataset_item_id",
            "name": "the_original_filename",
            "text": "The textual content of the file that has been annotated.",
            "annotations": [{"start": 4, "end": 11, "label": "label_name"}, ...]
        },
        ...
    ]

Choices where the spec is silent:

* **Offsets** are character offsets (Python ``str`` indices, code points),
  end exclusive, so ``text[start:end]`` is the entity after JSON decoding,
  emoji and accents included (seeme-api.md §8). Stored spans (``{"start":
  S, "end": E}`` or ``"S E"``) are checked against the text by
  :func:`~formats.coordinates.parse_span`; a bad one is an ``InvalidInput``
  naming the item. Annotations are sorted by (start, end, label export
  position); overlapping spans are kept as stored.
* **JSON**: compact, UTF-8 without ``\\u`` escapes for non-ASCII, keys in the
  spec's order; streamed into a spool per split (made up front, framed by
  the spool: ``[``, objects separated by ``,``, ``]``). A split without
  items is ``[]``. ``name`` is the item's name, or its id when unnamed.
* **File names**: ``<safe split name>.json``, unique (a collision gets
  ``~<split_id>``). config.json ``splits`` lists the file names without
  ``.json``, in split order, so ``<entry>.json`` always opens the file; they
  equal the split names unless a name had to be made path-safe or unique.
* **Items in no split** are not dropped: they go to ``unassigned.json``
  (``unassigned~nosplit.json`` if a split already took the name), listed
  last in ``splits``, only when there are such items.
* **An item in two splits** is in both files, each time with that split's
  annotations.
* **colors**: ``{label name: "#rrggbb"}`` in label order; labels sharing a
  name share the key, the first one's colour is kept.

Reading (:meth:`SpacyNerFormat.read`): ``config.json`` (:class:`NerConfig`)
lists the split files; each is streamed a document (:class:`NerDoc`) at a
time. A document is one item, keyed by its ``id``: found again in another
split it must have the same text, and becomes a member of that split too.
Its spans annotate it in that split. A last entry ``unassigned...`` holds
items in no split (they keep no annotations: annotations belong to a split).
"""

from __future__ import annotations

from typing import ClassVar

import msgspec

from engine.errors import InvalidInput
from engine.model import ContentType, Dataset, DatasetSplit
from formats.base import Entry, ExportContext, ExportItem, Spool
from formats.coordinates import parse_span
from formats.paths import UniquePaths, safe_component, split_ext
from formats.reading import ArchiveReader, ImportTarget, PlanSink, refused

__all__ = ["NerConfig", "NerDoc", "NerEntity", "SpacyNerFormat"]

_UNASSIGNED = "unassigned"


class NerEntity(msgspec.Struct):
    """One span of a document: character offsets, ``end`` exclusive, and the label's name."""

    start: int
    end: int
    label: str


class NerDoc(msgspec.Struct, kw_only=True):
    """One element of ``<split>.json``, keys in the spec's order (``name`` may be missing on input)."""

    id: str
    name: str | None = None
    text: str
    annotations: list[NerEntity] = []


class NerConfig(msgspec.Struct):
    """``config.json``: the split files (without ``.json``) in order, and each label's colour."""

    splits: list[str]
    colors: dict[str, str] = {}


class _SplitFile:
    __slots__ = ("path", "spool")

    def __init__(self, path: str, spool: Spool) -> None:
        self.path = path
        self.spool = spool


class SpacyNerFormat:
    """``<split>.json`` arrays + ``config.json``; see the module docstring."""

    name: ClassVar[str] = "spacy-ner"
    content_types: ClassVar[frozenset[str]] = frozenset({ContentType.NER.value})

    @classmethod
    def needs_content(cls, dataset: Dataset) -> bool:
        return False  # the text to annotate is item.text

    def __init__(self, ctx: ExportContext) -> None:
        self._ctx = ctx
        self._paths = UniquePaths(ctx.names)
        self._config_path = self._paths.unique("config.json", "config")
        self._files: dict[str | None, _SplitFile] = {}
        for split in ctx.splits:
            self._split_file(split)
        # Claimed now, after the real splits, so a split named "unassigned" wins.
        self._unassigned = _SplitFile(self._paths.unique(_UNASSIGNED + ".json", "nosplit"), self._array())
        self._rank = {label.id: i for i, label in enumerate(ctx.labels)}
        self._encode = msgspec.json.Encoder().encode

    def _split_file(self, split: DatasetSplit) -> _SplitFile:
        entry = self._files.get(split.id)
        if entry is None:
            path = self._paths.unique(
                safe_component(safe_component(split.name) + ".json"), split.id or "split"
            )
            entry = self._files[split.id] = _SplitFile(path, self._array())
        return entry

    def _array(self) -> Spool:
        """A spool framed as a JSON array: ``[``, documents joined by ``,``, ``]``."""
        return self._ctx.spool(head=b"[", separator=b",", tail=b"]")

    def entries(self, item: ExportItem) -> list[Entry]:
        if item.split is None:
            target = self._unassigned
        else:
            target = self._files.get(item.split.id) or self._split_file(item.split)
        doc = NerDoc(id=item.id, name=item.name or item.id, text=item.text, annotations=self._entities(item))
        target.spool.write(self._encode(doc))
        return []

    def _entities(self, item: ExportItem) -> list[NerEntity]:
        if not item.annotations:
            return []
        rank = self._rank
        keyed = []
        for annotation in item.annotations:
            label = annotation.label
            try:
                span = parse_span(annotation.coordinates, item.text)
            except InvalidInput as exc:
                raise InvalidInput(f"item {item.id!r}: {exc}") from None
            keyed.append((span.start, span.end, rank.get(label.id, len(rank)), label.name))
        keyed.sort()
        return [NerEntity(start, end, name) for start, end, _, name in keyed]

    def finish(self) -> list[Entry]:
        files = [*self._files.values(), self._unassigned]
        out = [Entry(file.path, file.spool.close()) for file in files]  # closes every spool
        if not self._unassigned.spool.records:  # no item in no split: no unassigned.json
            files.pop()
            out.pop()
        colors: dict[str, str] = {}
        for label in self._ctx.labels:
            colors.setdefault(label.name, label.color)
        splits = [split_ext(file.path)[0] for file in files]
        out.append(Entry(self._config_path, self._encode(NerConfig(splits, colors))))
        return out

    @classmethod
    def read(cls, archive: ArchiveReader, plan: PlanSink, target: ImportTarget) -> None:
        """Plan a SPACY_NER archive's documents, one at a time (see "Reading" above)."""
        if not archive.has("config.json"):
            raise refused("a SPACY_NER archive has a config.json listing its splits")
        config = archive.read_json("config.json", NerConfig)
        text_limit = archive.text_limit
        for label, color in config.colors.items():
            plan.add_label(label, color)
        for split_file in config.splits:
            name = split_file + ".json"
            if not archive.has(name):
                raise refused(f"config.json lists the split {split_file!r} but {name} is not in the archive")
            unassigned = split_file.startswith(_UNASSIGNED) and split_file == config.splits[-1]
            split = None if unassigned else split_file
            if split is not None:
                plan.add_split(split)
            for doc in archive.json_array(name, NerDoc):  # a document at a time, never the whole file
                if len(doc.text) > text_limit:
                    raise refused(
                        f"{name}: item {doc.id} has a text of {len(doc.text)} characters;"
                        f" at most {text_limit} are accepted (DSEXPORT_IMPORT_MAX_TEXT)"
                    )
                item = plan.find(doc.id)
                if item is None:
                    item = plan.add_item(doc.name or None, "", text=doc.text, key=doc.id)
                elif plan.text_of(item) != doc.text:
                    raise refused(f"{name}: item {doc.id} has a different text than in an earlier split")
                if split is None:
                    continue
                plan.add_membership(item, split)
                for span in doc.annotations:
                    plan.add_label(span.label)
                    plan.annotate(item, span.label, split, f"{span.start} {span.end}")
