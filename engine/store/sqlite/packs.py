"""The SQLite side of pack compaction (``engine.store.compact.PackIndex``): which packs are used, and repointing.

A blob is *used* when an item points at it. Compaction copies the used
blobs of a pack elsewhere and calls :meth:`PackWrites.repoint`, which, in
one write transaction, moves their rows, drops the rows of the pack's
unused blobs, and retires the pack unless a row still names it (an item
began to use one of its blobs after the copy was taken: the pack then stays
as it is, and the next compaction takes it again).
"""

from __future__ import annotations

from engine.store.api import PackSlot
from engine.store.sqlite.db import SqliteWrites

__all__ = ["PackWrites"]

_USED = "EXISTS (SELECT 1 FROM items i WHERE i.blob_id = b.id)"


class PackWrites(SqliteWrites):
    """:class:`~engine.store.compact.PackIndex` for a SQLite store."""

    def pack_usage(self) -> dict[str, tuple[int, int]]:
        rows = self._all(
            f"SELECT b.pack, sum(CASE WHEN {_USED} THEN b.size ELSE 0 END), sum(b.size)"
            " FROM blobs b WHERE b.pack IS NOT NULL GROUP BY b.pack"
        )
        return {pack: (used, total) for pack, used, total in rows}

    def live_slots(self, pack: str) -> list[tuple[str, PackSlot]]:
        rows = self._all(
            f"SELECT b.sha256, b.pack_offset, b.size FROM blobs b WHERE b.pack = ? AND {_USED} ORDER BY b.pack_offset",
            (pack,),
        )
        return [(sha, PackSlot(pack, offset, size)) for sha, offset, size in rows]

    def repoint(self, moves: dict[str, PackSlot], packs: list[str], now: float) -> list[str]:
        marks = ",".join("?" * len(packs))
        with self._tx() as db:
            db.executemany(
                "UPDATE blobs SET pack = ?, pack_offset = ? WHERE sha256 = ?",
                [(slot.pack, slot.offset, sha) for sha, slot in moves.items()],
            )
            db.execute(f"DELETE FROM blobs AS b WHERE b.pack IN ({marks}) AND NOT {_USED}", packs)
            still = {r[0] for r in db.execute(f"SELECT DISTINCT pack FROM blobs WHERE pack IN ({marks})", packs)}
            retired = [p for p in packs if p not in still]
            db.executemany(
                "INSERT INTO retired_packs (pack, retired_at) VALUES (?, ?)"
                " ON CONFLICT (pack) DO UPDATE SET retired_at = excluded.retired_at",  # SQL both back ends speak
                [(p, now) for p in retired],
            )
        return retired

    def retired_packs(self) -> dict[str, float]:
        return dict(self._all("SELECT pack, retired_at FROM retired_packs"))

    def forget_retired(self, packs: list[str]) -> None:
        if packs:
            with self._tx() as db:
                db.executemany("DELETE FROM retired_packs WHERE pack = ?", [(p,) for p in packs])
