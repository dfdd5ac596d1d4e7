"""``dsexport store ...``: whole-store maintenance (compacting packs, copying between back ends)."""

from __future__ import annotations

import os
from typing import Annotated, Optional

import typer

from engine.cli.common import JsonOption, StoreOption, default_store, err, user_errors, write_json
from engine.errors import InvalidInput

__all__ = ["store_app"]

store_app = typer.Typer(help="Maintain a whole store: compact its packs, copy it to another back end.", no_args_is_help=True)

BlobsOption = Annotated[
    Optional[str],
    typer.Option(
        "--blobs", help="Where the store's content lives: a folder or s3://BUCKET/PREFIX.",
        show_default="$DSEXPORT_BLOBS, else the store folder's blobs/",
    ),
]


def _open(store: object, blobs: str | None, *, create: bool):  # noqa: ANN202 - replaced by common.open_store's address
    from engine.store.registry import open_store

    return open_store(store or default_store(), create=create, blobs=blobs or os.environ.get("DSEXPORT_BLOBS") or None)


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

    with user_errors(), _open(store, blobs, create=False) as opened:
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
