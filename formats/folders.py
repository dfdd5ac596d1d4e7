"""FOLDERS: image and text classification as one folder per split and label.

From ``spec/export-datasets.txt`` (export_format: FOLDERS):

    The .zip file contains a folder for every dataset split: "train",
    "valid", "test". Every dataset split folder contains a 'label-named'
    folder for every label: "cats", "dogs". Every label folder contains all
    the images of the dataset items for the given label in the given dataset
    split. Dataset items are named by the "name" and "extension" property of
    the dataset item. If the "name" property is empty, the "id" is used to
    name the file. Dataset items that have no label, will be added to the
    split folder to which they belong.

    .
    +-- train/
    |  +-- cats/
    |     +-- cat1.jpg
    |     +-- cat12.jpeg
    |  +-- dogs/
    |     +-- dog2.jpg
    |  +-- cat17.jpeg
    +-- valid/
    |  +-- cats/
    |     +-- cat4.jpg
    ...

For text classification the files are ``.txt`` files (``1.txt``, ...).

Choices where the spec is silent:

* **File name**: :func:`formats.paths.file_name` of name, id and extension
  (a name that already ends in ``.<extension>`` keeps it once). Every
  component goes through ``safe_component``: ``/``, ``..``, NUL, control and
  Windows-forbidden characters cannot escape or add a folder.
* **Text datasets** (content type ``text``): the file is ``<name>.txt``
  holding ``item.text`` as UTF-8; the item's own extension is ignored.
* **Image items without content** (no blob) are written as empty files, so
  the item and its labels still show in the archive.
* **Multi-label items**: one copy in each of their labels' folders (the same
  content object repeated), in label export order; two annotations with the
  same label give one copy.
* **An item in two splits**: a copy in each split folder, filed under that
  split's annotations.
* **Items in no split** go to the archive root: ``<label>/<file>``, or
  ``<file>`` when unlabelled.
* **Folder names**: split and label names through ``safe_component``. Split
  folders, then each split's label folders, then the root label folders are
  claimed up front in that order, so two names that collide once made safe
  (``a/b`` and ``a_b``; ``Cats`` and ``cats``) or a file and a folder of the
  same name get the ``~<id>`` suffix of :class:`~formats.paths.UniquePaths`
  (a split's or label's id) instead of merging.
* **Duplicate file names** (also differing only in case) get ``~<item_id>``
  (then a counter) from :class:`~formats.paths.UniquePaths`; the first item
  in export order keeps the plain name.
* **Empty folders** (a label without items in a split) are not written: the
  archive holds file entries only.

Reading (:meth:`FoldersFormat.read`), where the layout loses information:

* ``<split>/<label>/<file>``; ``<split>/<file>`` is unlabelled; ``<label>/<file>``
  (in no split) is taken as a label only if that name is a label folder
  elsewhere in the archive or a label of the version and not one of its
  splits; anything deeper is refused. A labelled item in no split cannot be
  annotated (annotations belong to a split) and is refused.
* A file repeated under several label folders of one split with the same
  name and bytes (a multi-label copy) is one item with those labels; the
  layout cannot tell an item in two splits from two items: they read as two.
* The item's name is the file name without its extension, so an item
  exported under its id comes back named by that id (a second export writes
  the same paths). Text datasets hold ``.txt`` files only; their text is read.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import ClassVar

from engine.model import ContentType, Dataset, DatasetSplit, Label
from formats.base import Content, Entry, ExportContext, ExportItem
from formats.paths import UniquePaths, file_name, safe_component, split_stem
from formats.reading import ArchiveReader, ImportTarget, PlanSink, refused

__all__ = ["FoldersFormat"]


class _Dirs:
    """One split's folder (``"train/"``, or ``""`` for the root) and its label folders."""

    __slots__ = ("labels", "prefix")

    def __init__(self, prefix: str, labels: dict[str | None, str]) -> None:
        self.prefix = prefix
        self.labels = labels


