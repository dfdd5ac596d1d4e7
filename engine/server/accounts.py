"""Register and login: hand-written, because they answer before anyone is authorized.

Failures answer ``{"message": ...}``, which is what the SDK reads (it looks
at the message, not the status). Logout and ``applications`` are ordinary
operations (``engine.server.operations.accounts``).
"""

from __future__ import annotations

import anyio.to_thread
from starlette.requests import Request

from engine.errors import InvalidInput
from engine.server.bodies import JSON, LoginIn, LoginReply, RegisterIn, User, read_body
from engine.server.state import app_state

__all__ = ["login", "register"]


async def register(request: Request) -> JSON:
    """A new user and key. Failures answer ``{"message": ...}``: the SDK reads it instead of the status."""
    body = await read_body(request, RegisterIn)
    if missing := _blank_fields(username=body.username, password=body.password):
        return JSON({"message": f"register needs a non-empty {' and '.join(missing)}"}, 400)
    store = app_state(request).store

    def create():
        return store.create_user(
            body.username,
            body.password,
            email=body.email or "",
            name=body.name or "",
            firstname=body.firstname or "",
        )

    try:
        user, key = await anyio.to_thread.run_sync(create)
    except InvalidInput as exc:
        return JSON({"message": str(exc)}, 400)
    return JSON(User(apikey=key, **user), 201)


async def login(request: Request) -> JSON:
    """A new key for a username and password. No password, or an empty one, is a 400: never a login.

    A key-only user (``dsexport user create`` without ``--password``) has no
    password, so every login as that user is a 401 like a wrong password.
    """
    body = await read_body(request, LoginIn)
    if missing := _blank_fields(username=body.username, password=body.password):
        return JSON({"message": f"login needs a non-empty {' and '.join(missing)}"}, 400)
    found = await anyio.to_thread.run_sync(app_state(request).store.login, body.username, body.password)
    if found is None:
        return JSON({"message": "wrong username or password"}, 401)
    user, key = found
    return JSON(LoginReply(apikey=key, **user))


def _blank_fields(**fields: str | None) -> list[str]:
    """The names of the fields that are missing, empty or only blanks, quoted for a message."""
    return [f"'{name}'" for name, value in fields.items() if not (value or "").strip()]
