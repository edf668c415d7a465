"""Hightouch: the workspace's syncs, each with a status summarising its latest run, behind a
workspace API key sent as Bearer.

    {sim}/hightouch/api/v1  GET /syncs[?limit=&offset=]      {"data": [...], "hasMore": bool}
                                (100 a page unless asked)
                            GET /syncs/{id}/runs[?limit=]   {"data": [run, ...], "hasMore"}
                                (newest first)

Shapes follow Hightouch's public API reference (List syncs, List sync runs), as the issue that
asked for this preset gathered them: a sync's `id`, `slug`, `status` (disabled, pending,
cancelled, failed, queued, success, warning, querying, processing, reporting, interrupted),
`lastRunAt`, `schedule`, `disabled`; a run's `status`, `createdAt`, `startedAt`,
`finishedAt`, `completionRatio`, `plannedRows`, `successfulRows`, `failedRows` (each
`{addedCount, changedCount, removedCount}`) and `error` (a run's `createdAt`, `startedAt`,
`finishedAt`, `querySize` and `status` also appear in a sample answer Orchestra's Hightouch
guide prints: docs.getorchestra.io/docs/integrations/reverse-etl/hightouch/sync). Guesses,
marked as such: the run's
statuses are the sync's; `completionRatio` runs from 0 to 1; `error` is `{message}` (a plain
string is served by ad-hoc runs in the tests, so the preset reads both); the schedule's inner
shape; the error body `{message}`.
"""

from __future__ import annotations

from collections.abc import Mapping
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

NAME = "hightouch"
TOKEN = "sim-hightouch-key"

AUDIENCES = "1001"
LEADS = "1002"
CHURN = "1003"
SCORES = "1004"
LEGACY = "1005"
FRESH = "1006"


def rows(added: int, changed: int = 0, removed: int = 0) -> JSON:
    """A run's row counts, as Hightouch splits them."""
    return {"addedCount": added, "changedCount": changed, "removedCount": removed}


def run(number: int, status: str, start: float, finish: float | None, done: float = 1.0) -> JSON:
    """One sync run; `done` is the share of its planned rows sent so far."""
    planned = 1200
    sent = int(planned * done)
    error = {"message": "Destination rejected the request: invalid API key"}
    return {
        "id": number,
        "status": status,
        "createdAt": iso_millis(start - 5),
        "startedAt": iso_millis(start),
        "finishedAt": None if finish is None else iso_millis(finish),
        "querySize": planned,
        "completionRatio": done,
        "plannedRows": rows(planned - 200, 200),
        "successfulRows": rows(max(sent - 200, 0), min(sent, 200)),
        "failedRows": rows(0) if status != "warning" else rows(3),
        "error": error if status == "failed" else None,
    }


@dataclass(frozen=True, slots=True)
class HightouchSync:
    """A catalogue sync and its lifecycle (`kind`): `runs` (querying, processing, then
    success, each period), `warning` (runs that reject a few rows), `failing` (the latest run
    failed), `disabled`, `pending` (never run)."""

    id: str
    slug: str
    kind: str
    labels: Mapping[str, str] = field(default_factory=dict)

    def runs(self, m: Moment) -> list[JSON]:
        """The run log, newest first."""
        if self.kind == "pending":
            return []
        k, index, begun = stretch(m, (0.2, 0.3, 0.5))
        number = 50_000 + 10 * max(k, 0)
        earlier = run(number - 1, "success", begun - HOUR, begun - HOUR + 3 * MINUTE)
        if self.kind == "failing":
            return [run(number, "failed", begun - 20 * MINUTE, begun - 19 * MINUTE, 0.1), earlier]
        if self.kind == "disabled":
            return [run(number - 5, "success", m.now - 3 * DAY, m.now - 3 * DAY + MINUTE)]
        if index == 2:
            status = "warning" if self.kind == "warning" else "success"
            return [run(number, status, begun - 4 * MINUTE, begun), earlier]
        status = "querying" if index == 0 else "processing"
        return [run(number, status, begun, None, 0.0 if index == 0 else 0.5), earlier]

    def render(self, m: Moment) -> JSON:
        """The sync object at `m`: its status is its latest run's."""
        latest = self.runs(m)
        status = latest[0]["status"] if latest else "pending"
        if self.kind == "disabled":
            status = "disabled"
        return {
            "id": self.id,
            "slug": self.slug,
            # guess: the ids of the sync's workspace, model and destination (nothing reads them)
            "workspaceId": "sim-workspace",
            "modelId": f"model-{self.id}",
            "destinationId": "dest-1",
            "status": status,
            "disabled": self.kind == "disabled",
            "lastRunAt": latest[0]["startedAt"] if latest else None,
            # guess: the schedule's inner shape
            "schedule": {"type": "interval", "schedule": {"interval": {"quantity": 1}}},
            "createdAt": iso_millis(m.started_at - 30 * DAY),  # guess (nothing reads it)
        }


