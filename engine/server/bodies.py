"""Request and response bodies, all through msgspec.

The SDK sends every field of its pydantic models, ``null`` ones included,
and no Content-Type: request Structs therefore make every field optional and
nullable, and bodies are parsed as JSON whatever the headers say. Replies
never carry ``"name": null`` (the SDK rejects it), ids and timestamps are
strings, and lists are arrays.

Limits: a JSON body is at most :data:`MAX_JSON_BODY` bytes (413), counted
as it arrives so an oversized one is never held; names, descriptions and
integers carry msgspec constraints (``Meta``), so a value outside them is a
400 naming the field and its range before the store sees it, and the
OpenAPI document states the same bounds.
"""

from __future__ import annotations

import functools
import os
import re
from typing import Annotated, Any

import anyio
import msgspec
import msgspec.inspect
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from engine.errors import InvalidInput
from engine.model import (
    Annotation,
    Dataset,
    DatasetItem,
    DatasetSplit,
    DatasetVersion,
    Label,
)
from engine.store import MAX_DESCRIPTION_LENGTH, MAX_LABEL_INDEX, MAX_NAME_LENGTH

__all__ = [
    "JSON",
    "MAX_JSON_BODY",
    "MAX_VERSION_NUMBER",
    "AnnotationIn",
    "Application",
    "DatasetIn",
    "ErrorReply",
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
    "decode_body",
    "read_body",
    "read_capped",
]

_encoder = msgspec.json.Encoder()

#: The largest JSON request body, in bytes (``DSEXPORT_MAX_JSON_BODY``). Files and archives
#: are uploaded as multipart forms, which have their own limits: this one bounds metadata.
MAX_JSON_BODY = int(os.environ.get("DSEXPORT_MAX_JSON_BODY", str(1 << 20)))
#: The largest item or state version number: SQLite's INTEGER is a signed 64-bit number.
MAX_VERSION_NUMBER = 2**63 - 1

Name = Annotated[str, msgspec.Meta(max_length=MAX_NAME_LENGTH)]
Description = Annotated[str, msgspec.Meta(max_length=MAX_DESCRIPTION_LENGTH)]
LabelIndex = Annotated[int, msgspec.Meta(ge=0, le=MAX_LABEL_INDEX)]
VersionNumber = Annotated[int, msgspec.Meta(ge=0, le=MAX_VERSION_NUMBER)]


class _In(msgspec.Struct, kw_only=True):
    id: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


class DatasetIn(_In):
    name: Name | None = None
    description: Description | None = None
    multi_label: bool | None = None
    default_splits: bool | None = None
    content_type: str | None = None


class VersionIn(_In):
    name: Name | None = None
    description: Description | None = None
    dataset_id: str | None = None
    config: str | None = None
    default_split: str | None = None
    #: Sent by the SDK, often stale: ignored (seeme-api.md §7.5).
    labels: list[Any] | None = None
    splits: list[Any] | None = None


class LabelIn(_In):
    name: Name | None = None
    description: Description | None = None
    color: str | None = None
    index: LabelIndex | None = None
    shortcut: str | None = None


class SplitIn(_In):
    name: Name | None = None
    description: Description | None = None


class SplitRef(msgspec.Struct):
    id: str | None = None


class ItemIn(_In):
    name: Name | None = None
    description: Description | None = None
    text: str | None = None
    extension: str | None = None
    splits: list[SplitRef] | None = None
    version: VersionNumber | None = None


class AnnotationIn(_In):
    label_id: str | None = None
    item_id: str | None = None
    split_id: str | None = None
    coordinates: str | None = None


class StateIn(_In):
    name: Name | None = None
    state: str | None = None
    version: VersionNumber | None = None


class RegisterIn(msgspec.Struct):
    username: Name | None = None
    email: Name | None = None
    name: Name | None = None
    firstname: Name | None = None
    password: str | None = None


class LoginIn(msgspec.Struct):
    username: Name | None = None
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
    return decode_body(await read_capped(request), kind)


def decode_body(raw: bytes, kind: type[msgspec.Struct]) -> Any:
    """``raw`` parsed as JSON into ``kind`` (an empty body is ``{}``); InvalidInput if it is not."""
    what = kind.__name__.removesuffix("In").lower()
    try:
        return msgspec.json.decode(raw or b"{}", type=kind)
    except msgspec.ValidationError as exc:
        raise InvalidInput(f"invalid {what} body: {_explain(kind, exc)}") from None
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"the request body is not JSON: {exc}") from None


def _too_large() -> HTTPException:
    return HTTPException(413, f"the request body is over the limit of {MAX_JSON_BODY} bytes for JSON bodies")


async def read_capped(request: Request) -> bytes:
    """The body, refused with 413 past :data:`MAX_JSON_BODY` bytes: on its Content-Length before a
    byte is read, else as soon as the bytes received pass the limit (a chunked body)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_JSON_BODY:
        raise _too_large()
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > MAX_JSON_BODY:
            raise _too_large()
        chunks.append(chunk)
    return b"".join(chunks)


_AT_FIELD = re.compile(r" - at `\$\.(\w+)`$")


def _explain(kind: type[msgspec.Struct], exc: msgspec.ValidationError) -> str:
    """msgspec's message, led by the field's whole valid range where the field has one: msgspec
    names only the bound that was crossed (``Expected `int` <= 2147483647 - at `$.index```)."""
    message = str(exc)
    found = _AT_FIELD.search(message)
    if found and (rule := _rules(kind).get(found.group(1))):
        return f"{found.group(1)} must be {rule} ({message})"
    return message


@functools.cache
def _rules(kind: type[msgspec.Struct]) -> dict[str, str]:
    """Each constrained field of ``kind`` and its valid values in words, from its msgspec ``Meta``."""
    rules: dict[str, str] = {}
    for field in msgspec.inspect.type_info(kind).fields:
        types = field.type.types if isinstance(field.type, msgspec.inspect.UnionType) else (field.type,)
        nullable = any(isinstance(t, msgspec.inspect.NoneType) for t in types)
        for t in types:
            if isinstance(t, msgspec.inspect.IntType) and (t.ge is not None or t.le is not None):
                rule = f"an integer from {t.ge} to {t.le}"
            elif isinstance(t, msgspec.inspect.StrType) and t.max_length is not None:
                rule = f"a string of at most {t.max_length} characters"
            else:
                continue
            rules[field.encode_name] = rule + (" or null" if nullable else "")
    return rules


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


class ErrorReply(JSON):
    """An error's JSON reply, sent while whatever is still arriving of the request body is discarded.

    Hypercorn queues a request's body for the app, a few chunks deep, and once the reply is sent
    it puts a disconnect message on that same queue. An app that stopped reading a large body (a
    413 at the limit, a 401 before the body) would wait on that put forever, and so would the
    client, still sending. Discarding while the reply goes out keeps the queue moving; the server
    then closes the connection, so the rest of the body is never read.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with anyio.create_task_group() as discarding:
            discarding.start_soon(_discard_body, receive)
            await super().__call__(scope, receive, send)
            discarding.cancel_scope.cancel()


async def _discard_body(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return
