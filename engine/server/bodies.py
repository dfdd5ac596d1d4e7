"""Request and response bodies, all through msgspec.

The SDK sends every field of its pydantic models, ``null`` ones included,
and no Content-Type: request Structs therefore make every field optional and
nullable, and bodies are parsed as JSON whatever the headers say. Replies
never carry ``"name": null`` (the SDK rejects it), ids and timestamps are
strings, and lists are arrays.
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from engine.errors import InvalidInput
from engine.model import (
    Annotation,
    Dataset,
    DatasetItem,
    DatasetSplit,
    DatasetVersion,
    Label,
)

__all__ = [
    "JSON",
    "AnnotationIn",
    "Application",
    "DatasetIn",
    "ItemIn",
    "ItemState",
    "LabelIn",
    "LabelStat",
    "LoginIn",
    "LoginReply",
    "RegisterIn",
    "SplitIn",
    "StateIn",
    "User",
    "VersionIn",
    "read_body",
]

_encoder = msgspec.json.Encoder()


class _In(msgspec.Struct, kw_only=True):
    id: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


class DatasetIn(_In):
    name: str | None = None
    description: str | None = None
    multi_label: bool | None = None
    default_splits: bool | None = None
    content_type: str | None = None


class VersionIn(_In):
    name: str | None = None
    description: str | None = None
    dataset_id: str | None = None
    config: str | None = None
    default_split: str | None = None
    #: Sent by the SDK, often stale: ignored (seeme-api.md §7.5).
    labels: list[Any] | None = None
    splits: list[Any] | None = None


class LabelIn(_In):
    name: str | None = None
    description: str | None = None
    color: str | None = None
    index: int | None = None
    shortcut: str | None = None


class SplitIn(_In):
    name: str | None = None
    description: str | None = None


class SplitRef(msgspec.Struct):
    id: str | None = None


class ItemIn(_In):
    name: str | None = None
    description: str | None = None
    text: str | None = None
    extension: str | None = None
    splits: list[SplitRef] | None = None
    version: int | None = None


class AnnotationIn(_In):
    label_id: str | None = None
    item_id: str | None = None
    split_id: str | None = None
    coordinates: str | None = None


class StateIn(_In):
    name: str | None = None
    state: str | None = None
    version: int | None = None


class RegisterIn(msgspec.Struct):
    username: str | None = None
    email: str | None = None
    name: str | None = None
    firstname: str | None = None
    password: str | None = None


class LoginIn(msgspec.Struct):
    username: str | None = None
    password: str | None = None


class LoginReply(msgspec.Struct):
    id: str
    username: str
    name: str
    email: str
    firstname: str
    apikey: str


class User(msgspec.Struct):
    id: str
    username: str
    email: str
    name: str
    firstname: str
    apikey: str


class LabelStat(msgspec.Struct):
    label_id: str
    split_id: str
    count: int
    annotation_count: int
    item_count: int


class ItemState(msgspec.Struct, omit_defaults=True):
    item_id: str
    dataset_version_id: str
    state: str = ""
    version: int = 0
    id: str | None = None
    name: str | None = None
    user_id: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


class Application(msgspec.Struct):
    base_framework: str | None = None
    base_framework_version: str | None = None
    framework: str | None = None
    framework_version: str | None = None
    application: str | None = None
    inference_host: str | None = None
    can_convert_to_onnx: bool | None = None
    can_convert_to_tensorflow: bool | None = None
    can_convert_to_tflite: bool | None = None
    continual_training: bool | None = None
    has_embedding_support: bool | None = None
    has_labels_file: bool | None = None
    inference_extensions: str | None = None


#: Reply models, for the OpenAPI document.
REPLIES = (Dataset, DatasetVersion, Label, DatasetSplit, DatasetItem, Annotation, LabelStat, ItemState, Application)


async def read_body(request: Request, kind: type[msgspec.Struct]) -> Any:
    """The body parsed as JSON into ``kind``, whatever the Content-Type; InvalidInput if it is not."""
    raw = await request.body()
    try:
        return msgspec.json.decode(raw or b"{}", type=kind)
    except msgspec.ValidationError as exc:
        raise InvalidInput(f"invalid {kind.__name__.removesuffix('In').lower()} body: {exc}") from None
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"the request body is not JSON: {exc}") from None


def _drop_null_names(value: Any) -> Any:
    """The builtins of a reply, without ``"name": null`` anywhere (the SDK rejects it)."""
    if isinstance(value, dict):
        return {k: _drop_null_names(v) for k, v in value.items() if not (k == "name" and v is None)}
    if isinstance(value, list):
        return [_drop_null_names(v) for v in value]
    return value


class JSON(Response):
    """A JSON reply encoded by msgspec."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return _encoder.encode(_drop_null_names(msgspec.to_builtins(content)))
