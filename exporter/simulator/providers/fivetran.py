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

import hashlib
import hmac
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
    derived_uuid,
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
WEBHOOK_SECRET = "sim-fivetran-webhook-secret"


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
        # invented: times move only when a run ends (one success per period, the last failure
        # days before the world began), so a poll never sees a run that did not happen.
        succeeded: float | None = stretch(m, (1.0,))[2] - 20 * MINUTE
        failed: float | None = m.started_at - 3 * DAY
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
            # invented: a failing connection's times hold for a period (one failed run each),
            # so a poll sees a run end only when one did.
            cycle = stretch(m, (1.0,))[2]
            setup, succeeded, failed = "broken", cycle - 2 * DAY, cycle - HOUR
            tasks = [{"code": "reconnect", "message": "Reconnect: the OAuth token was revoked"}]
        elif self.kind == "paused":
            sync, succeeded = "paused", m.started_at - 20 * MINUTE
        elif self.kind == "manual":
            succeeded = m.started_at - 4 * DAY
        elif self.kind == "failing":
            cycle = stretch(m, (1.0,))[2]
            succeeded, failed = cycle - 6 * HOUR, cycle - 30 * MINUTE
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

    webhook_secret = WEBHOOK_SECRET

    def webhook_events(self, sync_id: str, before: JSON | None, after: JSON) -> list[JSON]:
        """sync_end when a sync ends: `succeeded_at` or `failed_at` moving (Fivetran's webhook
        docs: event, created, connector_type, connector_id, destination group, data.status)."""
        return fivetran_events(before, after)

    def webhook_headers(self, body: bytes) -> dict[str, str]:
        """X-Fivetran-Signature-256: the HMAC-SHA256 of the body under the webhook's secret."""
        digest = hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
        # guess: upper-case hex (the docs we read name no case; the exporter reads either).
        return {"X-Fivetran-Signature-256": digest.upper()}


def _failing(body: JSON) -> bool:
    failed, succeeded = body.get("failed_at"), body.get("succeeded_at")
    return isinstance(failed, str) and (not isinstance(succeeded, str) or failed > succeeded)


def fivetran_events(before: JSON | None, after: JSON) -> list[JSON]:
    """The sync_end event for a connection whose sync just ended: it was syncing and its last
    success moved, or its last failure moved past its last success."""
    if before is None:
        return []
    outcome, at = None, None
    was_syncing = (before.get("status") or {}).get("sync_state") == "syncing"
    if was_syncing and after.get("succeeded_at") not in (None, before.get("succeeded_at")):
        outcome, at = "SUCCESSFUL", after["succeeded_at"]
    if _failing(after) and not _failing(before):
        outcome, at = "FAILURE_WITH_TASK", after["failed_at"]
    if outcome is None:
        return []
    data: JSON = {"status": outcome}
    if outcome != "SUCCESSFUL":
        tasks = after.get("status", {}).get("tasks") or []
        # guess: a failed sync's `data.reason` (a client library's docs, not Fivetran's).
        data["reason"] = tasks[0].get("message") if tasks else "simulated failure"
    return [
        {
            "event": "sync_end",
            "created": at,
            "connector_type": after.get("service"),
            "connector_id": after.get("id"),
            "connector_name": after.get("schema"),
            # guess: a sync's own id (a client library lists it; Fivetran's test payload has none).
            "sync_id": derived_uuid(NAME, str(after.get("id")), str(at)),
            "destination_group_id": after.get("group_id"),
            "data": data,
        }
    ]


PROVIDER = Fivetran()