def demo_syncs() -> list[HightouchSync]:
    """Six syncs, one per case the preset must get right."""
    return [
        HightouchSync(AUDIENCES, "audiences-to-braze", "runs", labels={"team": "growth"}),
        HightouchSync(LEADS, "leads-to-salesforce", "warning"),
        HightouchSync(CHURN, "churn-to-hubspot", "failing"),
        HightouchSync(SCORES, "scores-to-intercom", "runs"),
        HightouchSync(LEGACY, "legacy-to-marketo", "disabled"),
        HightouchSync(FRESH, "new-to-iterable", "pending"),
    ]


class HightouchWorld(RunLog):
    """Hightouch's part of a world: the API key and the syncs with their runs."""

    def __init__(self, syncs: list[HightouchSync]) -> None:
        super().__init__(syncs)
        self.token = TOKEN


def _state(world: WorldView) -> HightouchWorld:
    return state_of(world, NAME, HightouchWorld)


def _offset(request: web.Request) -> int:
    raw = request.query.get("offset", "0")
    if not raw.isdigit():
        raise web.HTTPBadRequest(text="offset must be a whole number")
    return int(raw)


class Hightouch(SimProvider):
    """Hightouch's REST API behind `/hightouch/api/v1`."""

    name = NAME
    prefix = "/hightouch/api/v1"
    list_path = "/syncs"
    rank = 90

    def demo(self, options: Mapping[str, Any]) -> HightouchWorld:
        """Six syncs of one workspace."""
        return HightouchWorld(demo_syncs())

    def error_body(self, status: int, detail: str, retry_after: str | None = None) -> JSON:
        """A guess at Hightouch's error shape."""
        return {"message": detail}

    def routes(self, sim: Host) -> list[web.RouteDef]:
        """The sync list and a sync's runs."""
        return [
            web.get(f"{self.prefix}/syncs", self._syncs(sim)),
            web.get(f"{self.prefix}/syncs/{{id}}/runs", self._runs(sim)),
        ]

    def _refused(self, world: WorldView, request: web.Request) -> web.Response | None:
        if bearer(request) != _state(world).token:
            return self.error_response(401, "Invalid API key")
        return None

    def _syncs(self, sim: Host) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            early, fault = await admit(sim, self, request, check=self._refused)
            if early is not None:
                return early
            state = _state(sim.world)
            m = sim.world.moment(sim.clock())
            every = [body for i in state.ids(m) if (body := state.body(i, m)) is not None]
            limit = limit_of(request, "limit", 100, 100)
            offset = _offset(request)
            page = every[offset : offset + limit]
            return answer({"data": page, "hasMore": offset + limit < len(every)}, fault)

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
            every = state.runs(sync_id, m)
            limit = limit_of(request, "limit", 5, 100)
            return answer({"data": every[:limit], "hasMore": len(every) > limit}, fault)

        return handle

    def source(self, base_url: str, world: WorldView, *, discover: bool) -> dict[str, Any] | None:
        """The preset with the simulator's API key."""
        state = _state(world)
        ids = world.ids(NAME)
        if not ids:
            return None
        return preset_source(
            NAME, world, base_url, {"token": state.token}, state, ids, discover=discover
        )


PROVIDER = Hightouch()
