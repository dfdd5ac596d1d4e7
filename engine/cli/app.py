"""The ``dsexport`` application: every command registered in one place, in ``--help``'s order."""

from __future__ import annotations

import typer

from engine.cli.datasets import datasets, demo, init
from engine.cli.download import download
from engine.cli.export import NamesMissingValues, export, export_all
from engine.cli.imports import import_
from engine.cli.serve import serve
from engine.cli.store import store_app
from engine.cli.signals import install_stop_handlers
from engine.cli.users import user_app

__all__ = ["app", "main"]

app = typer.Typer(
    name="dsexport",
    help="Stream labelled datasets into ZIP archives (FOLDERS, YOLO, CSV, SPACY_NER, Ultralytics, COCO) in bounded memory.",
    no_args_is_help=True,
    add_completion=False,
)
app.command()(demo)
app.command()(init)
app.command()(datasets)
app.command(cls=NamesMissingValues)(export)
app.command()(download)
app.command("export-all")(export_all)
app.command()(serve)
app.add_typer(user_app, name="user")
app.command("import")(import_)
app.add_typer(store_app, name="store")


def main() -> None:
    """Console-script entry point; SIGTERM and SIGHUP stop it as Ctrl-C does (unless ignored, as under nohup)."""
    install_stop_handlers()
    app()
