"""Users, passwords and API keys: the CLI, the store and the HTTP API with the real SDK.

A key-only user (``dsexport user create`` without ``--password``) must never
log in by password, an empty password is never a password, and stores made
before that rule (key-only users stored with the hash of "") are safe too.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
from pathlib import Path

import pytest
import requests
from cli_run import dsexport
from servers import Server

from engine.store import DB_NAME

pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

#: Login bodies with no usable password: missing, null, empty, blanks.
NO_PASSWORD = [{}, {"password": None}, {"password": ""}, {"password": "   "}]


def _cli(*args: str) -> str:
    done = dsexport(*args)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


def _legacy_key_only_user(store: Path, username: str) -> None:
    """A user row as older releases wrote a key-only user: the scrypt hash of the empty password."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(b"", salt=salt, n=2**14, r=8, p=1)
    with sqlite3.connect(store / DB_NAME) as db:
        db.execute(
            "INSERT INTO users (id, username, email, name, firstname, password_hash, created_at)"
            " VALUES (?, ?, '', '', '', ?, '2025-01-01T00:00:00.000Z')",
            (f"legacy-{username}", username, f"scrypt${salt.hex()}${digest.hex()}"),
        )
    db.close()


def _keys(store: Path) -> dict[str, int]:
    """Username -> live API keys, read from the store's tables."""
    with sqlite3.connect(store / DB_NAME) as db:
        rows = db.execute(
            "SELECT u.username, (SELECT count(*) FROM api_keys k WHERE k.user_id = u.id) FROM users u"
        ).fetchall()
    db.close()
    return dict(rows)


@pytest.fixture(scope="module")
def accounts(tmp_path_factory):
    """A served store with a key-only user (bob), a legacy key-only user (old) and alice with a password."""
    store = tmp_path_factory.mktemp("accounts") / "store"
    _cli("init", "--store", str(store))
    keys = {
        "bob": _cli("user", "create", "--store", str(store), "bob").strip(),
        "alice": _cli("user", "create", "--store", str(store), "alice", "--password", "s3cret").strip(),
    }
    _legacy_key_only_user(store, "old")
    srv = Server(store)
    srv.keys = keys
    yield srv
    srv.stop()


def _login(srv: Server, body: dict) -> requests.Response:
    return requests.post(srv.base + "login", data=json.dumps(body), timeout=10)


@pytest.mark.parametrize("body", NO_PASSWORD, ids=["missing", "null", "empty", "blank"])
@pytest.mark.parametrize("username", ["bob", "old", "alice"])
def test_no_password_never_logs_in(accounts, username, body):
    keys_before = _keys(accounts.store)[username]
    r = _login(accounts, {"username": username, **body})
    assert r.status_code == 400, r.text
    assert "apikey" not in r.json() and "'password'" in r.json()["message"]
    assert _keys(accounts.store)[username] == keys_before


@pytest.mark.parametrize("username", ["bob", "old"])
def test_a_key_only_user_cannot_log_in_by_password_at_all(accounts, username):
    for password in ["x", "pw", " "]:
        r = _login(accounts, {"username": username, "password": password})
        assert r.status_code in (400, 401) and "apikey" not in r.json()


@pytest.mark.parametrize("password", ["", "   "], ids=["empty", "blank"])
@pytest.mark.parametrize("username", ["bob", "old"])
def test_the_sdk_login_refuses_an_empty_password(accounts, username, password):
    from seeme import Client

    client = Client(backend=accounts.base, env_file="/nonexistent/.env")
    with pytest.raises(requests.HTTPError) as refused:
        client.login(username, password)
    assert refused.value.response.status_code == 400
    assert client.apikey is None


def test_a_password_user_still_logs_in_through_the_sdk(accounts):
    from seeme import Client

    client = Client(backend=accounts.base, env_file="/nonexistent/.env")
    client.login("alice", "s3cret")
    assert client.apikey and client.get_datasets() == []


