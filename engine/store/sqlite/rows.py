"""Column lists and row mappers of the SQLite back end: one place says which column is which field."""

from __future__ import annotations

from engine.model import Annotation, DatasetSplit, Label

__all__ = ["ANN_COLS", "DATASET_COLS", "ITEM_COLS", "LABEL_COLS", "SPLIT_COLS", "VERSION_COLS", "annotation", "label", "split"]

DATASET_COLS = "id, name, description, user_id, content_type, multi_label, default_splits, created_at, updated_at"
VERSION_COLS = "id, dataset_id, name, description, config, created_at, updated_at"
LABEL_COLS = "id, version_id, name, description, color, idx, shortcut, created_at, updated_at"
SPLIT_COLS = "id, version_id, name, description, created_at, updated_at"
ITEM_COLS = "id, name, description, text, extension, version, created_at, updated_at, width, height"
ANN_COLS = "id, item_id, split_id, label_id, coordinates, created_at, updated_at"


def label(r: tuple) -> Label:
    return Label(
        id=r[0],
        version_id=r[1],
        name=r[2],
        description=r[3],
        color=r[4],
        index=r[5],
        shortcut=r[6],
        created_at=r[7],
        updated_at=r[8],
    )


def split(r: tuple) -> DatasetSplit:
    return DatasetSplit(id=r[0], version_id=r[1], name=r[2], description=r[3], created_at=r[4], updated_at=r[5])


def annotation(r: tuple) -> Annotation:
    return Annotation(
        id=r[0], item_id=r[1], split_id=r[2], label_id=r[3], coordinates=r[4], created_at=r[5], updated_at=r[6]
    )


