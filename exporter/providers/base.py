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
