"""What every ``dsexport`` command shares: its options, its consoles and how a failure ends.

Every failure the product names (an unknown id, a bad format, a missing
blob, an unwritable output, a full disk) ends with one line on stderr and
exit status 2; a stopping signal ends with 128 + its number (see
``engine.cli.signals``).

A default that is not a plain value (an environment variable, "on a
terminal") is described through the option's ``show_default`` string, never
written into the help text: Typer reads help text as Rich markup, where
``[default: ...]`` is a style tag and vanishes from ``--help``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from typing import Annotated, Any, Optional

import msgspec
import typer
from rich.console import Console

from engine.cli.signals import stopped_by
from engine.errors import DsexportError
from engine.store import MetadataStore, StoreAddress
from formats import FORMATS

__all__ = [
    "ApiKeyOption",
    "BackendChoice",
    "BlobsOption",
    "FormatChoice",
    "JsonOption",
    "ProgressOption",
    "StoreOption",
    "TimeoutOption",
    "err",
    "open_store",
    "out_console",
    "report_retries",
    "store_address",
    "user_errors",
    "write_json",
]

err = Console(stderr=True, soft_wrap=True)  # messages are never wrapped: they may be parsed


def out_console() -> Console:
    """Standard output; wide when piped, so ids in tables are never cut."""
    return Console() if sys.stdout.isatty() else Console(width=200)


def write_json(value: Any) -> None:
    """``value`` as one line of JSON on standard output (what ``--json`` prints)."""
    sys.stdout.buffer.write(msgspec.json.encode(value) + b"\n")


#: The formats a command accepts: the registry's names, spelt on the command line as registered
#: (``spacy-ner``); the member names are the same with ``_`` for ``-``.
FormatChoice = Enum("FormatChoice", [(name.replace("-", "_"), name) for name in FORMATS], type=str)  # type: ignore[misc]


class BackendChoice(str, Enum):
    trio = "trio"
    asyncio = "asyncio"


def store_address(store: str | None, blobs: str | None) -> StoreAddress:
    """The store ``--store`` and ``--blobs`` name (else ``$DSEXPORT_STORE``/``$DSEXPORT_BLOBS``, else ``./dsexport-data``)."""
    return StoreAddress.from_options(store, blobs)


def open_store(store: str | None, blobs: str | None, *, create: bool) -> MetadataStore:
    """The store at ``--store``/``--blobs`` (or the default one); ``create=False`` refuses a missing store."""
    return store_address(store, blobs).open(create=create)


StoreOption = Annotated[
    Optional[str],
    typer.Option(
        "--store",
        metavar="DIR|URL",
        help="The store: a folder (SQLite metadata, content in its blobs/ folder) or a metadata URL.",
        show_default="$DSEXPORT_STORE or ./dsexport-data",
    ),
]
BlobsOption = Annotated[
    Optional[str],
    typer.Option(
        "--blobs",
        metavar="DIR|URL",
        help="Where the store's content lives, if not in the store's own folder.",
        show_default="$DSEXPORT_BLOBS or the store's blobs/ folder",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
ApiKeyOption = Annotated[Optional[str], typer.Option("--apikey", help="API key.", show_default="$DSEXPORT_API_KEY")]
TimeoutOption = Annotated[
    float, typer.Option(min=0.1, help="Seconds to wait for a connection or for the server's next bytes.")
]
ProgressOption = Annotated[
    Optional[bool], typer.Option("--progress/--no-progress", help="Progress bar.", show_default="on a terminal")
]


def report_retries() -> None:
    """Say on stderr when a request to a server is retried (stamina logs a bare event name otherwise)."""
    from stamina.instrumentation import RetryDetails, set_on_retry_hooks

    def hook(details: RetryDetails) -> None:
        cause = str(details.caused_by) or type(details.caused_by).__name__
        err.print(f"[yellow]retry {details.retry_num} in {details.wait_for:.1f} s:[/] {cause}", highlight=False)

    set_on_retry_hooks([hook])


@contextmanager
def user_errors(interrupted: str = "partial output removed") -> Iterator[None]:
    """Turn the product's errors into a message and exit 2; a stopping signal into 128 + its number."""
    try:
        yield
    except DsexportError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        signal = stopped_by()
        err.print(f"interrupted by {signal.name}; {interrupted}", highlight=False)
        raise typer.Exit(128 + signal) from None
