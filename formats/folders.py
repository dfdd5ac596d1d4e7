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
"""

from __future__ import annotations

from typing import ClassVar

from engine.model import ContentType, Dataset, DatasetSplit, Label
from formats.base import Content, Entry, ExportContext, ExportItem
from formats.paths import UniquePaths, file_name, safe_component

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

    def finish(self) -> list[Entry]:
        return []
