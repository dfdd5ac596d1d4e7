"""``dsexport download``: a version's export from a server, verified, extracted, resumed after an interruption."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from engine.cli.common import (
    ApiKeyOption,
    FormatChoice,
    JsonOption,
    ProgressOption,
    TimeoutOption,
    err,
    report_retries,
    user_errors,
    write_json,
)
from engine.client.api import DEFAULT_TIMEOUT, credentials

__all__ = ["download"]


def download(
    dataset_id: Annotated[str, typer.Argument(help="Dataset id.")],
    version_id: Annotated[str, typer.Argument(help="Version id.")],
    backend_url: Annotated[
        Optional[str],
        typer.Option("--backend", help="API base, e.g. http://host:8000/api/v1/.", show_default="$DSEXPORT_BACKEND"),
    ] = None,
    apikey: ApiKeyOption = None,
    split: Annotated[str, typer.Option(help="Only this split (id).")] = "",
    format: Annotated[
        Optional[FormatChoice],
        typer.Option("--format", "-f", help="Export format.", show_default="the server's, by content type"),
    ] = None,
    extract_to: Annotated[Path, typer.Option("--extract-to", help="Folder to extract into.")] = Path("data"),
    download_file: Annotated[Path, typer.Option(help="Where the archive is downloaded (and resumed from).")] = Path("dataset.zip"),
    keep_zip: Annotated[bool, typer.Option("--keep-zip", help="Keep the archive after extracting it.")] = False,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    progress: ProgressOption = None,
    json: JsonOption = False,
) -> None:
    """Download a version's export from a server, verify it and extract it (resumes an interrupted download)."""
    from engine.client import Client

    show = progress if progress is not None else err.is_terminal
    report_retries()
    with user_errors("run the same command again to resume the download"):
        url, key = credentials(backend_url, apikey)
        result = Client(url, key, timeout=timeout).download_dataset(
            dataset_id,
            version_id,
            split_id=split,
            extract_to_dir=str(extract_to),
            download_file=str(download_file),
            remove_download_file=not keep_zip,
            export_format=format.value if format else "",
            progress=show,
        )
    if json:
        write_json(result)
        return
    resumed = f", resumed from byte {result.resumed_from:,}" if result.resumed_from else ""
    kept = f"; archive kept at {result.archive}" if result.archive else ""
    err.print(
        f"extracted {result.entries} entries ({result.format or 'server default'}, {result.bytes:,} bytes"
        f"{resumed}) into {result.folder}{kept}",
        highlight=False,
    )
