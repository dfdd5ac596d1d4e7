"""Datasets and versions (with duplicate): seeme-api.md §3. Each function is one SeeMe operation."""

from __future__ import annotations

from engine.model import Dataset, DatasetVersion
from engine.server.bodies import DatasetIn, VersionIn
from engine.server.operations.call import Call, keep

__all__ = [
    "create_dataset",
    "create_version",
    "delete_dataset",
    "delete_version",
    "duplicate_version",
    "get_dataset",
    "get_version",
    "list_datasets",
    "list_versions",
    "update_dataset",
    "update_version",
]


def list_datasets(call: Call) -> list[Dataset]:
    store = call.store
    return [store.get_dataset(d) for d in store.dataset_ids_of(call.user_id)]


def create_dataset(call: Call) -> Dataset:
    body: DatasetIn = call.body
    return call.store.create_dataset(
        body.name or "",
        body.content_type or "images",
        multi_label=bool(body.multi_label),
        default_splits=bool(body.default_splits),
        description=body.description or "",
        user_id=call.user_id,
    )


def get_dataset(call: Call) -> Dataset:
    return call.store.get_dataset(call.dataset_id)


def update_dataset(call: Call) -> Dataset:
    body: DatasetIn = call.body
    old = call.store.get_dataset(call.dataset_id)
    return call.store.update_dataset(
        call.dataset_id,
        name=keep(body.name, old.name),
        description=keep(body.description, old.description),
        multi_label=keep(body.multi_label, old.multi_label),
    )


def delete_dataset(call: Call) -> Dataset:
    """Answers the deleted dataset."""
    dataset = call.store.get_dataset(call.dataset_id)
    call.store.delete_dataset(call.dataset_id)
    return dataset


def list_versions(call: Call) -> list[DatasetVersion]:
    return call.store.get_dataset(call.dataset_id).versions


def create_version(call: Call) -> DatasetVersion:
    body: VersionIn = call.body
    return call.store.create_version(
        call.dataset_id, body.name or "", description=body.description or "", config=body.config or ""
    )


def get_version(call: Call) -> DatasetVersion:
    return call.store.get_version(call.dataset_id, call.version_id)


def update_version(call: Call) -> DatasetVersion:
    """Name, description and config; the body's (often stale) labels and splits are ignored."""
    body: VersionIn = call.body
    old = call.store.get_version(call.dataset_id, call.version_id)
    call.store.update_version(
        call.version_id,
        name=keep(body.name, old.name),
        description=keep(body.description, old.description),
        config=keep(body.config, old.config),
    )
    return call.store.get_version(call.dataset_id, call.version_id)


def delete_version(call: Call) -> DatasetVersion:
    """Answers the deleted version."""
    version = call.store.get_version(call.dataset_id, call.version_id)
    call.store.delete_version(call.version_id)
    return version


def duplicate_version(call: Call) -> DatasetVersion:
    body: VersionIn = call.body
    return call.store.duplicate_version(call.dataset_id, call.version_id, body.name or "")
