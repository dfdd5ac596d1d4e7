"""The export read path on PostgreSQL: a server-side cursor per split, inside one ``REPEATABLE READ`` snapshot.

The order, the shard ranges and the pages' shape are the SQLite back end's
(``engine.store.sqlite.pages``, whose queries this runs); what differs is
how the rows arrive. Instead of one keyset query per page, each split's
rows come from one named cursor (``DECLARE``/``FETCH``), ``page_size`` rows
per fetch: PostgreSQL plans the join once and streams it, and the whole
iteration reads the snapshot the reader's transaction holds, so an export
sees one state of the version while writes go on.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from engine.store.postgres.db import PgConnection, mapped_errors, to_postgres
from engine.store.sqlite.pages import PageReads

__all__ = ["PgPageReads"]

_CURSOR_NAMES = itertools.count(1)


class PgPageReads(PageReads):
    """``PageReads`` whose pages come from server-side cursors (on a reader: its own connection)."""

    def _keyset(
        self, sql: str, key: str, size: int, after: str = "", limit: int | None = None
    ) -> Iterator[list[tuple]]:
        """Pages of ``sql`` rows after ``after`` (at most ``limit`` rows), fetched ``size`` at a time.

        ``sql`` ends in ``LIMIT ?``: given ``limit`` None, PostgreSQL reads it as no limit.
        """
        db: PgConnection = self._db  # type: ignore[assignment]
        conn = db.conn
        assert conn is not None, "pages are read inside a reader's snapshot"
        with mapped_errors(db.where), conn.cursor(name=f"dsexport_pages_{next(_CURSOR_NAMES)}", binary=True) as cur:
            cur.execute(to_postgres(sql), (key, after, limit))
            while rows := cur.fetchmany(size):
                yield rows
                if len(rows) < size:
                    return
