"""The SQLite metadata back end (the embedded default): SQLite in WAL mode, one module per job.

``db`` (connections, pragmas, transactions), ``schema`` (numbered
migrations), ``rows`` (columns and row mappers), ``catalog``, ``items``,
``bulk``, ``pages`` (the export read path), ``accounts``, ``sizes``,
``blob_index`` (the blobs table, small blobs inline), and ``store``, which
puts them together as :class:`Store` and :class:`StoreReader`.
"""

from engine.store.sqlite.store import DB_NAME, Store, StoreReader

__all__ = ["DB_NAME", "Store", "StoreReader"]
