"""Fivetran: the account's connections, each with a setup state, a sync state and the times of
its last success and failure, behind HTTP Basic auth (API key and secret).

    {sim}/fivetran  GET /v1/connections[?cursor=&limit=]   Basic <key:secret>,
                        Accept: application/json;version=2
                        {"code": "Success", "data": {"items": [...], "next_cursor": "..."}}
                        (`next_cursor` absent on the last page; 100 a page unless asked)
                    GET /v1/connections/{id}                {"code": "Success", "data": {...}}

Shapes follow Fivetran's public REST API reference: a connection's `paused`,
`sync_frequency` (minutes), `schedule_type` (auto, or manual: syncs only when triggered),
`succeeded_at`, `failed_at`, and `status` with `setup_state` (incomplete, connected,
broken), `sync_state` (scheduled, syncing, paused, rescheduled), `update_state`
(on_schedule, or delayed: the data is later than expected), `is_historical_sync`, `tasks`
and `warnings`. Guesses, marked as such:
`status.rescheduled_for` as the time a rescheduled sync resumes; a request without one
Accept header holding `version=2` is refused here (Fivetran would answer an older shape, or
pick either of two), so a preset or client that loses the header fails its test; the error
body's `code` values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from exporter.simulator.catalog import Catalog, basic, cursor_page, limit_of, stretch
from exporter.simulator.clock import DAY, HOUR, MINUTE, Moment, iso_millis
from exporter.simulator.host import Host, WorldView
from exporter.simulator.providers.base import (
    JSON,
    SimProvider,
    phrase,
    preset_source,
    state_of,
)
from exporter.simulator.serving import Handler, admit, answer, one_sync

NAME = "fivetran"
API_KEY = "sim-fivetran-key"
API_SECRET = "sim-fivetran-secret"
GROUP = "projected_sickle_sim"

SALESFORCE = "brisk_heron"
HUBSPOT = "calm_otter"
STRIPE = "eager_lynx"
ZENDESK = "gentle_moose"
POSTGRES = "quiet_badger"
NETSUITE = "steady_walrus"
SHEETS = "tidy_heron"


@dataclass(frozen=True, slots=True)
class Connection:
    """A catalogue connection and its lifecycle (`kind`): `scheduled` (syncs every period),
    `historical` (a first historical sync, then scheduled), `rescheduled` (waiting for the
    source's API quota part of the time), `broken` (setup broken, a task asks to reconnect),
    `paused`, `failing` (connected, but the last sync failed after the last success, its data
    delayed), `manual` (syncs only when triggered: last done days ago)."""

    id: str
    service: str
    schema: str
    kind: str
    frequency: int = 60
    labels: Mapping[str, str] = field(default_factory=dict)

    def render(self, m: Moment) -> JSON:
        """The connection object at `m`."""
        setup, sync, historical = "connected", "scheduled", False
        succeeded: float | None = m.now - 20 * MINUTE
        failed: float | None = m.now - 3 * DAY
        tasks: list[JSON] = []
        resume: float | None = None
        if self.kind == "scheduled":
            k, index, begun = stretch(m, (0.3, 0.7))
            sync = "syncing" if index == 0 else "scheduled"
            succeeded = begun if index == 1 else m.at(k - 0.7)
        elif self.kind == "historical":
            k, index, begun = stretch(m, (0.6, 0.4))
            sync = "syncing" if index == 0 else "scheduled"
            historical = k == 0 and index == 0
            if historical:
                succeeded, failed = None, None
            else:
                succeeded = begun if index == 1 else m.at(k - 0.4)
        elif self.kind == "rescheduled":
            _, index, begun = stretch(m, (0.5, 0.5), phase=0.6)
            if index == 0:
                sync, resume = "rescheduled", begun + 0.5 * m.period
        elif self.kind == "broken":
            setup, succeeded, failed = "broken", m.now - 2 * DAY, m.now - HOUR
            tasks = [{"code": "reconnect", "message": "Reconnect: the OAuth token was revoked"}]
        elif self.kind == "paused":
            sync = "paused"
        elif self.kind == "manual":
            succeeded = m.now - 4 * DAY
        elif self.kind == "failing":
            succeeded, failed = m.now - 6 * HOUR, m.now - 30 * MINUTE
        body: JSON = {
            "id": self.id,
            "group_id": GROUP,
            "service": self.service,
            "service_version": 1,
            "schema": self.schema,
            "connected_by": "sim_user",
            "created_at": iso_millis(m.started_at - 30 * DAY),
            "succeeded_at": None if succeeded is None else iso_millis(succeeded),
            "failed_at": None if failed is None else iso_millis(failed),
            "paused": self.kind == "paused",
            "pause_after_trial": False,
            "sync_frequency": self.frequency,
            "schedule_type": "manual" if self.kind == "manual" else "auto",
            "data_delay_sensitivity": "NORMAL",  # the spec's default; required in the detail
            "status": {
                "setup_state": setup,
                "sync_state": sync,
                "update_state": "on_schedule" if self.kind != "failing" else "delayed",
                "is_historical_sync": historical,
                "tasks": tasks,
                "warnings": [],
                "rescheduled_for": None if resume is None else iso_millis(resume),
            },
        }
        # Fivetran's spec types these times as strings, never null: a time not yet is left out.
        for times in (body, body["status"]):
            for key in ("succeeded_at", "failed_at", "rescheduled_for"):
                if key in times and times[key] is None:
                    del times[key]
        return body


def demo_connections() -> list[Connection]:
    """Seven connections, one per case the preset must get right."""
    return [
        Connection(
            SALESFORCE, "salesforce", "salesforce_sales", "scheduled", labels={"team": "sales"}
        ),
        Connection(HUBSPOT, "hubspot", "hubspot_marketing", "historical", frequency=360),
        Connection(STRIPE, "stripe", "stripe_billing", "rescheduled", frequency=30),
        Connection(ZENDESK, "zendesk", "zendesk_support", "broken"),
        Connection(POSTGRES, "postgres", "app_db", "paused", frequency=15),
        Connection(
            NETSUITE, "netsuite_suiteanalytics", "netsuite_finance", "failing", frequency=1440
        ),
        Connection(SHEETS, "google_sheets", "finance_sheets", "manual", frequency=360),
    ]


class FivetranWorld(Catalog):
    """Fivetran's part of a world: the API key and secret, and the connections."""

    def __init__(self, connections: list[Connection]) -> None:
        super().__init__(connections)
        self.key = API_KEY
        self.secret = API_SECRET


def _state(world: WorldView) -> FivetranWorld:
    return state_of(world, NAME, FivetranWorld)


def _enveloped(data: Any) -> JSON:
    """Fivetran's envelope around every successful answer."""
    return {"code": "Success", "data": data}


class Fivetran(SimProvider):
    """Fivetran's REST API behind `/fivetran`."""

    name = NAME
    prefix = "/fivetran"
    list_path = "/v1/connections"
    rank = 50

    def demo(self, options: Mapping[str, Any]) -> FivetranWorld:
        """Seven connections of one destination group."""
        return FivetranWorld(demo_connections())

    def error_body(self, status: int, detail: str, retry_after: str | None = None) -> JSON:
        """Fivetran answers `{code, message}`; these codes are a guess."""
        return {"code": phrase(status).replace(" ", ""), "message": detail}

    def routes(self, sim: Host) -> list[web.RouteDef]:
        """The connection list and one connection's details."""
        return [
            web.get(f"{self.prefix}{self.list_path}", self._list(sim)),
            web.get(
                f"{self.prefix}{self.list_path}/{{id}}",
                one_sync(
                    sim,
                    self,
                    "Connection with id '{id}' doesn't exist",
                    check=self._refused,
                    wrap=_enveloped,
                ),
            ),
        ]

    def _refused(self, world: WorldView, request: web.Request) -> web.Response | None:
        state = _state(world)
        if basic(request) != (state.key, state.secret):
            return self.error_response(401, "Missing or invalid API key and secret")
        accepts = request.headers.getall("Accept", [])
        if len(accepts) != 1 or "version=2" not in accepts[0]:
            return self.error_response(400, "Send one Accept: application/json;version=2")
        return None

    def _list(self, sim: Host) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            early, fault = await admit(sim, self, request, check=self._refused)
            if early is not None:
                return early
            state = _state(sim.world)
            m = sim.world.moment(sim.clock())
            every = [state.body(sync_id, m) for sync_id in state.ids(m)]
            size = limit_of(request, "limit", 100, 1000)
            page, following = cursor_page(every, request.query.get("cursor"), size)
            data: JSON = {"items": list(page)}
            if following is not None:
                data["next_cursor"] = following
            return answer(_enveloped(data), fault)

        return handle

    def source(self, base_url: str, world: WorldView, *, discover: bool) -> dict[str, Any] | None:
        """The preset with the simulator's key and secret."""
        state = _state(world)
        ids = world.ids(NAME)
        if not ids:
            return None
        return preset_source(
            NAME,
            world,
            base_url,
            {"username": state.key, "password": state.secret},
            state,
            ids,
            discover=discover,
        )


PROVIDER = Fivetran()
