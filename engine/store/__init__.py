"""The store: metadata and blobs behind two interfaces (``engine.store.api``), SQLite and files by default.

``from engine.store import Store`` opens the embedded back end (SQLite in a
folder plus its ``blobs/`` folder); :func:`open_store` picks a back end by
URL (``engine.store.registry``), and a :class:`StoreAddress` (metadata URL
plus blob URL) is how the rest of the product names a store. The contract suites every back end passes
are in ``engine.store.testing``.
"""

from engine.store.address import StoreAddress
from engine.store.api import (
    INLINE_LIMIT,
    BlobRef,
    BlobStore,
    MetadataReader,
    MetadataStore,
    NewItem,
    PageContent,
    VersionConflict,
)
from engine.store.blobs.local import BlobFile, LocalBlobs
from engine.store.blobs.memory import MemoryBlobs
from engine.store.registry import open_blobs, open_reader, open_store
from engine.store.rules import (
    MAX_DESCRIPTION_LENGTH,
    MAX_LABEL_INDEX,
    MAX_NAME_LENGTH,
    PALETTE,
)
from engine.store.sqlite.bulk import BATCH_BYTES
from engine.store.sqlite.schema import SCHEMA_VERSION
from engine.store.sqlite.store import DB_NAME, Store, StoreReader

__all__ = [
    "BATCH_BYTES", "DB_NAME", "INLINE_LIMIT", "MAX_DESCRIPTION_LENGTH", "MAX_LABEL_INDEX", "MAX_NAME_LENGTH",
    "PALETTE", "SCHEMA_VERSION", "BlobFile", "BlobRef", "BlobStore", "LocalBlobs", "MemoryBlobs", "MetadataReader",
    "MetadataStore", "NewItem", "PageContent", "Store", "StoreAddress", "StoreReader", "VersionConflict", "open_blobs",
    "open_reader", "open_store",
]
