"""Paragon Managed Sync: `GET {base_url}/api/syncs/{id}` with a Paragon User Token."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from exporter import values
from exporter.model import State, SyncStatus
from exporter.providers.base import Provider, bearer, data_list, require_object

# Older documentation used lower-case statuses and called DISABLED "paused".
_STATES = {
    "initializing": State.INITIALIZING,
    "active": State.ACTIVE,
    "idle": State.IDLE,
    "rate_limited": State.RATE_LIMITED,
    "disabled": State.DISABLED,
    "paused": State.DISABLED,
    "errored": State.ERRORED,
}


def _url(base_url: str, sync_id: str) -> str:
    return f"{base_url}/api/syncs/{quote(sync_id, safe='')}"


def _field(summary: dict[str, Any], camel: str, snake: str) -> Any:
    return summary[camel] if camel in summary else summary.get(snake)


def parse(body: Any) -> SyncStatus:
    """Map a Get Sync Status response (current camelCase or legacy snake_case) to SyncStatus."""
    data = require_object(body)
    status = data["status"]
    state = _STATES.get(status.lower(), State.UNKNOWN)
    summary = data.get("summary")
    if not isinstance(summary, dict):
        summary = {}
    total = values.number(_field(summary, "totalRecords", "total_records"))
    synced = values.number(_field(summary, "syncedRecordsCount", "synced_records_count"))
    progress = None
    if total is not None and synced is not None and total > 0:
        progress = min(max(synced / total, 0.0), 1.0)
    backoff_ms = values.number(data.get("rateLimitBackoffMs"))
    if backoff_ms is None:
        backoff_ms = 0.0 if state is not State.RATE_LIMITED else None
    elif state is not State.RATE_LIMITED:
        backoff_ms = 0.0
    frequency = values.text(data.get("incrementalAccumulatorFrequency"))
    return SyncStatus(
        state=state,
        provider_status=values.label_text(status),
        info={
            "name": values.label_text(data.get("configurationName")),
            "integration": values.label_text(data.get("integration")),
            "credential_id": values.label_text(data.get("credentialId")),
            "frequency": values.label_text(frequency),
        },
        progress_ratio=progress,
        records_expected=total,
        records_synced=synced,
        last_synced_timestamp=values.timestamp(_field(summary, "lastSyncedAt", "last_synced_at")),
        rate_limit_backoff_seconds=None if backoff_ms is None else backoff_ms / 1000.0,
        interval_seconds=values.duration(frequency),
        error_reason=values.label_text(data.get("reason")) if state is State.ERRORED else None,
    )


PROVIDER = Provider(
    name="paragon",
    default_base_url="https://sync.useparagon.com",
    url=_url,
    headers=bearer,
    parse=parse,
    list_url=lambda base_url, _cursor: f"{base_url}/api/syncs",
    parse_list=data_list,
)
