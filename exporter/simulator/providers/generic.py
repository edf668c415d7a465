"""A made-up "pipelines" API that resembles none of the presets, for the generic provider: an API
key in a header of its own, a paginated list that names the pipelines, and a detail request
that alone says what each one is doing, with states that need more than one field.

    {sim}/generic  GET /v2/pipelines[?cursor=&page_size=]  X-Api-Key: <key>
                       {"data": {"pipelines": [{pipeline_id, display_name, connector, paused,
                       owner}], "next_cursor": "..." | null}}, two per page unless asked
                   GET /v2/pipelines/{id}                   the pipeline's run state:
                       {pipeline_id, state: {phase, error}, last_success_at, progress_pct,
                       stats: {rows_done, rows_total}, schedule_minutes, throttle: {retry_in_ms}}

A paused pipeline keeps reporting its last phase (the list says it is paused), and a
pipeline's first run is RUNNING like every other, told apart only by having no last success:
the exporter needs `state_rules` for both. `pl_legacy` reports a phase no mapping names.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from exporter.simulator.catalog import AdHoc, Catalog, cursor_page, limit_of, stretch
from exporter.simulator.clock import MINUTE, Moment, iso_millis
from exporter.simulator.host import Host, WorldView
from exporter.simulator.providers.base import (
    JSON,
    SimProvider,
    config_syncs,
    phrase,
    snake,
    state_of,
)
from exporter.simulator.serving import Handler, admit, answer, one_sync

NAME = "generic"
KEY = "sim-pipelines-key"
PAGE_SIZE = 2

ORDERS = "pl_orders"
EVENTS = "pl_events"
CRM = "pl_crm"
ARCHIVE = "pl_archive"
LEGACY = "pl_legacy"
SPARSE = "pl_sparse"

# The mapping the demo config (and the README's example) gives this API.
MAPPING: dict[str, Any] = {
    "list": {
        "path": "/v2/pipelines",
        "items": "data.pipelines",
        "next": "data.next_cursor",
        "cursor_param": "cursor",
    },
    "detail": "/v2/pipelines/{id}",
    "fields": {
        "id": "pipeline_id",
        "status": "state.phase",
        "last_success": {"path": "last_success_at", "format": "iso"},
        "progress": {"path": "progress_pct", "scale": 100},
        "records_synced": "stats.rows_done",
        "records_expected": "stats.rows_total",
        "interval": {"path": "schedule_minutes", "unit": "m"},
        "backoff": {"path": "throttle.retry_in_ms", "unit": "ms"},
        "error": "state.error.message",
        "name": "display_name",
        "integration": "connector.kind",
    },
    "states": {
        "QUEUED": "initializing",
        "RUNNING": "active",
        "SUCCEEDED": "idle",
        "THROTTLED": "rate_limited",
        "PAUSED": "disabled",
        "FAILED": "errored",
    },
    "state_rules": [
        {"when": "paused", "state": "disabled"},
        {"when": "state.phase == 'RUNNING' && !last_success_at", "state": "initializing"},
    ],
}


@dataclass(frozen=True, slots=True)
class Pipeline:
    """A catalogue pipeline: what the list says about it, and its run lifecycle.

    `kind` picks the lifecycle: `runs` (queued, first run, then incremental runs), `throttled`
    (runs interrupted by a rate limit), `failed`, `steady` (always succeeded), `odd` (a phase
    of its own).
    """

    id: str
    name: str
    connector: str
    kind: str
    team: str = ""
    paused: bool = False
    rows: int = 1000
    schedule: int | None = 30
    detailed: bool = True
    labels: Mapping[str, str] = field(default_factory=dict)

    def summary(self) -> JSON:
        """The pipeline as the list shows it."""
        return {
            "pipeline_id": self.id,
            "display_name": self.name,
            "connector": {"kind": self.connector},
            "paused": self.paused,
            "owner": {"team": self.team},
        }

    def render(self, m: Moment) -> JSON:
        """The detail body at `m`."""
        phase, error, last, done, retry = self._run(m)
        body: JSON = {
            "pipeline_id": self.id,
            "state": {"phase": phase, "error": {"message": error} if error else None},
            "last_success_at": None if last is None else iso_millis(last),
        }
        if self.detailed:
            body["progress_pct"] = round(100.0 * done / self.rows, 1)
            body["stats"] = {"rows_done": done, "rows_total": self.rows}
            body["schedule_minutes"] = self.schedule
            body["throttle"] = {"retry_in_ms": retry} if retry is not None else None
        return body

    def _run(self, m: Moment) -> tuple[str, str, float | None, int, int | None]:
        """(phase, error, last success, rows done, retry in ms) at `m`."""
        if self.kind == "runs":
            k, index, begun = stretch(m, (0.1, 0.4, 0.5))
            last = None if k == 0 else m.at(k - 0.5)
            if index == 0:
                return ("QUEUED" if k == 0 else "RUNNING"), "", last, 0, None
            if index == 1:
                _, f = m.cycle()
                return "RUNNING", "", last, int(self.rows * (f - 0.1) / 0.4), None
            return "SUCCEEDED", "", begun, self.rows, None
        if self.kind == "throttled":
            _, index, begun = stretch(m, (0.5, 0.5), phase=0.3)
            if index == 0:
                left = max(begun + 0.5 * m.period - m.now, 0.0)
                return "THROTTLED", "", m.now - 2 * m.period, self.rows // 2, int(left * 1000)
            return "RUNNING", "", m.now - 2 * m.period, self.rows // 2, None
        if self.kind == "failed":
            return (
                "FAILED",
                "warehouse refused the load: disk quota exceeded",
                m.now - 3 * m.period,
                0,
                None,
            )
        if self.kind == "odd":
            return "MIGRATING", "", m.now - 10 * MINUTE, self.rows, None
        return "SUCCEEDED", "", m.now - 5 * MINUTE, self.rows, None


def demo_pipelines() -> list[Pipeline]:
    """Six pipelines over three pages: every canonical state, composite ones included."""
    return [
        Pipeline(
            ORDERS, "Orders to warehouse", "postgres", "runs", "data", labels={"team": "data"}
        ),
        Pipeline(EVENTS, "Clickstream events", "segment", "throttled", "growth"),
        Pipeline(CRM, "CRM contacts", "salesforce", "failed", "sales"),
        Pipeline(ARCHIVE, "Archive export", "s3", "steady", "data", paused=True),
        Pipeline(LEGACY, "Legacy ledger", "oracle", "odd", "finance"),
        Pipeline(SPARSE, "Spreadsheet import", "sheets", "steady", "ops", detailed=False),
    ]


class PipelinesWorld(Catalog):
    """The pipelines API's part of a world: the key and the pipelines."""

    extras = frozenset({"summary"})

    def __init__(self, pipelines: list[Pipeline], key: str = KEY) -> None:
        super().__init__(pipelines)
        self.key = key

    def summary(self, sync_id: str) -> JSON:
        """What the list says about the pipeline (an ad-hoc one: its `summary`, if given)."""
        entry = self.entry(sync_id)
        if isinstance(entry, Pipeline):
            return entry.summary()
        extra = entry.extra.get("summary") if isinstance(entry, AdHoc) else None
        return {"pipeline_id": sync_id, **(extra if isinstance(extra, dict) else {})}


