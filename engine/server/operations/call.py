"""What an operation is handed: the store, who is asking, the checked ids, the parsed request."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.server.params import if_match
from engine.store import Store

__all__ = ["Call", "Reply"]


@dataclass(frozen=True, slots=True)
class Call:
    """One request, as an operation sees it, after authorization (``engine.server.auth``).

    The path's dataset, version and item are the caller's when an operation
    runs; ``query`` holds the endpoint's declared query parameters, parsed;
    ``body`` the request body decoded into the endpoint's Struct (or None).
    """

    store: Store
    user_id: str
    key: str
    path: Mapping[str, str]
    query: Mapping[str, Any]
    headers: Mapping[str, str]
    body: Any = None

    @property
    def dataset_id(self) -> str:
        return self.path["d"]

    @property
    def version_id(self) -> str:
        return self.path["v"]

    @property
    def item_id(self) -> str:
        return self.path["i"]

    def if_match(self) -> int | None:
        """The item version of ``If-Match``, or None; 400 if it cannot be one."""
        return if_match(self.headers.get("if-match"))


@dataclass(frozen=True, slots=True)
class Reply:
    """A reply with headers of its own (an operation that needs none returns the content alone)."""

    content: Any
    headers: dict[str, str]


def keep(new: Any, old: Any) -> Any:
    """A patch field: the new value when the body sent one (not null), else the old."""
    return new if new is not None else old
