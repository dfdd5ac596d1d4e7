"""Exact archive sizes in PostgreSQL: one table every server process reads and writes."""

from __future__ import annotations

from engine.store.sqlite.sizes import SizeWrites

__all__ = ["PgSizeWrites"]


class PgSizeWrites(SizeWrites):
    """``SizeWrites`` with PostgreSQL's upsert (SQLite's ``INSERT OR REPLACE`` has no equivalent)."""

    def remember_archive_size(self, etag: str, version_id: str, revision: int, size: int) -> None:
        """Keep an archive's size for every process; sizes of the version's older revisions are dropped."""
        with self._tx() as db:
            db.execute("DELETE FROM archive_sizes WHERE version_id = ? AND revision < ?", (version_id, revision))
            db.execute(
                "INSERT INTO archive_sizes (etag, version_id, revision, size) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (etag) DO UPDATE SET version_id = excluded.version_id,"
                " revision = excluded.revision, size = excluded.size",
                (etag, version_id, revision, size),
            )
