"""dsexport's engine: store, sources, pipeline, zip writer, sinks, client and CLI.

The light modules (model, errors) are imported eagerly. The rest load on
first use, because ``formats`` imports ``engine.model`` and an eager import
of the pipeline (or of ``DatasetFormat``, derived from ``formats.FORMATS``)
here would be circular.
"""

from __future__ import annotations

import importlib
from typing import Any

from engine.errors import (
    ArchiveError,
    AuthenticationFailed,
    ContentError,
    DsexportError,
    InvalidInput,
    MissingBlob,
    NotFound,
    OutputError,
    RemoteError,
    UnsafeArchive,
)
from engine.model import (
    Annotation,
    ContentType,
    Dataset,
    DatasetItem,
    DatasetSplit,
    DatasetVersion,
    Label,
)

__all__ = [
    "Annotation",
    "ArchiveError",
    "AsyncClient",
    "AuthenticationFailed",
    "Client",
    "ContentError",
    "ContentType",
    "Dataset",
    "DatasetFormat",
    "DatasetItem",
    "DatasetSplit",
    "DatasetVersion",
    "DsexportError",
    "ExportOptions",
    "ExportResult",
    "FileSink",
    "InvalidInput",
    "Label",
    "MissingBlob",
    "NotFound",
    "OutputError",
    "RemoteError",
    "StdoutSink",
    "Store",
    "StoreSource",
    "UnsafeArchive",
    "ZipWriter",
    "export",
    "run_export",
]

_LAZY = {
    "AsyncClient": "engine.client",
    "Client": "engine.client",
    "DatasetFormat": "engine.client.dataset_format",
    "ExportOptions": "engine.pipeline",
    "ExportResult": "engine.pipeline",
    "export": "engine.pipeline",
    "run_export": "engine.pipeline",
    "FileSink": "engine.sinks",
    "StdoutSink": "engine.sinks",
    "Store": "engine.store",
    "StoreSource": "engine.sources",
    "ZipWriter": "engine.zipwriter",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
