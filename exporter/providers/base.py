"""What every provider adapter is made of; the collector depends on this, never on an adapter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from exporter.model import SyncStatus


class BadResponse(Exception):
    """The provider answered, but not with a sync status we can read."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """The secrets a request needs, already read from the environment or files."""

    token: str = field(repr=False)
    connection_token: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class Provider:
    """What the collector needs from an adapter: where to ask, how to sign, how to read."""

    name: str
    default_base_url: str
    url: Callable[[str, str], str]
    headers: Callable[[Credentials], dict[str, str]]
    parse: Callable[[Any], SyncStatus]
    needs_connection_token: bool = False
    # Discovery: the URL of a page of the list of syncs (base URL, cursor of the page or
    # None for the first), and the ids on a page with the next page's cursor.
    list_url: Callable[[str, str | None], str] | None = None
    parse_list: Callable[[Any], tuple[list[str], str | None]] | None = None


def bearer(credentials: Credentials) -> dict[str, str]:
    """The header every provider uses for its main token."""
    return {"Authorization": f"Bearer {credentials.token}"}


def require_object(body: Any) -> dict[str, Any]:
    """Refuse a body that is not a JSON object with a string `status`."""
    if not isinstance(body, dict):
        raise BadResponse(f"expected a JSON object, got {type(body).__name__}")
    if not isinstance(body.get("status"), str):
        raise BadResponse("response has no string 'status' field")
    return body


def ids_in(items: Any) -> list[str]:
    """The string `id`s of a list of sync objects; anything else is a bad response."""
    if not isinstance(items, list):
        raise BadResponse("the list of syncs is not a JSON array")
    ids = [item.get("id") for item in items if isinstance(item, dict)]
    if len(ids) != len(items) or not all(isinstance(i, str) and i for i in ids):
        raise BadResponse("a listed sync has no string 'id'")
    return [i for i in ids if isinstance(i, str)]


def data_list(body: Any) -> tuple[list[str], str | None]:
    """Paragon's and Sequin's list answer: `{"data": [...]}`, one page."""
    if not isinstance(body, dict):
        raise BadResponse("expected a JSON object with a 'data' list")
    return ids_in(body.get("data")), None