def _state(world: WorldView) -> PipelinesWorld:
    return state_of(world, NAME, PipelinesWorld)


class Pipelines(SimProvider):
    """The made-up pipelines API behind `/generic`."""

    name = NAME
    prefix = "/generic"
    list_path = "/v2/pipelines"
    rank = 40

    def demo(self, options: Mapping[str, Any]) -> PipelinesWorld:
        """Six pipelines of five teams."""
        return PipelinesWorld(demo_pipelines())

    def error_body(self, status: int, detail: str, retry_after: str | None = None) -> JSON:
        """An invented error shape, as the API is."""
        return {"error": {"code": snake(phrase(status)), "message": detail}}

    def routes(self, sim: Host) -> list[web.RouteDef]:
        """The list and the detail request."""
        return [
            web.get(f"{self.prefix}{self.list_path}", self._list(sim)),
            web.get(
                f"{self.prefix}{self.list_path}/{{id}}",
                one_sync(sim, self, "no pipeline {id}", check=self._refused),
            ),
        ]

    def _refused(self, world: WorldView, request: web.Request) -> web.Response | None:
        state = _state(world)
        if request.headers.get("X-Api-Key") != state.key:
            return self.error_response(401, "missing or wrong X-Api-Key")
        return None

    def _list(self, sim: Host) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            early, fault = await admit(sim, self, request, check=self._refused)
            if early is not None:
                return early
            state = _state(sim.world)
            m = sim.world.moment(sim.clock())
            every = [state.summary(sync_id) for sync_id in state.ids(m)]
            size = limit_of(request, "page_size", PAGE_SIZE, 50)
            page, following = cursor_page(every, request.query.get("cursor"), size)
            return answer({"data": {"pipelines": list(page), "next_cursor": following}}, fault)

        return handle

    def source(self, base_url: str, world: WorldView, *, discover: bool) -> dict[str, Any] | None:
        """The key in its header and the mapping above; with `discover` only labelled
        pipelines are listed in `syncs`, without every one."""
        state = _state(world)
        ids = world.ids(NAME)
        if not ids:
            return None
        source: dict[str, Any] = {
            "name": f"{world.name}-{NAME}",
            "provider": "generic",
            "base_url": base_url,
            "auth": {"header": "X-Api-Key", "token": state.key},
        }
        if discover:
            source["discover"] = True
        source["label_from"] = {"owner_team": "owner.team"}
        source["generic"] = copy.deepcopy(MAPPING)
        syncs = config_syncs(state, ids, discover=discover)
        if syncs:
            source["syncs"] = syncs
        return source


PROVIDER = Pipelines()
