"""Identifiers and timestamps for stored records.

Ids are UUIDv7 strings (RFC 9562): 48 bits of Unix milliseconds, the version
nibble 7, the variant bits, and 74 further bits. Because the time comes first,
the canonical lowercase string sorts in creation order, which keeps the
store's B-trees append-only and gives exports their stable "by item id"
order for free.

Within one millisecond, RFC 9562's "method 1" keeps that order in this
process: the 42 bits after the time are a counter, seeded at random each
millisecond (top bit clear, so it has room to count) and incremented for
every further id; the last 32 bits are fresh random bits. If the counter
would overflow, or the clock steps back, the timestamp is carried forward
instead, so ids never go backwards within a process.

The random bits come from :mod:`random` (reseeded from the OS at start-up
and in every forked child): ids must be unique, not unguessable, and bulk
loads make a million of them, where ``os.urandom`` per id costs a third more.
"""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime

__all__ = ["new_id", "now_iso"]

_COUNTER_BITS = 42
_COUNTER_MAX = (1 << _COUNTER_BITS) - 1
_MS_MASK = (1 << 48) - 1
_LOW30 = (1 << 30) - 1
_VERSION = 0x7 << 76
_VARIANT = 0b10 << 62

_lock = threading.Lock()
_last_ms = -1
_counter = 0


def _next_ms_and_counter() -> tuple[int, int]:
    """Advance the (millisecond, counter) pair; always strictly increasing."""
    global _last_ms, _counter
    now = time.time_ns() // 1_000_000
    with _lock:
        if now > _last_ms:
            _last_ms = now
            _counter = random.getrandbits(_COUNTER_BITS - 1)
        elif _counter < _COUNTER_MAX:
            _counter += 1
        else:  # counter exhausted (or clock went back and ran it out): borrow the next ms
            _last_ms += 1
            _counter = 0
        return _last_ms, _counter


def new_id() -> str:
    """A new UUIDv7 string; later calls in this process sort after earlier ones."""
    ms, counter = _next_ms_and_counter()
    # 48 bits ms | version 7 | 12 counter bits | variant 0b10 | 30 counter bits | 32 random bits
    value = (
        (ms & _MS_MASK) << 80
        | _VERSION
        | (counter >> 30) << 64
        | _VARIANT
        | (counter & _LOW30) << 32
        | random.getrandbits(32)
    )
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def now_iso() -> str:
    """The current UTC time as ISO-8601 with milliseconds, e.g. ``2026-11-24T20:56:45.123Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
