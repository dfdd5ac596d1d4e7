"""Exact archive sizes, kept across restarts (the HTTP download's ``Content-Length``); SQL both back ends speak."""

from __future__ import annotations

from engine.store.sqlite.db import SqliteWrites

__all__ = ["SizeWrites"]


class SizeWrites(SqliteWrites):
    """The ``archive_sizes`` table: an export ETag's archive length."""

    def archive_size(self, etag: str) -> int | None:
        """A remembered exact size of the archive an export ETag names."""
        row = self._one("SELECT size FROM archive_sizes WHERE etag = ?", (etag,))
        return row[0] if row else None

    def remember_archive_size(self, etag: str, version_id: str, revision: int, size: int) -> None:
        """Keep an archive's size across restarts; sizes of the version's older revisions are dropped."""
        with self._tx() as db:
            db.execute("DELETE FROM archive_sizes WHERE version_id = ? AND revision < ?", (version_id, revision))
            db.execute(
                "INSERT INTO archive_sizes (etag, version_id, revision, size) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (etag) DO UPDATE SET version_id = excluded.version_id,"
                " revision = excluded.revision, size = excluded.size",
                (etag, version_id, revision, size),
            )