class FoldersFormat:
    """``<split>/<label>/<file>``; see the module docstring."""

    name: ClassVar[str] = "folders"
    content_types: ClassVar[frozenset[str]] = frozenset({ContentType.IMAGES.value, ContentType.TEXT.value})

    @classmethod
    def needs_content(cls, dataset: Dataset) -> bool:
        """Images need their blobs; text items carry their content in ``text``."""
        return dataset.content_type != ContentType.TEXT.value

    def __init__(self, ctx: ExportContext) -> None:
        self._ctx = ctx
        self._paths = UniquePaths(ctx.names)
        self._text = ctx.dataset.content_type == ContentType.TEXT.value
        # Label export position: multi-label copies are written in this order.
        self._rank = {label.id: i for i, label in enumerate(ctx.labels)}
        self._splits: dict[str | None, _Dirs] = {}
        for split in ctx.splits:
            self._split_dirs(split)
        self._root = self._dirs("", ctx.labels)

    def _split_dirs(self, split: DatasetSplit) -> _Dirs:
        """The folders of ``split``, claimed on first sight (normally in __init__)."""
        dirs = self._splits.get(split.id)
        if dirs is None:
            folder = self._paths.unique(safe_component(split.name), split.id or "split")
            dirs = self._splits[split.id] = self._dirs(folder + "/", self._ctx.labels)
        return dirs

    def _dirs(self, prefix: str, labels: list[Label]) -> _Dirs:
        dirs = _Dirs(prefix, {})
        for label in labels:
            self._label_dir(dirs, label)
        return dirs

    def _label_dir(self, dirs: _Dirs, label: Label) -> str:
        """``<split>/<label>/`` for ``label``, claimed on first sight."""
        folder = dirs.labels.get(label.id)
        if folder is None:
            name = self._paths.unique(dirs.prefix + safe_component(label.name), label.id or "label")
            folder = dirs.labels[label.id] = name + "/"
        return folder

    def entries(self, item: ExportItem) -> list[Entry]:
        if item.split is None:
            dirs = self._root
        else:
            dirs = self._splits.get(item.split.id) or self._split_dirs(item.split)
        if self._text:
            name = file_name(item.name, item.id, "txt")
            data: Content = item.text.encode("utf-8")
        else:
            name = file_name(item.name, item.id, item.extension)
            data = b"" if item.content is None else item.content
        unique = self._paths.unique
        annotations = item.annotations
        if not annotations:
            return [Entry(unique(dirs.prefix + name, item.id), data)]
        if len(annotations) == 1:
            folder = dirs.labels.get(annotations[0].label.id) or self._label_dir(dirs, annotations[0].label)
            return [Entry(unique(folder + name, item.id), data)]
        labels = {a.label.id: a.label for a in annotations}  # one copy per label
        rank = self._rank
        ordered = sorted(labels.values(), key=lambda lb: rank.get(lb.id, len(rank)))
        return [Entry(unique(self._label_dir(dirs, label) + name, item.id), data) for label in ordered]

    def entries_many(self, items: list[ExportItem]) -> list[tuple[str, Content]]:
        """The entries of ``items``, as :meth:`entries` of each in turn would give them.

        Items of one label or none (nearly all) have their paths claimed in
        runs (:meth:`UniquePaths.unique_many`); an item of several labels, or
        one whose folder is not claimed yet, goes through :meth:`entries` once
        the run before it is claimed, so every claim keeps its order.
        """
        result: list[tuple[str, Content]] = []
        paths: list[str] = []
        contents: list[Content] = []
        ids: list[str] = []
        root, splits, text = self._root, self._splits, self._text
        for item in items:
            split, annotations = item.split, item.annotations
            dirs = root if split is None else splits.get(split.id)
            folder = None
            if dirs is not None:
                if not annotations:
                    folder = dirs.prefix
                elif len(annotations) == 1:
                    folder = dirs.labels.get(annotations[0].label.id)
            if folder is None:  # several labels, or a folder to claim first
                self._claim_run(paths, contents, ids, result)
                result += self.entries(item)
                continue
            if text:
                paths.append(folder + file_name(item.name, item.id, "txt"))
                contents.append(item.text.encode("utf-8"))
            else:
                paths.append(folder + file_name(item.name, item.id, item.extension))
                contents.append(b"" if item.content is None else item.content)
            ids.append(item.id)
        self._claim_run(paths, contents, ids, result)
        return result

    def _claim_run(
        self, paths: list[str], contents: list[Content], ids: list[str], result: list[tuple[str, Content]]
    ) -> None:
        """Claim the gathered ``paths`` and move them with their ``contents`` to ``result``."""
        if paths:
            result += zip(self._paths.unique_many(paths, ids), contents, strict=True)
            paths.clear()
            contents.clear()
            ids.clear()

    def finish(self) -> list[Entry]:
        return []

    @classmethod
    def read(cls, archive: ArchiveReader, plan: PlanSink, target: ImportTarget) -> None:
        """Plan the items, labels and splits of a FOLDERS archive (see "Reading" above)."""
        text = target.content_type == ContentType.TEXT.value
        known_labels = {parts[1] for m in archive.members() if len(parts := PurePosixPath(m.name).parts) == 3}
        known_labels |= set(target.labels)
        existing_splits = set(target.splits)
        for member in archive.members():
            parts = PurePosixPath(member.name).parts
            if len(parts) > 3:
                raise refused(f"{member.name}: FOLDERS archives are <split>/<label>/<file> at most")
            split = label = None
            if len(parts) == 3:
                split, label = parts[0], parts[1]
            elif len(parts) == 2:
                if parts[0] in known_labels and parts[0] not in existing_splits:
                    label = parts[0]
                else:
                    split = parts[0]
            stem, ext = split_stem(parts[-1])
            if text and ext.lower() != "txt":
                raise refused(f"{member.name}: a text dataset's FOLDERS archive holds .txt files only")
            if split is not None:
                plan.add_split(split)
            if label is not None:
                plan.add_label(label)
            # A multi-label copy: the same file name and bytes under another label folder of the split.
            key = f"{'' if split is None else '/' + split}\0{parts[-1]}\0{member.crc32}\0{member.size}"
            item = plan.find(key)
            if item is None:
                if text:
                    item = plan.add_item(stem, "", text=archive.read_text(member.name), key=key)
                else:
                    item = plan.add_item(stem, ext, member=member.name, key=key)
                if split is not None:
                    plan.add_membership(item, split)
            if label is not None:
                if split is None:
                    raise refused(f"{member.name}: a labelled item outside any split cannot be annotated")
                plan.annotate(item, label, split)
