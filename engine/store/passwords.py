"""Password hashes: Argon2id (argon2-cffi), whose parameters live in the stored hash.

Hashes of earlier releases (``scrypt$<salt>$<digest>``, n=2**14, r=8, p=1)
still verify; :func:`verify` then says the hash wants replacing, and the
store re-hashes the password on that successful login. So do Argon2 hashes
made with weaker parameters than today's.

An empty password never verifies, and "" (a key-only user) matches nothing:
that keeps safe the stores whose key-only users were stored with the hash
of the empty string.
"""

from __future__ import annotations

import hashlib
import hmac

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["hash_password", "usable", "verify"]

_HASHER = PasswordHasher()


def hash_password(password: str) -> str:
    """A new Argon2id hash of ``password`` (salted; the parameters are in the string)."""
    return _HASHER.hash(password)


def verify(password: str, stored: str) -> tuple[bool, bool]:
    """(whether ``password`` matches ``stored``, whether ``stored`` should be re-hashed now)."""
    if not password or not stored:
        return False, False
    if stored.startswith("scrypt$"):
        return _scrypt_matches(password, stored), True
    try:
        _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False, False
    return True, _HASHER.check_needs_rehash(stored)


def usable(stored: str) -> bool:
    """Whether some non-empty password can log in against ``stored`` (not "", not the hash of "")."""
    if not stored:
        return False
    if stored.startswith("scrypt$"):
        return not _scrypt_matches("", stored)
    try:
        return not _HASHER.verify(stored, "")
    except (VerificationError, InvalidHashError):
        return True


def _scrypt_matches(password: str, stored: str) -> bool:
    try:
        _, salt, digest = stored.split("$")
        got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=2**14, r=8, p=1)
    except ValueError:
        return False
    return hmac.compare_digest(got.hex(), digest)
