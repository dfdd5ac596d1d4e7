"""``dsexport user ...``: the users of the HTTP API, their API keys and the datasets they own."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer
from rich.table import Column, Table

from engine.cli.common import BlobsOption, JsonOption, StoreOption, err, open_store, out_console, user_errors, write_json
from engine.errors import InvalidInput, NotFound

__all__ = ["user_app"]

user_app = typer.Typer(help="Manage the users of the HTTP API.", no_args_is_help=True)
key_app = typer.Typer(help="Issue or revoke a user's API keys.", no_args_is_help=True)
user_app.add_typer(key_app, name="key")


@user_app.command("create")
def user_create(
    name: Annotated[str, typer.Argument(help="Username.")],
    store: StoreOption = None,
    blobs: BlobsOption = None,
    password: Annotated[
        Optional[str],
        typer.Option(help="Password for POST /login.", show_default="none: the user can only use API keys"),
    ] = None,
) -> None:
    """Create a user and print a new API key (only its hash is stored)."""
    with user_errors(), open_store(store, blobs, create=False) as opened:
        _, key = opened.create_user(name, password)
    sys.stdout.write(key + "\n")


@user_app.command("list")
def user_list(store: StoreOption = None, blobs: BlobsOption = None, json: JsonOption = False) -> None:
    """List the users, whether each can log in by password, and how many live API keys each has."""
    with user_errors(), open_store(store, blobs, create=False) as opened:
        users = opened.list_users()
    if json:
        write_json(users)
        return
    # Fits 80 columns with the id whole; --json also has each user's email and creation time.
    table = Table("user", Column("user id", no_wrap=True, min_width=36), "password", "keys")
    for u in users:
        table.add_row(u["username"], u["id"], "yes" if u["password"] else "no (key only)", str(u["keys"]))
    out_console().print(table)


@key_app.command("issue")
def key_issue(
    name: Annotated[str, typer.Argument(help="Username.")],
    store: StoreOption = None,
    blobs: BlobsOption = None,
) -> None:
    """Print a new API key for a user (its earlier keys stay valid)."""
    with user_errors(), open_store(store, blobs, create=False) as opened:
        key = opened.issue_key(name)
    sys.stdout.write(key + "\n")


@key_app.command("revoke")
def key_revoke(
    key: Annotated[Optional[str], typer.Argument(help="The API key to revoke.", show_default=False)] = None,
    user: Annotated[Optional[str], typer.Option("--user", help="Revoke every key of this user instead.")] = None,
    store: StoreOption = None,
    blobs: BlobsOption = None,
) -> None:
    """Revoke one API key, or with --user every key of a user; requests with a revoked key get 401."""
    with user_errors():
        if (key is None) == (user is None):
            raise InvalidInput("revoke needs exactly one of: KEY, or --user NAME (every key of that user)")
        with open_store(store, blobs, create=False) as opened:
            if user is not None:
                count = opened.revoke_keys_of(user)
                err.print(f"revoked {count} key(s) of {user}", highlight=False)
            elif opened.revoke_key(key or ""):
                err.print("revoked 1 key", highlight=False)
            else:
                raise NotFound("no user has that API key (already revoked?); `dsexport user list` shows the users")


@user_app.command("give")
def user_give(
    name: Annotated[str, typer.Argument(help="Username.")],
    dataset_ids: Annotated[
        Optional[list[str]],
        typer.Argument(help="Dataset ids.", show_default="every dataset with no owner"),
    ] = None,
    store: StoreOption = None,
    blobs: BlobsOption = None,
) -> None:
    """Make a user the owner of datasets made outside the API (e.g. by `dsexport demo`), so the API serves them."""
    with user_errors(), open_store(store, blobs, create=False) as opened:
        given = opened.give_datasets(name, dataset_ids or None)
    err.print(f"{name} now owns {len(given)} dataset(s)", highlight=False)
