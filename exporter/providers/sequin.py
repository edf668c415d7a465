"""Sequin: `GET {base_url}/v1/syncs/{id}` with an API key."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from exporter import values
from exporter.model import State, SyncStatus
from exporter.providers.base import Provider, bearer, data_list, require_object


def _url(base_url: str, sync_id: str) -> str:
    return f"{base_url}/v1/syncs/{quote(sync_id, safe='')}"


def _state(status: str, health: str, backfilled: bool) -> State:
    status = status.lower()
    if status == "disabled":
        return State.DISABLED
    if status != "active":
        return State.UNKNOWN
    if health.lower() == "error":
        return State.ERRORED
    if not backfilled:
        return State.INITIALIZING
    return State.ACTIVE


def parse(body: Any) -> SyncStatus:
    """Map a Get a Sync response to SyncStatus; health.status is an open set of strings."""
    data = require_object(body)
    health = data.get("health")
    health_status = values.text(health.get("status")) if isinstance(health, dict) else ""
    backfill = values.timestamp(data.get("initial_backfill_completed_at"))
    state = _state(data["status"], health_status, backfill is not None)
    rate_limit = data.get("rate_limit")
    if not isinstance(rate_limit, dict):
        rate_limit = {}
    frequency = values.text(data.get("sync_frequency"))
    interval = 0.0 if frequency.lower() == "continuous" else values.duration(frequency)
    collections = data.get("collection_ids")
    reason = ""
    if isinstance(health, dict):
        reason = values.label_text(health.get("message") or health.get("error") or "")
    return SyncStatus(
        state=state,
        provider_status=values.label_text(data["status"]),
        info={
            "name": values.label_text(data.get("name")),
            "integration": values.label_text(data.get("provider")),
            "credential_id": values.label_text(data.get("credential_id")),
            "frequency": values.label_text(frequency),
        },
        interval_seconds=interval,
        initial_backfill_completed_timestamp=backfill,
        rate_limit_allowed_requests=values.number(rate_limit.get("allowed_requests")),
        rate_limit_interval_seconds=values.number(rate_limit.get("interval")),
        rate_limit_max_concurrent_requests=values.number(rate_limit.get("max_concurrent_requests")),
        collections=float(len(collections)) if isinstance(collections, list) else None,
        error_reason=reason if state is State.ERRORED else None,
    )


PROVIDER = Provider(
    name="sequin",
    default_base_url="https://api.sequin.io",
    url=_url,
    headers=bearer,
    parse=parse,
    list_url=lambda base_url, _cursor: f"{base_url}/v1/syncs",
    parse_list=data_list,
)
