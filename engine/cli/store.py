"""``dsexport store ...``: whole-store maintenance (compacting packs, copying between back ends)."""

from __future__ import annotations

from typing import Annotated

import typer

from engine.cli.common import BlobsOption, JsonOption, StoreOption, err, open_store, user_errors, write_json
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
