"""``dsexport store compact``: rewrite packs to reclaim deleted content and merge small packs.

A pack object is immutable once sealed. Deleting a dataset leaves its
small blobs in their packs (dead bytes), and single uploads each seal a
small pack of their own. Compaction copies the *live* blobs of the packs
worth rewriting (less than half live, or smaller than half a full pack)
into new packs, in their old order, checking every blob's SHA-256 on the
way, then repoints the blobs' rows in one transaction and records the old
packs as retired.

Safe while exports run. An export reads one metadata snapshot from start
to end; one that began before the repointing still names the old packs.
So a pack object is deleted only when no row names it *and* it was retired
at least ``grace`` seconds ago (default a day: longer than any export we
expect). A pack that was never recorded (its ingest failed after sealing
it) is deleted once its object is older than ``grace``.

The metadata side is a :class:`PackIndex` (the SQLite back end's
``SqliteBlobs``; another metadata back end provides the same methods).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from typing import Protocol

import msgspec

from engine.errors import MissingBlob
from engine.store.api import PackedBlobs, PackSlot
from engine.store.blobs.packs import PACK_BYTES

__all__ = ["DEFAULT_GRACE", "CompactReport", "PackIndex", "compact"]

DEFAULT_GRACE = 24 * 3600.0
"""Seconds a retired pack stays readable for exports that began before it was retired."""
_READ_BATCH = 16 * 1024 * 1024  # bytes of live blobs read back per ranged read


class PackIndex(Protocol):
    """What compaction needs of a metadata back end about its packed blobs."""

    def pack_usage(self) -> dict[str, tuple[int, int]]:
        """Every recorded pack: (bytes of blobs items still use, bytes of all blobs recorded in it)."""
        ...

    def live_slots(self, pack: str) -> list[tuple[str, PackSlot]]:
        """(sha256, slot) of the blobs in ``pack`` that items use, by offset."""
        ...

    def repoint(self, moves: dict[str, PackSlot], packs: list[str], now: float) -> list[str]:
        """In one transaction: point moved blobs at their new slots, drop the unused blobs of ``packs``, and
        record as retired (at ``now``) each of ``packs`` that no row names any more; returns those."""
        ...

    def retired_packs(self) -> dict[str, float]:
        """Retired packs and when they were retired."""
        ...

    def forget_retired(self, packs: list[str]) -> None:
        """Drop the records of deleted packs."""
        ...


class CompactReport(msgspec.Struct):
    """What a compaction did."""

    rewritten: list[str] = msgspec.field(default_factory=list)
    """Packs whose live blobs were copied into new packs."""
    written: list[str] = msgspec.field(default_factory=list)
    """The new packs."""
    moved_bytes: int = 0
    deleted: list[str] = msgspec.field(default_factory=list)
    """Pack objects deleted (retired, or never recorded, longer than the grace period ago)."""
    kept_for_grace: int = 0
    """Unused pack objects still within their grace period."""


def worth_rewriting(usage: dict[str, tuple[int, int]], target: int = PACK_BYTES) -> list[str]:
    """Packs less than half live, or small ones (when there are at least two to merge)."""
    sparse = [p for p, (live, total) in usage.items() if live * 2 < total]
    small = [p for p, (live, total) in usage.items() if live * 2 >= total and total * 2 < target]
    return sorted(sparse + (small if len(small) > 1 or sparse else []))


def compact(index: PackIndex, files: PackedBlobs, *, grace: float = DEFAULT_GRACE, now: float | None = None) -> CompactReport:
    """Rewrite the packs worth it, then delete the pack objects no export may still read."""
    now = time.time() if now is None else now
    report = CompactReport()
    candidates = worth_rewriting(index.pack_usage())
    if candidates:
        moves: dict[str, PackSlot] = {}
        with files.pack_writer() as writer:
            for pack in candidates:
                for sha, data in _live_blobs(index, files, pack):
                    moves[sha] = writer.add(data)
                    report.moved_bytes += len(data)
            report.written = list(writer.seal())
        report.rewritten = index.repoint(moves, candidates, now)
    retired = index.retired_packs()
    in_use = set(index.pack_usage())
    for pack, written in sorted(files.list_packs().items()):
        if pack in in_use:
            continue
        if now - retired.get(pack, written) >= grace:
            files.delete_pack(pack)
            report.deleted.append(pack)
        else:
            report.kept_for_grace += 1
    index.forget_retired(report.deleted)
    return report


def _live_blobs(index: PackIndex, files: PackedBlobs, pack: str) -> Iterator[tuple[str, bytes]]:
    """The live blobs of ``pack`` in order, read in batches of ranged reads, each checked against its hash."""
    slots = index.live_slots(pack)
    start = 0
    while start < len(slots):
        end, held = start, 0
        while end < len(slots) and (held == 0 or held + slots[end][1].size <= _READ_BATCH):
            held += slots[end][1].size
            end += 1
        batch = slots[start:end]
        datas = files.read_packed([slot for _, slot in batch], [f"blob {sha}" for sha, _ in batch])
        for (sha, _), data in zip(batch, datas):
            if hashlib.sha256(data).hexdigest() != sha:
                raise MissingBlob(f"blob {sha} in pack {pack} is corrupt (its SHA-256 does not match); nothing was changed")
            yield sha, data
        start = end
