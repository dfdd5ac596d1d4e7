"""``dsexport serve``, ``dsexport user ...`` and ``dsexport import``, registered on ``engine.cli.app``."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import msgspec
import typer
from rich.table import Column, Table

from engine.cli import JsonOption, StoreOption, _default_store, _out, _user_errors, app, err
from engine.errors import InvalidInput, NotFound
from engine.store import Store

__all__ = ["user_app"]


class WorkerChoice(str, Enum):
    trio = "trio"
    uvloop = "uvloop"


class ImportFormat(str, Enum):
    folders = "folders"
    yolo = "yolo"
    csv = "csv"
    spacy_ner = "spacy-ner"


@app.command()
def serve(
    store: StoreOption = None,  # type: ignore[assignment]
    bind: Annotated[str, typer.Option(help="HOST:PORT to listen on.")] = "127.0.0.1:8000",
    worker: Annotated[WorkerChoice, typer.Option(help="Hypercorn worker: trio, or asyncio on uvloop.")] = WorkerChoice.trio,
) -> None:
    """Serve the SeeMe-compatible HTTP API (base URL http://BIND/api/v1/) until Ctrl-C or SIGTERM.

    An upload may inflate to at most $DSEXPORT_IMPORT_MAX_BYTES (default 64G).

    Import limits (see the README): $DSEXPORT_IMPORT_MAX_UPLOAD, $DSEXPORT_IMPORT_MAX_TEXT, $DSEXPORT_IMPORT_MAX_ENTRIES, $DSEXPORT_IMPORT_MAX_DOCUMENT.
    """
    from engine.server.serve import serve as run

    root = store or _default_store()
    with _user_errors():
        Store.open(root, create=False).close()  # refuse a mistyped --store rather than serve a new, empty one
        run(root, bind, worker.value)


user_app = typer.Typer(help="Manage the users of the HTTP API.", no_args_is_help=True)
app.add_typer(user_app, name="user")


@user_app.command("create")
def user_create(
    name: Annotated[str, typer.Argument(help="Username.")],
    store: StoreOption = None,  # type: ignore[assignment]
    password: Annotated[
        Optional[str], typer.Option(help="Password for POST /login [default: none: the user can only use API keys].")
    ] = None,
) -> None:
    """Create a user and print a new API key (only its hash is stored)."""
    with _user_errors(), Store.open(store or _default_store(), create=False) as opened:
        _, key = opened.create_user(name, password)
    sys.stdout.write(key + "\n")


@user_app.command("list")
def user_list(store: StoreOption = None, json: JsonOption = False) -> None:  # type: ignore[assignment]
    """List the users, whether each can log in by password, and how many live API keys each has."""
    with _user_errors(), Store.open(store or _default_store(), create=False) as opened:
        users = opened.list_users()
    if json:
        sys.stdout.buffer.write(msgspec.json.encode(users) + b"\n")
        return
    # Fits 80 columns with the id whole; --json also has each user's email and creation time.
    table = Table("user", Column("user id", no_wrap=True, min_width=36), "password", "keys")
    for u in users:
        table.add_row(u["username"], u["id"], "yes" if u["password"] else "no (key only)", str(u["keys"]))
    _out().print(table)


key_app = typer.Typer(help="Issue or revoke a user's API keys.", no_args_is_help=True)
user_app.add_typer(key_app, name="key")


@key_app.command("issue")
def key_issue(
    name: Annotated[str, typer.Argument(help="Username.")],
    store: StoreOption = None,  # type: ignore[assignment]
) -> None:
    """Print a new API key for a user (its earlier keys stay valid)."""
    with _user_errors(), Store.open(store or _default_store(), create=False) as opened:
        key = opened.issue_key(name)
    sys.stdout.write(key + "\n")


@key_app.command("revoke")
def key_revoke(
    key: Annotated[Optional[str], typer.Argument(help="The API key to revoke.", show_default=False)] = None,
    user: Annotated[Optional[str], typer.Option("--user", help="Revoke every key of this user instead.")] = None,
    store: StoreOption = None,  # type: ignore[assignment]
) -> None:
    """Revoke one API key, or with --user every key of a user; requests with a revoked key get 401."""
    with _user_errors():
        if (key is None) == (user is None):
            raise InvalidInput("revoke needs exactly one of: KEY, or --user NAME (every key of that user)")
        with Store.open(store or _default_store(), create=False) as opened:
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
    dataset_ids: Annotated[Optional[list[str]], typer.Argument(help="Dataset ids [default: every dataset with no owner].")] = None,
    store: StoreOption = None,  # type: ignore[assignment]
) -> None:
    """Make a user the owner of datasets made outside the API (e.g. by `dsexport demo`), so the API serves them."""
    with _user_errors(), Store.open(store or _default_store(), create=False) as opened:
        given = opened.give_datasets(name, dataset_ids or None)
    err.print(f"{name} now owns {len(given)} dataset(s)", highlight=False)


@app.command("import")
def import_(
    dataset_id: Annotated[str, typer.Argument(help="Dataset id.")],
    version_id: Annotated[str, typer.Argument(help="Version id.")],
    file: Annotated[Path, typer.Argument(help="The ZIP archive to import.")],
    format: Annotated[ImportFormat, typer.Option("--format", "-f", help="The archive's format.")],
    store: StoreOption = None,  # type: ignore[assignment]
) -> None:
    """Import an exported ZIP into a version: all of it, or nothing (exit 2 with the reason).

    The archive may inflate to at most $DSEXPORT_IMPORT_MAX_BYTES (default 64G).

    Limits: $DSEXPORT_IMPORT_MAX_TEXT (a text, default 16M), $DSEXPORT_IMPORT_MAX_ENTRIES (default 1000000), $DSEXPORT_IMPORT_MAX_DOCUMENT (config.json, default 64M).
    """
    from engine.server.ingest import import_archive

    with _user_errors(), Store.open(store or _default_store(), create=False) as opened:
        opened.get_version(dataset_id, version_id)
        counts = import_archive(opened, version_id, file, format.value)
    err.print(
        f"imported {counts.items} items, {counts.labels} new labels, {counts.splits} new splits, "
        f"{counts.annotations} annotations into version {version_id}",
        highlight=False,
    )
