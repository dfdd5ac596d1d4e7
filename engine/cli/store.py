"""``dsexport store ...``: maintenance of a store as a whole (not of one dataset).

``measure-images`` fills in the image sizes of stores made before sizes were
recorded at ingest (COCO exports need them for absolute boxes); ``compact``
rewrites packs of small blobs; ``copy`` copies a whole store to another back end.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from engine.cli.common import (
    BlobsOption, JsonOption, StoreOption, err, open_store, store_address, user_errors, write_json,
)
from engine.errors import InvalidInput

__all__ = ["store_app"]

store_app = typer.Typer(
    help="Maintain a whole store: measure image sizes, compact its packs, copy it to another back end.",
    no_args_is_help=True,
)

#: Items read and recorded per round: bounded memory whatever the store's size.
_PAGE = 500


@store_app.command("measure-images")
def measure_images(store: StoreOption = None, blobs: BlobsOption = None) -> None:
    """Record width and height of every image item that has none yet (headers only, no decoding).

    Safe to run again and to stop: it resumes with the items still unmeasured.
    Content Pillow cannot read as an image stays without a size; the summary counts it.
    """
    from engine.errors import MissingBlob
    from engine.images import blob_size

    measured = unreadable = 0
    with user_errors("sizes recorded so far are kept"), open_store(store, blobs, create=False) as opened:
        after = ""
        while page := opened.unmeasured_images(after, _PAGE):
            sizes = []
            for item_id, extension, content in page:
                try:
                    if isinstance(content, bytes):
                        size = blob_size(iter((content,)), len(content), extension)
                    else:
                        size = blob_size(content.chunks(), content.size, extension)
                except MissingBlob:
                    size = None
                if size is None:
                    unreadable += 1
                else:
                    sizes.append((item_id, *size))
            opened.set_image_sizes(sizes)
            measured += len(sizes)
            after = page[-1][0]
    err.print(f"measured {measured} images; {unreadable} items hold no readable image (or their content is missing)", highlight=False)


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
