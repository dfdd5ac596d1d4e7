"""Errors a user can read. Every failure the engine reports is one of these.

    DsexportError                 root: catch this to catch everything below
    +-- NotFound                  an unknown dataset, version, split, item or label
    +-- InvalidInput              a bad argument or malformed value (format name,
    |                             coordinates, CSV row that does not fit the columns)
    +-- ContentError              an item's content cannot be read
    |   +-- MissingBlob           the blob is gone or does not match its checksum
    |   +-- ArchiveError          a downloaded archive is truncated or corrupt
    |       +-- UnsafeArchive     an entry would land outside the extraction folder
    +-- OutputError               the archive cannot be written where asked
    +-- AuthenticationFailed      a server refused the API key (401/403)
    +-- RemoteError               a server is unreachable, timed out or kept failing
    +-- ShardFailed               a shard of a scale-out export failed (after retries)

Each carries a message that names the bad value and, where there is a fixed
set, the valid choices, so the CLI can print it as is and exit 2.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "ArchiveError",
    "AuthenticationFailed",
    "ContentError",
    "DsexportError",
    "InvalidInput",
    "MissingBlob",
    "NotFound",
    "OutputError",
    "RemoteError",
    "UnsafeArchive",
    "ShardFailed",
    "choices_hint",
]


def choices_hint(choices: Iterable[str], limit: int = 20) -> str:
    """Render valid choices for a message, clipped so huge lists stay readable."""
    shown = list(choices)
    if not shown:
        return "there are none"
    text = ", ".join(shown[:limit])
    if len(shown) > limit:
        text += f", ... ({len(shown) - limit} more)"
    return text


class DsexportError(Exception):
    """Root of every error the product raises on purpose."""


class NotFound(DsexportError):
    """An id or name that does not exist (or is not visible to the caller)."""


class InvalidInput(DsexportError):
    """An argument or stored value that cannot be used as given."""


class ContentError(DsexportError):
    """An item's content could not be fetched or read."""

    def __init__(self, message: str, *, item_id: str | None = None) -> None:
        super().__init__(message)
        self.item_id = item_id


class MissingBlob(ContentError):
    """A blob referenced by an item is missing, unreadable or corrupt."""


class OutputError(DsexportError):
    """The archive could not be written to the requested place."""


class ArchiveError(ContentError):
    """A downloaded archive is truncated or fails its own checks (sizes, CRC-32s)."""


class UnsafeArchive(ArchiveError):
    """An archive entry would be written outside the extraction folder."""


class AuthenticationFailed(DsexportError):
    """The server did not accept the API key."""


class RemoteError(DsexportError):
    """A server could not be reached, did not answer in time, or kept failing after retries."""
class ShardFailed(DsexportError):
    """A shard of a scale-out export (``--ray``) failed, after Ray's retries."""
