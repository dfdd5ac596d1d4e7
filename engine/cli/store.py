"""``dsexport store ...``: whole-store maintenance (compacting packs, copying between back ends)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from engine.cli.common import (
    BlobsOption, JsonOption, StoreOption, err, open_store, store_address, user_errors, write_json,
)
from engine.errors import InvalidInput

__all__ = ["store_app"]

store_app = typer.Typer(help="Maintain a whole store: compact its packs, copy it to another back end.", no_args_is_help=True)

@store_app.command("compact")
def compact_command(
    store: StoreOption = None,  # type: ignore[assignment]
    blobs: BlobsOption = None,
    grace: Annotated[
        float,
        typer.Option(min=0, help="Seconds a pack no longer used stays readable for exports begun before (default: a day)."),
    ] = 24 * 3600.0,
    json: JsonOption = False,
) -> None:
    """Rewrite packs of small blobs to reclaim deleted content and merge small packs; safe while exports run."""
    from engine.store.api import PackedBlobs
    from engine.store.compact import compact

    with user_errors(), open_store(store, blobs, create=False) as opened:
        files = opened.blobs.files
        if not isinstance(files, PackedBlobs):
            raise InvalidInput(
                "this store keeps its small blobs inline, not in packs: nothing to compact"
                " (packs are used with --blobs s3://BUCKET/PREFIX)"
            )
        report = compact(opened, files, grace=grace)
    if json:
        write_json(report)
        return
    err.print(
        f"rewrote {len(report.rewritten)} pack(s) into {len(report.written)} ({report.moved_bytes:,} bytes moved);"
        f" deleted {len(report.deleted)} unused pack(s); {report.kept_for_grace} kept for the grace period",
        highlight=False,
    )


@store_app.command("copy")
def copy_command(
    to: Annotated[str, typer.Option("--to", metavar="DIR|URL", help="The target store (created if absent).")],
    store: StoreOption = None,  # type: ignore[assignment]
    blobs: BlobsOption = None,
    to_blobs: Annotated[
        Optional[str],
        typer.Option("--to-blobs", metavar="DIR|URL", help="Where the target's content goes.", show_default="the target's own blobs/"),
    ] = None,
    json: JsonOption = False,
) -> None:
    """Copy a whole store (ids, users, keys, owners and content) to another back end, verifying every blob.

    Run it again after an interruption: it resumes, skipping what the target has.
    """
    from engine.store.address import StoreAddress
    from engine.store.copy import copy_store

    source = store_address(store, blobs)
    target = StoreAddress(to, to_blobs)
    with user_errors("the target keeps what was copied; run the copy again to resume"):
        if (source.metadata, source.blobs) == (target.metadata, target.blobs):
            raise InvalidInput(f"--to names the source store itself ({source.display()})")
        with source.reader() as reader, target.open(create=True) as opened:
            report = copy_store(reader, opened)
    if json:
        write_json(report)
        return
    err.print(
        f"copied {report.records:,} records and {report.blobs:,} blobs ({report.blob_bytes:,} bytes,"
        f" {report.blobs_already_there:,} already there) from {source.display()} to {target.display()}",
        highlight=False,
    )
