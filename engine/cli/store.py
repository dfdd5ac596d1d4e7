"""``dsexport store ...``: maintenance of a store as a whole (not of one dataset).

``measure-images`` fills in the image sizes stores made before sizes were
recorded at ingest (COCO exports need them for absolute boxes).
"""

from __future__ import annotations

import typer

from engine.cli.common import BlobsOption, StoreOption, err, open_store, user_errors

__all__ = ["measure_images", "store_app"]

store_app = typer.Typer(help="Maintain a store: measure image sizes, ...", no_args_is_help=True)

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
