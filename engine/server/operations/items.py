"""Items (paging, filters, If-Match), item states and annotations: seeme-api.md §3.

Each function is one SeeMe operation. Item files (multipart upload, streamed
download) are special HTTP and live in ``engine.server.files``.
"""

from __future__ import annotations

import re

from engine.errors import InvalidInput, NotFound
from engine.model import Annotation, DatasetItem
from engine.server.auth import item_in_version
from engine.server.bodies import AnnotationIn, ItemIn, ItemState, StateIn
from engine.server.operations.call import Call, Reply, keep

__all__ = [
    "EXTENSION",
    "annotate",
    "create_item",
    "delete_annotation",
    "delete_item",
    "get_annotation",
    "get_item",
    "get_state",
    "list_items",
    "list_states",
    "put_state",
    "update_annotation",
    "update_item",
]

#: A file extension the API takes (items, uploads): letters and digits, no dot.
EXTENSION = re.compile(r"[A-Za-z0-9]{1,16}")


def list_items(call: Call) -> list[DatasetItem] | Reply:
    """A page of items. Besides SeeMe's filters, ``onlyUnsplit`` (items in no split) lets a
    client-side export visit items in the engine's order; the first page (``pageCount=0``)
    carries ``X-Total-Count``, the number of items matching the filters, for progress bars."""
    q = call.query
    filters = dict(
        split_id=q["splitId"],
        label_id=q["labelId"],
        only_unlabelled=q["onlyUnlabelled"],
        only_unsplit=q["onlyUnsplit"],
    )
    page = q["pageCount"]
    items = call.store.list_items(call.version_id, page_size=q["pageSize"], page=page, **filters)
    if page != 0:
        return items
    return Reply(items, {"x-total-count": str(call.store.count_listed_items(call.version_id, **filters))})


def create_item(call: Call) -> DatasetItem:
    body: ItemIn = call.body
    extension = (body.extension or "").lstrip(".")
    if extension and not EXTENSION.fullmatch(extension):
        raise InvalidInput(f"an extension is 1-16 letters or digits, got {body.extension!r}")
    return call.store.create_item(
        call.version_id,
        name=body.name or None,
        extension=extension,
        text=body.text or "",
        split_ids=[s.id for s in body.splits or () if s.id],
        description=body.description or "",
    )


def get_item(call: Call) -> DatasetItem:
    return call.store.get_item(call.item_id)


def update_item(call: Call) -> DatasetItem:
    """Replaces name, description, text and split membership; ``If-Match: "<version>"`` or 412."""
    body: ItemIn = call.body
    return call.store.update_item(
        call.item_id,
        name=body.name or None,
        description=body.description or "",
        text=body.text,
        split_ids=None if body.splits is None else [s.id for s in body.splits if s.id],
        if_match=call.if_match(),
    )


def delete_item(call: Call) -> DatasetItem:
    """DELETE .../splits/{s}/items/{i}: the item must be in that split; answers the deleted item."""
    item = call.store.get_item(call.item_id)
    if call.path["s"] not in {s.id for s in item.splits}:
        raise NotFound(f"item {call.item_id} is not in split {call.path['s']!r}")
    return call.store.delete_item(call.item_id)


# -- states -------------------------------------------------------------------


def get_state(call: Call) -> ItemState:
    return ItemState(**call.store.get_state(call.version_id, call.item_id))


def put_state(call: Call) -> ItemState:
    body: StateIn = call.body
    state = call.store.put_state(
        call.version_id,
        call.item_id,
        state=body.state or "",
        name=body.name,
        user_id=call.user_id,
        if_match=call.if_match(),
    )
    return ItemState(**state)


def list_states(call: Call) -> list[ItemState]:
    return [ItemState(**s) for s in call.store.list_states(call.version_id)]


# -- annotations --------------------------------------------------------------


def annotate(call: Call) -> Annotation:
    body: AnnotationIn = call.body
    if not body.item_id or not body.label_id or not body.split_id:
        raise InvalidInput("an annotation needs item_id, label_id and split_id")
    item_in_version(call.store, call.version_id, body.item_id)
    return call.store.annotate(body.item_id, body.split_id, body.label_id, body.coordinates or "")


def _annotation_in_version(call: Call) -> tuple[str, Annotation]:
    annotation_id = call.path["a"]
    found_version, annotation = call.store.get_annotation(annotation_id)
    if found_version != call.version_id:
        raise NotFound(f"unknown annotation {annotation_id!r}")
    return annotation_id, annotation


def get_annotation(call: Call) -> Annotation:
    return _annotation_in_version(call)[1]


def update_annotation(call: Call) -> Annotation:
    body: AnnotationIn = call.body
    annotation_id, old = _annotation_in_version(call)
    return call.store.update_annotation(
        annotation_id,
        label_id=body.label_id or old.label_id,
        coordinates=keep(body.coordinates, old.coordinates),
    )


def delete_annotation(call: Call) -> Annotation:
    """Answers the deleted annotation: the SDK raises on an empty body here."""
    annotation_id, _ = _annotation_in_version(call)
    return call.store.delete_annotation(annotation_id)
