"""``dsexport import``: an exported ZIP into a version, all of it or nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from engine.cli.common import BlobsOption, FormatChoice, StoreOption, err, open_store, user_errors

__all__ = ["import_"]


def import_(
    dataset_id: Annotated[str, typer.Argument(help="Dataset id.")],
    version_id: Annotated[str, typer.Argument(help="Version id.")],
    file: Annotated[Path, typer.Argument(help="The ZIP archive to import.")],
    format: Annotated[FormatChoice, typer.Option("--format", "-f", help="The archive's format.")],
    store: StoreOption = None,
    blobs: BlobsOption = None,
) -> None:
    """Import an exported ZIP into a version: all of it, or nothing (exit 2 with the reason).

    The archive may inflate to at most $DSEXPORT_IMPORT_MAX_BYTES (default 64G).

    Limits: $DSEXPORT_IMPORT_MAX_TEXT (a text, default 16M), $DSEXPORT_IMPORT_MAX_ENTRIES (default 1000000), $DSEXPORT_IMPORT_MAX_DOCUMENT (config.json, default 64M).
    """
    from engine.importer import import_archive

    with user_errors(), open_store(store, blobs, create=False) as opened:
        opened.get_version(dataset_id, version_id)
        counts = import_archive(opened, version_id, file, format.value)
    err.print(
        f"imported {counts.items} items, {counts.labels} new labels, {counts.splits} new splits, "
        f"{counts.annotations} annotations into version {version_id}",
        highlight=False,
    )
