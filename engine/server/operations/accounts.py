"""Logout and the ``applications`` list the SDK reads on start-up (register and login are
hand-written in ``engine.server.accounts``: they answer before anyone is authorized)."""

from __future__ import annotations

from engine.server.operations.call import Call

__all__ = ["applications", "logout"]


def logout(call: Call) -> dict:
    """Revokes the key the request was made with."""
    call.store.revoke_key(call.key)
    return {}


def applications(call: Call) -> list:
    """No model applications here: an empty array, which is what the SDK's constructor needs."""
    return []
