"""Users and API keys in SQLite (the HTTP service's accounts).

Only hashes are stored: an API key's SHA-256 (keys are 256 random bits) and
a password's hash from ``engine.store.passwords``.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from engine.errors import InvalidInput, NotFound, choices_hint
from engine.ids import new_id, now_iso
from engine.store import passwords
from engine.store.sqlite.db import SqliteWrites

__all__ = ["AccountWrites"]


class AccountWrites(SqliteWrites):
    """Users, their keys, and which datasets each owns."""

    def create_user(
        self, username: str, password: str | None = None, *, email: str = "", name: str = "", firstname: str = ""
    ) -> tuple[dict[str, str], str]:
        """A user and a first API key: ``(user row, key)``. Only the key's SHA-256 is stored.

        ``password`` None makes a key-only user, who can never log in by
        password (no hash is stored). An empty or blank password is refused,
        never stored: it would let anyone who knows the username log in.
        """
        if not isinstance(username, str) or not username.strip():
            raise InvalidInput(f"a user needs a non-empty username, got {username!r}")
        if password is not None and not password.strip():
            raise InvalidInput("the password must not be empty; leave it out for a key-only user")
        password_hash = "" if password is None else passwords.hash_password(password)
        user_id, now = new_id(), now_iso()
        with self._tx() as db:
            if self._one("SELECT 1 FROM users WHERE username = ?", (username,)):
                raise InvalidInput(f"username {username!r} is already taken")
            db.execute(
                "INSERT INTO users (id, username, email, name, firstname, password_hash, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (user_id, username, email or "", name or "", firstname or "", password_hash, now),
            )
            key = self._insert_key(user_id)
        return self.get_user(user_id), key

    def _insert_key(self, user_id: str) -> str:
        key = secrets.token_urlsafe(32)
        self._db.execute(
            "INSERT INTO api_keys (key_hash, user_id, created_at) VALUES (?, ?, ?)", (_hash_key(key), user_id, now_iso())
        )
        return key

    def get_user(self, user_id: str) -> dict[str, str]:
        row = self._one("SELECT id, username, email, name, firstname FROM users WHERE id = ?", (user_id,))
        if row is None:
            raise NotFound(f"unknown user {user_id!r}")
        return dict(zip(("id", "username", "email", "name", "firstname"), row))

    def user_for_key(self, key: str) -> str | None:
        """The id of the user an API key belongs to, or None."""
        row = self._one("SELECT user_id FROM api_keys WHERE key_hash = ?", (_hash_key(key),))
        return row[0] if row else None

    def login(self, username: str, password: str) -> tuple[dict[str, str], str] | None:
        """A new key for a user whose password matches; None otherwise.

        An empty password never matches, and a key-only user has no password
        to match, also in stores whose older rows hold the hash of "".
        """
        if not password:
            return None
        row = self._one("SELECT id, password_hash FROM users WHERE username = ?", (username,))
        if row is None:
            return None
        matches, rehash = passwords.verify(password, row[1])
        if not matches:
            return None
        with self._tx() as db:
            if rehash:  # an earlier release's scrypt hash, or weaker Argon2 parameters than today's
                db.execute(
                    "UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?",
                    (passwords.hash_password(password), row[0], row[1]),
                )
            key = self._insert_key(row[0])
        return self.get_user(row[0]), key

    def _user_id(self, username: str) -> str:
        row = self._one("SELECT id FROM users WHERE username = ?", (username,))
        if row is None:
            known = [r[0] for r in self._all("SELECT username FROM users ORDER BY username")]
            raise NotFound(f"unknown user {username!r}; users: {choices_hint(known) if known else 'none yet'}")
        return row[0]

    def list_users(self) -> list[dict[str, Any]]:
        """Every user with its number of live keys and whether it can log in by password (admin use)."""
        rows = self._all(
            "SELECT u.id, u.username, u.email, u.password_hash, u.created_at,"
            " (SELECT count(*) FROM api_keys k WHERE k.user_id = u.id)"
            " FROM users u ORDER BY u.username"
        )
        return [
            {
                "id": r[0],
                "username": r[1],
                "email": r[2],
                "password": passwords.usable(r[3]),
                "keys": r[5],
                "created_at": r[4],
            }
            for r in rows
        ]

    def issue_key(self, username: str) -> str:
        """A new API key for ``username`` (the only way in for a key-only user); earlier keys stay valid."""
        user_id = self._user_id(username)
        with self._tx():
            return self._insert_key(user_id)

    def revoke_key(self, key: str) -> bool:
        """Revoke one key; False if no user has it."""
        with self._tx() as db:
            return db.execute("DELETE FROM api_keys WHERE key_hash = ?", (_hash_key(key),)).rowcount > 0

    def revoke_keys_of(self, username: str) -> int:
        """Revoke every key of ``username``; how many there were."""
        user_id = self._user_id(username)
        with self._tx() as db:
            return db.execute("DELETE FROM api_keys WHERE user_id = ?", (user_id,)).rowcount

    def give_datasets(self, username: str, dataset_ids: list[str] | None = None) -> list[str]:
        """Make ``username`` the owner of ``dataset_ids`` (None: every dataset that has no owner yet).

        Datasets made outside the HTTP API (``dsexport demo``, a bulk load) have
        no owner, and the API serves a dataset only to its owner. Returns the ids given.
        """
        user_id = self._user_id(username)
        with self._tx() as db:
            if dataset_ids is None:
                dataset_ids = [r[0] for r in self._all("SELECT id FROM datasets WHERE coalesce(user_id, '') = ''")]
            for dataset_id in dataset_ids:
                if self._one("SELECT 1 FROM datasets WHERE id = ?", (dataset_id,)) is None:
                    raise NotFound(f"unknown dataset {dataset_id!r}")
                db.execute("UPDATE datasets SET user_id = ? WHERE id = ?", (user_id, dataset_id))
        return dataset_ids

    def owner_of(self, dataset_id: str) -> str | None:
        row = self._one("SELECT coalesce(user_id, '') FROM datasets WHERE id = ?", (dataset_id,))
        return None if row is None else row[0]

    def dataset_ids_of(self, user_id: str) -> list[str]:
        return [r[0] for r in self._all("SELECT id FROM datasets WHERE user_id = ? ORDER BY created_at, id", (user_id,))]

def _hash_key(key: str) -> str:
    """API keys are 256 random bits: one SHA-256 is enough to store them safely."""
    return hashlib.sha256(key.encode()).hexdigest()
