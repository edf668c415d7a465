"""Census: the workspace's syncs, each watched through its latest sync run, behind a workspace
API token sent as Bearer.

    {sim}/census/api/v1  GET /syncs[?page=&per_page=]               {"status": "success",
                             "data": [...], "pagination": {..., "next_page": N | null}}
                         GET /syncs/{id}/sync_runs[?page=&per_page=]   the same envelope,
                             newest run first (Census's default order is desc)

Shapes follow Census's public API reference (List syncs, List sync runs, Pagination) and its
observability guide's sample run: a sync's `id`, `label`, `status` ("Ready" before the first
run, "up to date", "failing"), `paused`; a run's `status` (working, completed, failed,
skipped, queued), `records_processed`, `records_updated`, `records_failed`, `created_at`,
`completed_at`, `error_code`, `error_message`, `error_detail`; pages of 25 by default, 100 at
most, with `next` as an absolute URL beside `pagination`. Guesses, marked as such: the sync
statuses' exact spelling beyond the three the reference names; the error body `{status:
"error", message}`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from exporter.simulator.catalog import RunLog, limit_of, stretch
from exporter.simulator.clock import DAY, HOUR, MINUTE, Moment, iso_millis
from exporter.simulator.host import Host, WorldView
from exporter.simulator.providers.base import (
    JSON,
    SimProvider,
    preset_source,
    state_of,
)
from exporter.simulator.serving import Handler, admit, answer, bearer

NAME = "census"
TOKEN = "secret-token:sim-census-workspace"

ACCOUNTS = "71"
CONTACTS = "72"
USAGE = "73"
ARCHIVE = "74"
FRESH = "75"


def sync_run(sync_id: str, number: int, status: str, start: float, end: float | None) -> JSON:
    """One sync run as Census's sample shows it."""
    failed = status == "failed"
    done = status in ("completed", "failed")
    return {
        "id": number,
        "sync_id": int(sync_id) if sync_id.isdigit() else sync_id,
        "source_record_count": 1500,
        "source_record_updates": 400,
        "source_record_deletes": 10,
        "source_record_invalids": 0,
        "records_processed": 410 if done else 120,
        "records_updated": 0 if failed else (405 if done else 118),
        "records_failed": 410 if failed else (5 if done else 2),
        "created_at": iso_millis(start),
        "updated_at": iso_millis(end if end is not None else start + MINUTE),
        "completed_at": None if end is None else iso_millis(end),
        "scheduled_execution_time": iso_millis(start),
        "error_code": "INVALID_CREDENTIALS" if failed else None,
        "error_message": "The destination rejected the credentials" if failed else None,
        "error_detail": None,
        "status": status,
        "canceled": False,
        "full_sync": False,
    }


@dataclass(frozen=True, slots=True)
class CensusSync:
    """A catalogue sync and its lifecycle (`kind`): `runs` (queued, working, then completed,
    each period), `failing` (the latest run failed), `paused`, `fresh` (never run)."""

    id: str
    label: str
    kind: str
    labels: Mapping[str, str] = field(default_factory=dict)

    def runs(self, m: Moment) -> list[JSON]:
        """The run log, newest first."""
        if self.kind == "fresh":
            return []
        k, index, begun = stretch(m, (0.1, 0.3, 0.6))
        number = 9000 + 10 * max(k, 0)
        earlier = sync_run(self.id, number - 1, "completed", begun - HOUR, begun - HOUR + MINUTE)
        if self.kind == "failing":
            failed = sync_run(self.id, number, "failed", begun - 10 * MINUTE, begun - 9 * MINUTE)
            return [failed, earlier]
        if self.kind == "paused":
            return [sync_run(self.id, number - 5, "completed", m.now - 2 * DAY, m.now - 2 * DAY)]
        if index == 2:
            return [sync_run(self.id, number, "completed", begun - 2 * MINUTE, begun), earlier]
        status = "queued" if index == 0 else "working"
        return [sync_run(self.id, number, status, begun, None), earlier]

    def render(self, m: Moment) -> JSON:
        """The sync object at `m`."""
        latest = self.runs(m)
        status = "Ready"
        if latest:
            status = "failing" if latest[0]["status"] == "failed" else "up to date"
        return {
            "id": int(self.id),
            "label": self.label,
            "status": status,
            "paused": self.kind == "paused",
            "operation": "upsert",
            "created_at": iso_millis(m.started_at - 30 * DAY),
            "updated_at": iso_millis(m.started_at - DAY),
        }


