"""Datasets, versions (with duplicate), labels, label stats and splits: seeme-api.md §3."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from engine.server.auth import check_dataset, check_version, db, service, user_id
from engine.server.bodies import (
    JSON,
    DatasetIn,
    LabelIn,
    LabelStat,
    SplitIn,
    VersionIn,
    read_body,
)

__all__ = ["routes"]

D = "/datasets/{d}"
V = D + "/versions/{v}"


def _store(request: Request):
    return service(request).store


# -- datasets -----------------------------------------------------------------


async def list_datasets(request: Request) -> JSON:
    uid = await user_id(request)
    store = _store(request)
    return JSON(await db(request, lambda: [store.get_dataset(d) for d in store.dataset_ids_of(uid)]))


async def create_dataset(request: Request) -> JSON:
    uid = await user_id(request)
    body = await read_body(request, DatasetIn)
    dataset = await db(
        request,
        _store(request).create_dataset,
        body.name or "",
        body.content_type or "images",
        multi_label=bool(body.multi_label),
        default_splits=bool(body.default_splits),
        description=body.description or "",
        user_id=uid,
    )
    return JSON(dataset, 201)


async def get_dataset(request: Request) -> JSON:
    _, dataset_id = await check_dataset(request)
    return JSON(await db(request, _store(request).get_dataset, dataset_id))


async def update_dataset(request: Request) -> JSON:
    _, dataset_id = await check_dataset(request)
    body = await read_body(request, DatasetIn)
    store = _store(request)

    def update():
        old = store.get_dataset(dataset_id)
        return store.update_dataset(
            dataset_id,
            name=body.name if body.name is not None else old.name,
            description=body.description if body.description is not None else old.description,
            multi_label=body.multi_label if body.multi_label is not None else old.multi_label,
        )

    return JSON(await db(request, update))


async def delete_dataset(request: Request) -> JSON:
    _, dataset_id = await check_dataset(request)
    dataset = await db(request, _store(request).get_dataset, dataset_id)
    await db(request, _store(request).delete_dataset, dataset_id)
    return JSON(dataset)


# -- versions -----------------------------------------------------------------


async def list_versions(request: Request) -> JSON:
    _, dataset_id = await check_dataset(request)
    return JSON((await db(request, _store(request).get_dataset, dataset_id)).versions)


async def create_version(request: Request) -> JSON:
    _, dataset_id = await check_dataset(request)
    body = await read_body(request, VersionIn)
    version = await db(
        request,
        _store(request).create_version,
        dataset_id,
        body.name or "",
        description=body.description or "",
        config=body.config or "",
    )
    return JSON(version, 201)


async def get_version(request: Request) -> JSON:
    _, dataset_id, version_id = await check_version(request)
    return JSON(await db(request, _store(request).get_version, dataset_id, version_id))


async def update_version(request: Request) -> JSON:
    """Name, description and config; the body's (often stale) labels and splits are ignored."""
    _, dataset_id, version_id = await check_version(request)
    body = await read_body(request, VersionIn)
    store = _store(request)

    def update():
        old = store.get_version(dataset_id, version_id)
        store.update_version(
            version_id,
            name=body.name if body.name is not None else old.name,
            description=body.description if body.description is not None else old.description,
            config=body.config if body.config is not None else old.config,
        )
        return store.get_version(dataset_id, version_id)

    return JSON(await db(request, update))


async def delete_version(request: Request) -> JSON:
    _, dataset_id, version_id = await check_version(request)
    version = await db(request, _store(request).get_version, dataset_id, version_id)
    await db(request, _store(request).delete_version, version_id)
    return JSON(version)


async def duplicate_version(request: Request) -> JSON:
    _, dataset_id, version_id = await check_version(request)
    body = await read_body(request, VersionIn)
    version = await db(request, _store(request).duplicate_version, dataset_id, version_id, body.name or "")
    return JSON(version, 201)


# -- labels -------------------------------------------------------------------


async def list_labels(request: Request) -> JSON:
    *_, version_id = await check_version(request)
    return JSON(await db(request, _store(request).labels, version_id))