@pytest.mark.parametrize("password", [None, "", "  "], ids=["missing", "empty", "blank"])
def test_register_refuses_an_empty_password_naming_the_field(accounts, password):
    body = {"username": f"new-{password!r}", "email": "n@example.org", "name": "N", "firstname": "N"}
    if password is not None:
        body["password"] = password
    r = requests.post(accounts.base + "register", data=json.dumps(body), timeout=10)
    assert r.status_code == 400 and "'password'" in r.json()["message"]
    assert body["username"] not in _keys(accounts.store)


def test_the_sdk_register_refuses_an_empty_password(accounts):
    from seeme import Client

    client = Client(backend=accounts.base, env_file="/nonexistent/.env")
    with pytest.raises(ValueError, match="'password'"):
        client.register(username="carla", email="c@example.org", password="", firstname="C", name="C")
    assert "carla" not in _keys(accounts.store)


@pytest.mark.parametrize("password", ["", "  "], ids=["empty", "blank"])
def test_user_create_refuses_an_empty_password(tmp_path, password):
    store = tmp_path / "store"
    _cli("init", "--store", str(store))
    done = dsexport("user", "create", "--store", str(store), "eve", "--password", password)
    assert done.returncode == 2 and b"Traceback" not in done.stderr
    assert "password must not be empty" in done.stderr.decode() and not done.stdout
    assert "eve" not in _keys(store)


def test_a_key_only_user_gets_and_loses_keys_through_the_cli(accounts):
    store = str(accounts.store)
    datasets = accounts.base + "datasets"
    old_key = _cli("user", "key", "issue", "--store", store, "old").strip()
    assert requests.get(datasets, headers={"Authorization": f"Bearer {old_key}"}, timeout=10).status_code == 200

    key = _cli("user", "key", "issue", "--store", store, "bob").strip()
    assert key != accounts.keys["bob"] and _keys(accounts.store)["bob"] == 2
    for k in (key, accounts.keys["bob"]):
        assert requests.get(datasets, headers={"Authorization": f"Bearer {k}"}, timeout=10).status_code == 200

    done = dsexport("user", "key", "revoke", "--store", store, key)
    assert done.returncode == 0 and "revoked 1 key" in done.stderr.decode()
    assert requests.get(datasets, headers={"Authorization": f"Bearer {key}"}, timeout=10).status_code == 401
    assert requests.get(datasets, headers={"Authorization": f"Bearer {accounts.keys['bob']}"}, timeout=10).status_code == 200

    done = dsexport("user", "key", "revoke", "--store", store, "--user", "bob")
    assert done.returncode == 0 and "revoked 1 key(s) of bob" in done.stderr.decode()
    assert requests.get(datasets, headers={"Authorization": f"Bearer {accounts.keys['bob']}"}, timeout=10).status_code == 401
    assert _keys(accounts.store)["bob"] == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["user", "key", "issue", "nobody"], "unknown user 'nobody'; users: alice, bob, old"),
        (["user", "key", "revoke", "--user", "nobody"], "unknown user 'nobody'"),
        (["user", "key", "revoke", "not-a-key"], "no user has that API key"),
        (["user", "key", "revoke"], "exactly one of: KEY, or --user NAME"),
        (["user", "key", "revoke", "k", "--user", "bob"], "exactly one of: KEY, or --user NAME"),
    ],
    ids=["issue-unknown-user", "revoke-unknown-user", "revoke-unknown-key", "revoke-nothing", "revoke-both"],
)
def test_key_commands_name_what_is_wrong(accounts, args, message):
    before = _keys(accounts.store)
    done = dsexport(*args, "--store", str(accounts.store))
    assert done.returncode == 2 and b"Traceback" not in done.stderr
    assert message in done.stderr.decode()
    assert _keys(accounts.store) == before


def test_user_list_says_who_can_log_in_by_password(accounts):
    listed = json.loads(_cli("user", "list", "--store", str(accounts.store), "--json"))
    assert {u["username"]: u["password"] for u in listed} == {"alice": True, "bob": False, "old": False}
    assert all(u["keys"] >= 0 and u["id"] for u in listed)
    out = _cli("user", "list", "--store", str(accounts.store))
    rows = {line.split()[1]: line for line in out.splitlines() if line.startswith("│")}
    assert "no (key only)" in rows["bob"] and "no (key only)" in rows["old"] and "yes" in rows["alice"]
