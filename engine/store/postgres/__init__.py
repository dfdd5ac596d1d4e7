"""The PostgreSQL metadata back end: several server processes on one database (``--store postgresql://...``).

``db`` (the pool, transactions, snapshots, and how the SQLite back end's
shared queries run here), ``schema`` (numbered migrations under an advisory
lock), ``bulk`` (``COPY``), ``pages`` (server-side cursors in a
``REPEATABLE READ`` snapshot), ``dump`` (store copy), ``blob_index`` (small
blobs inline as ``bytea``), and ``store``, which puts them together as
:class:`PostgresStore` and :class:`PostgresReader`. Needs psycopg 3 and
psycopg_pool (``pip install 'psycopg[binary]' psycopg_pool``).
"""

from engine.store.postgres.store import PostgresReader, PostgresStore

__all__ = ["PostgresReader", "PostgresStore"]
