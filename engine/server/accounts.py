"""Register, login, logout, and the ``applications`` list the SDK reads on start-up."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from engine.errors import InvalidInput
from engine.server.auth import bearer, db, service, user_id
from engine.server.bodies import JSON, LoginIn, LoginReply, RegisterIn, User, read_body

__all__ = ["routes"]


async def register(request: Request) -> JSON:
    """A new user and key. Failures answer ``{"message": ...}``: the SDK reads it instead of the status."""
    body = await read_body(request, RegisterIn)
    if missing := _blank_fields(username=body.username, password=body.password):
        return JSON({"message": f"register needs a non-empty {' and '.join(missing)}"}, 400)
    try:
        user, key = await db(
            request,
            service(request).store.create_user,
            body.username,
            body.password,
            email=body.email or "",
            name=body.name or "",
            firstname=body.firstname or "",
        )
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
    found = await db(request, service(request).store.login, body.username, body.password)
    if found is None:
        return JSON({"message": "wrong username or password"}, 401)
    user, key = found
    return JSON(LoginReply(apikey=key, **user))


def _blank_fields(**fields: str | None) -> list[str]:
    """The names of the fields that are missing, empty or only blanks, quoted for a message."""
    return [f"'{name}'" for name, value in fields.items() if not (value or "").strip()]


async def logout(request: Request) -> JSON:
    """Revokes the key the request was made with."""
    await user_id(request)
    await db(request, service(request).store.revoke_key, bearer(request) or "")
    return JSON({})


async def applications(request: Request) -> JSON:
    """No model applications here: an empty array, which is what the SDK's constructor needs."""
    await user_id(request)
    return JSON([])


routes = [
    Route("/register", register, methods=["POST"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/applications", applications, methods=["GET"]),
]
