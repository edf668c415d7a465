"""Terminal's webhooks, in the shapes of the Webhook Events of its OpenAPI definition: `id` (an
event id), `type`, `timestamp`, and `detail` with the connection (BasicConnection: id, provider,
externalId, tags) and the sync job (the Sync schema). `sync.completed` and `sync.failed` are
sent when a job reaches completed or failed, `connection.disconnected` (with the whole
Connection) when a connection's status becomes disconnected.
"""

from __future__ import annotations

from exporter.simulator.clock import Moment, iso_millis
from exporter.simulator.providers.base import JSON
from exporter.simulator.providers.terminal.model import ulid_like
from exporter.simulator.providers.terminal.world import TerminalWorld

# guess: Terminal's webhook signature scheme is not in the documents we could read; the
# receiving URL carries its own secret.
WEBHOOK_SECRET = "sim-terminal-webhook-token"
ENDED = {"completed": "sync.completed", "failed": "sync.failed"}
CONNECTION = "connection:"


def connection_subjects(state: TerminalWorld, m: Moment) -> list[tuple[str, JSON]]:
    """Each connection's body, keyed apart from the job ids."""
    return [(CONNECTION + c.id, c.render(m)) for c in state.connections.values()]


def _connection_events(before: JSON | None, after: JSON, m: Moment) -> list[JSON]:
    if before is None or after.get("status") != "disconnected":
        return []
    if before.get("status") == "disconnected":
        return []
    return [
        {
            "id": ulid_like("evt", f"{after['id']}:disconnected:{m.now}"),
            "type": "connection.disconnected",
            "timestamp": iso_millis(m.now),
            "detail": {"connection": after},
        }
    ]


def terminal_events(
    state: TerminalWorld, job_id: str, before: JSON | None, after: JSON, m: Moment
) -> list[JSON]:
    """The event Terminal sends when job `job_id` ends (a job first seen ended counts too:
    ad-hoc jobs are appended ended), or when a connection is disconnected."""
    if job_id.startswith(CONNECTION):
        return _connection_events(before, after, m)
    status = after.get("status")
    kind = ENDED.get(status) if isinstance(status, str) else None
    if kind is None or (before is not None and before.get("status") == status):
        return []
    found = state.find(job_id, m)
    if found is None:
        return []
    connection = found[0].render(m)
    basic: JSON = {"id": connection["id"], "provider": connection["provider"]}
    if "externalId" in connection:
        basic["externalId"] = connection["externalId"]
    basic["tags"] = connection.get("tags", [])
    return [
        {
            "id": ulid_like("evt", f"{job_id}:{status}"),
            "type": kind,
            "timestamp": iso_millis(m.now),
            "detail": {"connection": basic, "sync": after},
        }
    ]
