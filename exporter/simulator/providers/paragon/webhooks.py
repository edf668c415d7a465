"""Paragon Managed Sync's webhooks, as its Webhooks page documents them: every event carries
`event`, `sync` (the integration), `syncInstanceId`, `credentialId` and `user.id`;
`sync_complete` (with `data.model`, `data.syncedAt`, `data.numRecords`) is sent when the initial
sync has completed, `sync_errored` (with `error.message`) when a sync fails and stays ERRORED.
Paragon documents no signature: the receiving URL carries its own secret.
"""

from __future__ import annotations

from exporter.simulator.clock import Moment
from exporter.simulator.providers.base import JSON
from exporter.simulator.providers.paragon.world import ParagonWorld

WEBHOOK_SECRET = "sim-paragon-webhook-token"


def _status(body: JSON | None) -> str:
    status = None if body is None else body.get("status")
    return status.upper() if isinstance(status, str) else ""


def _synced_at(body: JSON | None) -> object:
    summary = None if body is None else body.get("summary")
    if not isinstance(summary, dict):
        return None
    return summary.get("lastSyncedAt") or summary.get("last_synced_at")


def paragon_events(
    state: ParagonWorld, sync_id: str, before: JSON | None, after: JSON, m: Moment
) -> list[JSON]:
    """The events Paragon sends as the sync's body goes from `before` to `after`."""
    if before is None:
        return []
    user = state.owner(sync_id) or ""
    item = next((i for i in state.listing(user, m) if i.get("id") == sync_id), {})
    event: JSON = {
        "syncInstanceId": sync_id,
        "sync": item.get("integration"),
        "user": {"id": user},
    }
    if after.get("credentialId") is not None:
        event["credentialId"] = after["credentialId"]
    if _status(after) == "ERRORED" and _status(before) != "ERRORED":
        reason = after.get("reason")
        message = reason if isinstance(reason, str) and reason else "simulated failure"
        return [{"event": "sync_errored", **event, "error": {"message": message}}]
    synced = _synced_at(after)
    if synced is not None and _synced_at(before) is None:
        summary = after.get("summary") or {}
        records = summary.get("totalRecords", summary.get("total_records"))
        data = {"model": item.get("pipeline"), "syncedAt": synced, "numRecords": records}
        return [{"event": "sync_complete", **event, "data": data}]
    return []
