"""CRC-32 of a concatenation from the CRCs of its pieces (zlib's ``crc32_combine``).

Python's :mod:`zlib` computes CRC-32 but does not expose
``crc32_combine``, which the stitcher needs: an entry that spans shards (a
CSV body, a per-split JSON array) gets its CRC from its pieces' CRCs and
lengths, without reading the bytes again.

This is zlib 1.2.12's algorithm. CRC-32 is the remainder of a polynomial
division over GF(2) (bit-reflected, polynomial ``0xEDB88320``), so

    crc(A + B) = crc(A) * x^(8 * len(B)) mod P  xor  crc(B)

``x^(8n) mod P`` takes O(log n) multiplications using a table of
``x^(2^k) mod P``; each multiplication is 32 shift-and-xor steps.
"""

from __future__ import annotations

__all__ = ["crc32_combine"]

_POLY = 0xEDB88320  # CRC-32 polynomial, bit-reflected
_ONE = 1 << 31  # the polynomial "1" in reflected order


def _multmodp(a: int, b: int) -> int:
    """``a * b mod P`` for reflected 32-bit polynomials."""
    m = _ONE
    p = 0
    while True:
        if a & m:
            p ^= b
            if (a & (m - 1)) == 0:
                break
        m >>= 1
        b = (b >> 1) ^ _POLY if b & 1 else b >> 1
    return p


def _power_table() -> list[int]:
    """``x^(2^k) mod P`` for k = 0..31."""
    table = [_ONE >> 1]  # x^1
    for _ in range(31):
        table.append(_multmodp(table[-1], table[-1]))
    return table


_X2N = _power_table()


def _x2nmodp(n: int, k: int) -> int:
    """``x^(n * 2^k) mod P``."""
    p = _ONE
    while n:
        if n & 1:
            p = _multmodp(_X2N[k & 31], p)
        n >>= 1
        k += 1
    return p


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """The CRC-32 of ``A + B`` given ``crc32(A)``, ``crc32(B)`` and ``len(B)``."""
    if len2 < 0:
        raise ValueError(f"len2 must not be negative, got {len2}")
    return _multmodp(_x2nmodp(len2, 3), crc1 & 0xFFFFFFFF) ^ (crc2 & 0xFFFFFFFF)