async def create_label(request: Request) -> JSON:
    """``index: 0`` (the SDK's default for every label) means "after the last"; so does a missing index."""
    *_, version_id = await check_version(request)
    body = await read_body(request, LabelIn)
    label = await db(
        request,
        _store(request).create_label,
        version_id,
        body.name or "",
        color=body.color or "",
        index=body.index or None,
    )
    return JSON(label, 201)


async def get_label(request: Request) -> JSON:
    *_, version_id = await check_version(request)
    return JSON(await db(request, _store(request).get_label, version_id, request.path_params["l"]))


async def update_label(request: Request) -> JSON:
    *_, version_id = await check_version(request)
    body = await read_body(request, LabelIn)
    store, label_id = _store(request), request.path_params["l"]

    def update():
        old = store.get_label(version_id, label_id)
        return store.update_label(
            version_id,
            label_id,
            name=body.name if body.name is not None else old.name,
            description=body.description if body.description is not None else old.description,
            color=body.color or old.color,
            index=body.index if body.index is not None else old.index,
            shortcut=body.shortcut if body.shortcut is not None else old.shortcut,
        )

    return JSON(await db(request, update))


async def delete_label(request: Request) -> JSON:
    *_, version_id = await check_version(request)
    return JSON(await db(request, _store(request).delete_label, version_id, request.path_params["l"]))


async def label_stats(request: Request) -> JSON:
    """Per label: items and annotations in the split; ``label_id: ""`` counts the unlabelled items."""
    *_, version_id = await check_version(request)
    rows = await db(request, _store(request).label_stats, version_id, request.path_params["s"])
    return JSON([LabelStat(**r) for r in rows])


# -- splits -------------------------------------------------------------------


async def list_splits(request: Request) -> JSON:
    *_, version_id = await check_version(request)
    return JSON(await db(request, _store(request).splits, version_id))


async def create_split(request: Request) -> JSON:
    *_, version_id = await check_version(request)
    body = await read_body(request, SplitIn)
    return JSON(await db(request, _store(request).create_split, version_id, body.name or ""), 201)


async def get_split(request: Request) -> JSON:
    *_, version_id = await check_version(request)
    return JSON(await db(request, _store(request).get_split, version_id, request.path_params["s"]))


async def update_split(request: Request) -> JSON:
    *_, version_id = await check_version(request)
    body = await read_body(request, SplitIn)
    store, split_id = _store(request), request.path_params["s"]

    def update():
        old = store.get_split(version_id, split_id)
        return store.update_split(
            version_id,
            split_id,
            name=body.name if body.name is not None else old.name,
            description=body.description if body.description is not None else old.description,
        )

    return JSON(await db(request, update))


async def delete_split(request: Request) -> JSON:
    *_, version_id = await check_version(request)
    return JSON(await db(request, _store(request).delete_split, version_id, request.path_params["s"]))



routes = [
    Route("/datasets", list_datasets, methods=["GET"]),
    Route("/datasets", create_dataset, methods=["POST"]),
    Route(D, get_dataset, methods=["GET"]),
    Route(D, update_dataset, methods=["PUT"]),
    Route(D, delete_dataset, methods=["DELETE"]),
    Route(D + "/versions", list_versions, methods=["GET"]),
    Route(D + "/versions", create_version, methods=["POST"]),
    Route(V, get_version, methods=["GET"]),
    Route(V, update_version, methods=["PUT"]),
    Route(V, delete_version, methods=["DELETE"]),
    Route(V + "/new", duplicate_version, methods=["POST"]),
    Route(V + "/labels", list_labels, methods=["GET"]),
    Route(V + "/labels", create_label, methods=["POST"]),
    Route(V + "/labels/splits/{s}", label_stats, methods=["GET"]),
    Route(V + "/labels/{l}", get_label, methods=["GET"]),
    Route(V + "/labels/{l}", update_label, methods=["PUT"]),
    Route(V + "/labels/{l}", delete_label, methods=["DELETE"]),
    Route(V + "/splits", list_splits, methods=["GET"]),
    Route(V + "/splits", create_split, methods=["POST"]),
    Route(V + "/splits/{s}", get_split, methods=["GET"]),
    Route(V + "/splits/{s}", update_split, methods=["PUT"]),
    Route(V + "/splits/{s}", delete_split, methods=["DELETE"]),
]