def demo_syncs() -> list[CensusSync]:
    """Five syncs, one per case the preset must get right."""
    return [
        CensusSync(ACCOUNTS, "Accounts to Salesforce", "runs", labels={"team": "sales"}),
        CensusSync(CONTACTS, "Contacts to HubSpot", "runs"),
        CensusSync(USAGE, "Usage to Zendesk", "failing"),
        CensusSync(ARCHIVE, "Archive to Marketo", "paused"),
        CensusSync(FRESH, "Trials to Braze", "fresh"),
    ]


class CensusWorld(RunLog):
    """Census's part of a world: the workspace token and the syncs with their runs."""

    def __init__(self, syncs: list[CensusSync]) -> None:
        super().__init__(syncs)
        self.token = TOKEN


def _state(world: WorldView) -> CensusWorld:
    return state_of(world, NAME, CensusWorld)


def _paged(request: web.Request, every: Sequence[JSON]) -> JSON:
    """A page in Census's envelope: `page` from 1 (0 counts as 1), `per_page` up to 100."""
    raw = request.query.get("page", "1")
    if not raw.isdigit():
        raise web.HTTPBadRequest(text="page must be a whole number")
    page = max(int(raw), 1)
    size = limit_of(request, "per_page", 25, 100)
    last = max((len(every) + size - 1) // size, 1)
    body: JSON = {
        "status": "success",
        "data": list(every[(page - 1) * size : page * size]),
        "pagination": {
            "total_records": len(every),
            "per_page": size,
            "prev_page": page - 1 if page > 1 else None,
            "page": page,
            "next_page": page + 1 if page < last else None,
            "last_page": last,
        },
    }
    if page < last:
        body["next"] = str(request.url.update_query({"page": page + 1, "per_page": size}))
    return body


class Census(SimProvider):
    """Census's REST API behind `/census/api/v1`."""

    name = NAME
    prefix = "/census/api/v1"
    list_path = "/syncs"
    rank = 95

    def demo(self, options: Mapping[str, Any]) -> CensusWorld:
        """Five syncs of one workspace."""
        return CensusWorld(demo_syncs())

    def error_body(self, status: int, detail: str, retry_after: str | None = None) -> JSON:
        """A guess at Census's error shape."""
        return {"status": "error", "message": detail}

    def routes(self, sim: Host) -> list[web.RouteDef]:
        """The sync list and a sync's runs."""
        return [
            web.get(f"{self.prefix}/syncs", self._syncs(sim)),
            web.get(f"{self.prefix}/syncs/{{id}}/sync_runs", self._runs(sim)),
        ]

    def _refused(self, world: WorldView, request: web.Request) -> web.Response | None:
        if bearer(request) != _state(world).token:
            return self.error_response(401, "Invalid workspace access token")
        return None

    def _syncs(self, sim: Host) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            early, fault = await admit(sim, self, request, check=self._refused)
            if early is not None:
                return early
            state = _state(sim.world)
            m = sim.world.moment(sim.clock())
            every = [body for i in state.ids(m) if (body := state.body(i, m)) is not None]
            return answer(_paged(request, every), fault)

        return handle

    def _runs(self, sim: Host) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            sync_id = request.match_info["id"]
            early, fault = await admit(sim, self, request, sync_id, check=self._refused)
            if early is not None:
                return early
            state = _state(sim.world)
            m = sim.world.moment(sim.clock())
            if not state.has(sync_id, m):
                return self.error_response(404, f"Sync {sync_id} not found")
            return answer(_paged(request, state.runs(sync_id, m)), fault)

        return handle

    def source(self, base_url: str, world: WorldView, *, discover: bool) -> dict[str, Any] | None:
        """The preset with the simulator's workspace token."""
        state = _state(world)
        ids = world.ids(NAME)
        if not ids:
            return None
        return preset_source(
            NAME, world, base_url, {"token": state.token}, state, ids, discover=discover
        )


PROVIDER = Census()
