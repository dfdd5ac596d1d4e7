"""Cutting an export's item occurrences into contiguous shards."""

from __future__ import annotations

import msgspec

__all__ = ["Shard", "cut"]


class Shard(msgspec.Struct, frozen=True):
    """Occurrences ``start`` to ``stop - 1`` of the source's stable order."""

    index: int
    start: int
    stop: int

    def describe(self) -> str:
        """How messages name the shard, e.g. ``shard 2 (item occurrences 200-299)``."""
        if self.stop == self.start:
            return f"shard {self.index} (no item occurrences)"
        return f"shard {self.index} (item occurrences {self.start}-{self.stop - 1})"


def cut(total: int, shards: int) -> list[Shard]:
    """``shards`` contiguous ranges covering ``0..total``, sizes differing by at most one.

    Never more shards than occurrences (an empty shard would only cost a
    task), but always at least one, so an empty version still gets its
    closing entries.
    """
    if shards < 1:
        raise ValueError(f"shards must be at least 1, got {shards}")
    count = max(1, min(shards, total))
    base, extra = divmod(total, count)
    out = []
    start = 0
    for index in range(count):
        stop = start + base + (1 if index < extra else 0)
        out.append(Shard(index, start, stop))
        start = stop
    return out
