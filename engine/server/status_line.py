"""Reason phrases on HTTP/1.1 status lines: ``400 Bad Request``, not ``400``.

ASGI has no field for a reason phrase, Hypercorn builds its h11 responses
without one, and h11 then writes an empty phrase (legal: RFC 9112 makes it
optional). Clients that show the phrase then show nothing: the SeeMe SDK's
``raise_for_status`` says ``400 Client Error:  for url ...``. Hypercorn has
no setting for it, so :func:`add_reason_phrases` wraps the one method
through which its HTTP/1.1 protocol (the same on its trio and asyncio
workers) hands every status line to h11, and fills in the standard phrase
of :class:`http.HTTPStatus` where none was given. HTTP/2 and HTTP/3 have no
reason phrase, so there is nothing to do for them.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

import h11

__all__ = ["add_reason_phrases", "reason_phrase"]


def reason_phrase(status: int) -> bytes:
    """The standard phrase of ``status`` (``b"Bad Request"``); ``b""`` for a code it does not know."""
    try:
        return HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b""


def _with_reason(event: object) -> object:
    """``event`` itself, or, for a status line without a phrase, the same one with its phrase."""
    if isinstance(event, (h11.Response, h11.InformationalResponse)) and not event.reason:
        return type(event)(
            status_code=event.status_code,
            headers=list(event.headers),
            http_version=event.http_version,
            reason=reason_phrase(event.status_code),
        )
    return event


def add_reason_phrases() -> None:
    """Make Hypercorn's HTTP/1.1 protocol send reason phrases; idempotent, process-wide."""
    from hypercorn.protocol.h11 import H11Protocol

    send = getattr(H11Protocol, "_send_h11_event", None)
    if send is None:  # a Hypercorn that reworked its protocol: status lines stay without phrases
        logging.getLogger("dsexport.http").warning("cannot add reason phrases to this Hypercorn's status lines")
        return
    if getattr(send, "adds_reason_phrases", False):
        return

    async def send_with_reason(self: H11Protocol, event: object) -> None:
        await send(self, _with_reason(event))

    send_with_reason.adds_reason_phrases = True  # type: ignore[attr-defined]
    H11Protocol._send_h11_event = send_with_reason  # type: ignore[method-assign]
