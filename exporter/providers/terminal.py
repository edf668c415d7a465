"""Terminal: `GET {base_url}/syncs/{id}` with a secret key and a per-connection token."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from exporter import values
from exporter.model import State, SyncStatus
from exporter.providers.base import BadResponse, Credentials, Provider, ids_in, require_object

_STATES = {
    "requested": State.INITIALIZING,
    "in_progress": State.ACTIVE,
    "completed": State.IDLE,
    "failed": State.ERRORED,
}


def _url(base_url: str, sync_id: str) -> str:
    return f"{base_url}/syncs/{quote(sync_id, safe='')}"


def _headers(credentials: Credentials) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {credentials.token}",
        "Connection-Token": credentials.connection_token,
    }


def parse(body: Any) -> SyncStatus:
    """Map a Get Sync Job Status response to SyncStatus; issues may be ids or expanded objects."""
    data = require_object(body)
    status = data["status"]
    state = _STATES.get(status.lower(), State.UNKNOWN)
    progress = values.number(data.get("progress"))
    issues = data.get("issues")
    return SyncStatus(
        state=state,
        provider_status=values.label_text(status),
        info={"name": "", "integration": "", "credential_id": "", "frequency": ""},
        progress_ratio=None if progress is None else min(max(progress / 100.0, 0.0), 1.0),
        attempts=values.number(data.get("attempts")),
        issues=float(len(issues)) if isinstance(issues, list) else None,
        requested_timestamp=values.timestamp(data.get("requestedAt")),
        completed_timestamp=values.timestamp(data.get("completedAt")),
        error_reason=values.label_text(data.get("failureReason"))
        if state is State.ERRORED
        else None,
    )


LIST_PAGE_SIZE = 100


def _list_url(base_url: str, cursor: str | None) -> str:
    page = f"{base_url}/syncs?limit={LIST_PAGE_SIZE}"
    return page if cursor is None else f"{page}&cursor={quote(cursor, safe='')}"


def _parse_list(body: Any) -> tuple[list[str], str | None]:
    """`{"results": [...], "next": cursor}`, paginated."""
    if not isinstance(body, dict):
        raise BadResponse("expected a JSON object with a 'results' list")
    following = body.get("next")
    return ids_in(body.get("results")), following if isinstance(following, str) else None


PROVIDER = Provider(
    name="terminal",
    default_base_url="https://api.withterminal.com/tsp/v1",
    url=_url,
    headers=_headers,
    parse=parse,
    needs_connection_token=True,
    list_url=_list_url,
    parse_list=_parse_list,
)
