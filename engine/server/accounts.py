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
    if not body.username or not body.password:
        return JSON({"message": "register needs a username and a password"}, 400)
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
    body = await read_body(request, LoginIn)
    found = await db(request, service(request).store.login, body.username or "", body.password or "")
    if found is None:
        return JSON({"message": "wrong username or password"}, 401)
    user, key = found
    return JSON(LoginReply(apikey=key, **user))


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
