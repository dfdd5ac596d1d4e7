"""``dsexport serve``: the SeeMe-compatible HTTP API over a store, on Hypercorn."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from engine.cli.common import BlobsOption, StoreOption, store_address, user_errors

__all__ = ["serve"]


class WorkerChoice(str, Enum):
    trio = "trio"
    uvloop = "uvloop"


def serve(
    store: StoreOption = None,
    blobs: BlobsOption = None,
    bind: Annotated[str, typer.Option(help="HOST:PORT to listen on.")] = "127.0.0.1:8000",
    worker: Annotated[WorkerChoice, typer.Option(help="Hypercorn worker: trio, or asyncio on uvloop.")] = WorkerChoice.trio,
) -> None:
    """Serve the SeeMe-compatible HTTP API (base URL http://BIND/api/v1/) until Ctrl-C or SIGTERM.

    An upload may inflate to at most $DSEXPORT_IMPORT_MAX_BYTES (default 64G).

    Import limits (see the README): $DSEXPORT_IMPORT_MAX_UPLOAD, $DSEXPORT_IMPORT_MAX_TEXT, $DSEXPORT_IMPORT_MAX_ENTRIES, $DSEXPORT_IMPORT_MAX_DOCUMENT.
    """
    from engine.server.serve import serve as run  # Starlette and Hypercorn load only when serving

    address = store_address(store, blobs)
    with user_errors():
        address.open(create=False).close()  # refuse a mistyped --store rather than serve a new, empty one
        run(address, bind, worker.value)
