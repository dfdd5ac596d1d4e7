"""Labels, label statistics and splits of a version: seeme-api.md §3. Each function is one SeeMe operation."""

from __future__ import annotations

from engine.model import DatasetSplit, Label
from engine.server.bodies import LabelIn, LabelStat, SplitIn
from engine.server.operations.call import Call, keep

__all__ = [
    "create_label",
    "create_split",
    "delete_label",
    "delete_split",
    "get_label",
    "get_split",
    "label_stats",
    "list_labels",
    "list_splits",
    "update_label",
    "update_split",
]


def list_labels(call: Call) -> list[Label]:
    return call.store.labels(call.version_id)


def create_label(call: Call) -> Label:
    """``index: 0`` (the SDK's default for every label) means "after the last"; so does a missing index."""
    body: LabelIn = call.body
    return call.store.create_label(call.version_id, body.name or "", color=body.color or "", index=body.index or None)


def get_label(call: Call) -> Label:
    return call.store.get_label(call.version_id, call.path["l"])


def update_label(call: Call) -> Label:
    body: LabelIn = call.body
    label_id = call.path["l"]
    old = call.store.get_label(call.version_id, label_id)
    return call.store.update_label(
        call.version_id,
        label_id,
        name=keep(body.name, old.name),
        description=keep(body.description, old.description),
        color=body.color or old.color,
        index=keep(body.index, old.index),
        shortcut=keep(body.shortcut, old.shortcut),
    )


def delete_label(call: Call) -> Label:
    return call.store.delete_label(call.version_id, call.path["l"])


def label_stats(call: Call) -> list[LabelStat]:
    """Per label: items and annotations in the split; ``label_id: ""`` counts the unlabelled items."""
    return [LabelStat(**r) for r in call.store.label_stats(call.version_id, call.path["s"])]


def list_splits(call: Call) -> list[DatasetSplit]:
    return call.store.splits(call.version_id)


def create_split(call: Call) -> DatasetSplit:
    body: SplitIn = call.body
    return call.store.create_split(call.version_id, body.name or "")


def get_split(call: Call) -> DatasetSplit:
    return call.store.get_split(call.version_id, call.path["s"])


def update_split(call: Call) -> DatasetSplit:
    body: SplitIn = call.body
    split_id = call.path["s"]
    old = call.store.get_split(call.version_id, split_id)
    return call.store.update_split(
        call.version_id, split_id, name=keep(body.name, old.name), description=keep(body.description, old.description)
    )


def delete_split(call: Call) -> DatasetSplit:
    return call.store.delete_split(call.version_id, call.path["s"])
