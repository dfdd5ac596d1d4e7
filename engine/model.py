"""The dataset model, as msgspec Structs with the SeeMe SDK's field names.

The names follow ``seeme.types`` (SDK 0.43.2) so the same Structs serve the
embedded store, the HTTP API and the export formats. IDs and timestamps are
strings, ``config`` and ``coordinates`` are strings (JSON or plain text), as
the SDK requires.

Annotation ``coordinates`` conventions (seeme-api.md §8):

* object detection: ``"cx cy w h"``, relative 0..1 floats separated by spaces;
* named entities: ``{"start": S, "end": E}`` as a JSON string (``"S E"`` is
  accepted on input), character offsets into ``item.text``, end exclusive;
* classification: ``""``, one annotation per label on the item.
"""

from __future__ import annotations

import enum

import msgspec

__all__ = [
    "Annotation",
    "ContentType",
    "Dataset",
    "DatasetItem",
    "DatasetSplit",
    "DatasetVersion",
    "Label",
]


class ContentType(str, enum.Enum):
    """What a dataset's items hold; decides the natural export format."""

    IMAGES = "images"
    TEXT = "text"
    TABULAR = "tabular"
    NER = "ner"


class _Base(msgspec.Struct, kw_only=True, omit_defaults=False):
    id: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


class Label(_Base):
    name: str = ""
    description: str = ""
    user_id: str = ""
    version_id: str = ""
    color: str = ""
    index: int = 0
    shortcut: str = ""


class DatasetSplit(_Base):
    name: str = ""
    description: str = ""
    user_id: str = ""
    version_id: str = ""


class Annotation(_Base):
    label_id: str = ""
    item_id: str = ""
    split_id: str = ""
    coordinates: str = ""
    user_id: str = ""


class DatasetItem(_Base):
    name: str | None = None
    description: str = ""
    user_id: str = ""
    text: str | None = ""
    splits: list[DatasetSplit] = msgspec.field(default_factory=list)
    annotations: list[Annotation] = msgspec.field(default_factory=list)
    extension: str | None = ""
    version: int = 0
    #: The image's size in pixels, measured from its content at ingest (None: not an image, or not measured).
    width: int | None = None
    height: int | None = None


class DatasetVersion(_Base):
    name: str = ""
    description: str = ""
    labels: list[Label] = msgspec.field(default_factory=list)
    user_id: str = ""
    dataset_id: str = ""
    splits: list[DatasetSplit] = msgspec.field(default_factory=list)
    default_split: str = ""
    config: str = ""


class Dataset(_Base):
    name: str = ""
    description: str = ""
    user_id: str | None = None
    notes: str | None = None
    has_logo: bool = False
    logo: str = ""
    public: bool = False
    shared_with_me: bool = False
    versions: list[DatasetVersion] = msgspec.field(default_factory=list)
    multi_label: bool = False
    default_splits: bool = False
    content_type: str = ContentType.IMAGES.value
