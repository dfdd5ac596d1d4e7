"""Password hashes of the SQLite back end: Argon2id now, scrypt hashes of earlier releases re-hashed on login."""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from engine.errors import InvalidInput
from engine.store import DB_NAME, Store, passwords


def _hash_of(root: Path, username: str) -> str:
    with closing(sqlite3.connect(root / DB_NAME)) as db:
        return db.execute("SELECT password_hash FROM users WHERE username = ?", (username,)).fetchone()[0]


def _set_hash(root: Path, username: str, stored: str) -> None:
    with closing(sqlite3.connect(root / DB_NAME)) as db, db:
        db.execute("UPDATE users SET password_hash = ? WHERE username = ?", (stored, username))


def _scrypt(password: str) -> str:
    """A hash as earlier releases stored it."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


@pytest.fixture()
def store(tmp_path: Path):
    with Store.open(tmp_path) as opened:
        yield opened


def test_new_passwords_are_argon2id_with_their_parameters_in_the_hash(store: Store):
    store.create_user("ada", "secret")
    stored = _hash_of(store.root, "ada")
    assert stored.startswith("$argon2id$v=19$m=") and ",t=" in stored and ",p=" in stored
    assert "secret" not in stored
    assert store.login("ada", "secret") is not None
    assert _hash_of(store.root, "ada") == stored  # today's parameters: nothing to re-hash


def test_a_scrypt_hash_still_logs_in_and_is_rehashed_on_that_login(store: Store):
    store.create_user("ada", "first")
    _set_hash(store.root, "ada", old := _scrypt("secret"))
    assert store.login("ada", "wrong") is None
    assert _hash_of(store.root, "ada") == old  # a failed login changes nothing
    logged = store.login("ada", "secret")
    assert logged is not None and store.user_for_key(logged[1]) == logged[0]["id"]
    new = _hash_of(store.root, "ada")
    assert new.startswith("$argon2id$")
    assert store.login("ada", "secret") is not None and _hash_of(store.root, "ada") == new
    assert store.login("ada", "wrong") is None


def test_an_argon2_hash_with_weaker_parameters_is_rehashed_on_login(store: Store):
    store.create_user("ada", "first")
    _set_hash(store.root, "ada", weak := PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("pw"))
    assert store.login("ada", "pw") is not None
    assert _hash_of(store.root, "ada") not in (weak, "") and passwords.verify("pw", _hash_of(store.root, "ada")) == (True, False)


def test_key_only_users_never_log_in_and_empty_passwords_are_refused(store: Store):
    store.create_user("bot")
    assert _hash_of(store.root, "bot") == ""
    assert store.login("bot", "") is None and store.login("bot", "x") is None
    _set_hash(store.root, "bot", _scrypt(""))  # how older releases stored some key-only users
    assert store.login("bot", "") is None
    for blank in ("", "  "):
        with pytest.raises(InvalidInput, match="must not be empty"):
            store.create_user(f"u{len(blank)}", blank)
    store.create_user("ada", "pw")
    assert store.login("ada", "") is None
    assert {u["username"]: u["password"] for u in store.list_users()} == {"ada": True, "bot": False}


def test_verify_and_usable():
    assert passwords.verify("pw", passwords.hash_password("pw")) == (True, False)
    assert passwords.verify("", passwords.hash_password("pw")) == (False, False)
    assert passwords.verify("pw", "") == (False, False)
    assert passwords.verify("pw", "garbage") == (False, False)
    assert passwords.verify("pw", "scrypt$zz$00") == (False, True)
    assert passwords.usable(passwords.hash_password("pw")) and passwords.usable(_scrypt("pw"))
    assert not passwords.usable("") and not passwords.usable(_scrypt("")) and not passwords.usable(passwords.hash_password(""))
