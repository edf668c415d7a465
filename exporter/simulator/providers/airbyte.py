"""Airbyte: connections, each watched through its job log, behind a bearer token (Cloud) or
Basic auth (a self-managed instance).

    {sim}/airbyte/v1  GET /connections[?limit=&offset=]   {"data": [...], "next": URL, "previous"}
                          (`next` is the absolute URL of the next page; 20 a page unless asked)
                      GET /jobs?connectionId=&orderBy=updatedAt|DESC&limit=1[&offset=]
                          {"data": [{jobId, status, jobType, startTime, connectionId,
                          lastUpdatedAt, duration, bytesSynced, rowsSynced}], "next", "previous"}

Shapes follow Airbyte's public API reference (List connections, List jobs): a connection's
`status` is active, inactive or deprecated; a job's status pending, running, incomplete,
failed, succeeded or cancelled. Guesses, marked as such: a malformed `orderBy` is a 400; the
error body `{type, title, detail}`; the fake keeps only a connection's latest job and the
successful one before it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from exporter.simulator.catalog import AdHoc, Catalog, basic, limit_of, stretch
from exporter.simulator.clock import HOUR, MINUTE, Moment, iso_seconds
from exporter.simulator.providers.base import (
    JSON,
    SimProvider,
    config_syncs,
    derived_uuid,
    phrase,
    state_of,
)
from exporter.simulator.serving import Handler, admit, answer, bearer

if TYPE_CHECKING:
    from exporter.simulator.app import Simulator
    from exporter.simulator.world import World

NAME = "airbyte"
TOKEN = "sim-airbyte-token"
USER, PASSWORD = "airbyte", "sim-airbyte-password"
WORKSPACE = derived_uuid(NAME, "workspace")
_ORDER = re.compile(r"^(createdAt|updatedAt)\|(ASC|DESC)$")

WAREHOUSE = derived_uuid(NAME, "postgres-snowflake")
BILLING = derived_uuid(NAME, "stripe-bigquery")
CRM = derived_uuid(NAME, "salesforce-s3")
NEW = derived_uuid(NAME, "notion-postgres")
OLD = derived_uuid(NAME, "mysql-redshift")


@dataclass(frozen=True, slots=True)
class AirbyteConnection:
    """A connection and its job log's lifecycle (`kind`): `runs` (a job every period, running
    then succeeded), `failed` (the latest job failed), `retrying` (an incomplete attempt, then
    running again), `new` (no job yet)."""

    id: str
    name: str
    kind: str
    status: str = "active"
    rows: int = 5000
    labels: Mapping[str, str] = field(default_factory=dict)

    def summary(self) -> JSON:
        """The connection as the list shows it."""
        return {
            "connectionId": self.id,
            "name": self.name,
            "sourceId": derived_uuid(self.id, "source"),
            "destinationId": derived_uuid(self.id, "destination"),
            "workspaceId": WORKSPACE,
            "status": self.status,
            "schedule": {"scheduleType": "basic", "basicTiming": "Every 24 hours"},
            "createdAt": 1_700_000_000,
            "configurations": {"streams": []},  # required by Airbyte's spec; no streams shown
            "tags": [],
        }

    def render(self, m: Moment) -> JSON:
        """The latest job at `m` ({} when there is none)."""
        latest = self.jobs(m)
        return latest[0] if latest else {}

    def jobs(self, m: Moment) -> list[JSON]:
        """The job log, newest first."""
        if self.kind == "new":
            return []
        k, index, begun = stretch(m, (0.3, 0.7), phase=0.2 if self.kind == "runs" else 0.0)
        number = 1000 + 10 * max(k, 0)
        previous = self._job(number - 1, "succeeded", begun - HOUR, begun - HOUR + 4 * MINUTE)
        if self.kind == "failed":
            latest = self._job(number, "failed", begun - 30 * MINUTE, begun - 25 * MINUTE, 0)
        elif self.kind == "retrying":
            latest = self._job(number, "incomplete" if index == 0 else "running", begun, m.now, 0)
        elif index == 0:
            latest = self._job(number, "running", begun, m.now, self.rows // 3)
        else:
            latest = self._job(number, "succeeded", begun, begun)
        return [latest, previous]

    def _job(
        self, number: int, status: str, start: float, updated: float, rows: int | None = None
    ) -> JSON:
        rows = self.rows if rows is None else rows
        seconds = max(int(updated - start), 0)
        return {
            "jobId": number,
            "status": status,
            "jobType": "sync",
            "startTime": iso_seconds(start),
            "connectionId": self.id,
            "lastUpdatedAt": iso_seconds(updated),
            "duration": f"PT{seconds // 60}M{seconds % 60}S",
            "bytesSynced": rows * 180,
            "rowsSynced": rows,
        }


def demo_connections() -> list[AirbyteConnection]:
    """Five connections, one of them inactive (the preset does not watch it)."""
    return [
        AirbyteConnection(WAREHOUSE, "Postgres → Snowflake", "runs", labels={"team": "data"}),
        AirbyteConnection(BILLING, "Stripe → BigQuery", "failed"),
        AirbyteConnection(CRM, "Salesforce → S3", "retrying"),
        AirbyteConnection(NEW, "Notion → Postgres", "new"),
        AirbyteConnection(OLD, "MySQL → Redshift", "runs", status="inactive"),
    ]


class AirbyteWorld(Catalog):
    """Airbyte's part of a world: the credentials and the connections."""

    extras = frozenset({"name", "status"})

    def __init__(self, connections: list[AirbyteConnection]) -> None:
        super().__init__(connections)
        self.token = TOKEN

    def summary(self, sync_id: str) -> JSON:
        """The connection as the list shows it (an ad-hoc one: its `name` and `status`)."""
        entry = self.entry(sync_id)
        if isinstance(entry, AirbyteConnection):
            return entry.summary()
        extra = entry.extra if isinstance(entry, AdHoc) else {}
        return {
            "connectionId": sync_id,
            "name": extra.get("name", sync_id),
            "workspaceId": WORKSPACE,
            "status": extra.get("status", "active"),
        }

    def log(self, sync_id: str, m: Moment) -> list[JSON]:
        """The connection's jobs, newest first; the newest is the sync's (overridable) body."""
        latest = self.body(sync_id, m) or {}
        entry = self.entry(sync_id)
        older = entry.jobs(m)[1:] if isinstance(entry, AirbyteConnection) else []
        return ([latest] if latest else []) + older


def _state(world: World) -> AirbyteWorld:
    return state_of(world, NAME, AirbyteWorld)


def _offset(request: web.Request) -> int:
    raw = request.query.get("offset", "0")
    if not raw.isdigit():
        raise web.HTTPBadRequest(text="offset must be a whole number")
    return int(raw)


def _paged(request: web.Request, every: list[JSON], default: int) -> JSON:
    """A page of `every` with Airbyte's absolute next and previous URLs."""
    limit = limit_of(request, "limit", default, 100)
    offset = _offset(request)
    body: JSON = {"data": every[offset : offset + limit]}
    if offset + limit < len(every):
        body["next"] = str(request.url.update_query({"limit": limit, "offset": offset + limit}))
    if offset:
        before = max(offset - limit, 0)
        body["previous"] = str(request.url.update_query({"limit": limit, "offset": before}))
    return body


class Airbyte(SimProvider):
    """Airbyte's public API behind `/airbyte/v1`."""

    name = NAME
    prefix = "/airbyte/v1"
    list_path = "/connections"
    rank = 80
    in_bulk = False

    def demo(self, options: Mapping[str, Any]) -> AirbyteWorld:
        """Five connections of one workspace."""
        return AirbyteWorld(demo_connections())

    def bulk(self, count: int, options: Mapping[str, Any]) -> AirbyteWorld:
        """No bulk connections: bulk worlds load the first-class providers only."""
        return AirbyteWorld([])

    def error_body(self, status: int, detail: str, retry_after: str | None = None) -> JSON:
        """A guess at Airbyte's problem-details shape."""
        return {"type": "about:blank", "title": phrase(status), "detail": detail}

    def routes(self, sim: Simulator) -> list[web.RouteDef]:
        """The connection list and the job log."""
        return [
            web.get(f"{self.prefix}/connections", self._connections(sim)),
            web.get(f"{self.prefix}/jobs", self._jobs(sim)),
        ]

    def _refused(self, world: World, request: web.Request) -> web.Response | None:
        state = _state(world)
        if bearer(request) != state.token and basic(request) != (USER, PASSWORD):
            return self.error_response(401, "Invalid or expired credentials")
        return None

    def _connections(self, sim: Simulator) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            early, fault = await admit(sim, self, request, check=self._refused)
            if early is not None:
                return early
            state = _state(sim.world)
            m = sim.world.moment(sim.clock())
            every = [state.summary(sync_id) for sync_id in state.ids(m)]
            return answer(_paged(request, every, 20), fault)

        return handle

    def _jobs(self, sim: Simulator) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            connection = request.query.get("connectionId")
            early, fault = await admit(sim, self, request, connection, check=self._refused)
            if early is not None:
                return early
            state = _state(sim.world)
            order = request.query.get("orderBy", "createdAt|DESC")
            if not _ORDER.match(order):
                return self.error_response(
                    400, "orderBy must be createdAt or updatedAt, |ASC or |DESC"
                )
            m = sim.world.moment(sim.clock())
            if connection is None:
                ids = state.ids(m)
            elif state.has(connection, m):
                ids = [connection]
            else:
                return self.error_response(404, f"Connection {connection} not found")
            jobs = [job for sync_id in ids for job in state.log(sync_id, m)]
            key = "lastUpdatedAt" if order.startswith("updatedAt") else "startTime"
            jobs.sort(key=lambda job: str(job.get(key, "")), reverse=order.endswith("DESC"))
            return answer(_paged(request, jobs, 20), fault)

        return handle

    def source(self, base_url: str, world: World, *, discover: bool) -> dict[str, Any] | None:
        """The preset with a self-managed instance's Basic credentials."""
        state = _state(world)
        ids = world.ids(NAME)
        if not ids:
            return None
        source: dict[str, Any] = {
            "name": f"{world.name}-{NAME}",
            "provider": "generic",
            "preset": NAME,
            "base_url": base_url,
            "auth": {"username": USER, "password": PASSWORD},
        }
        if discover:
            source["discover"] = True
        kept = [sync_id for sync_id in ids if state.summary(sync_id).get("status") == "active"]
        syncs = config_syncs(state, kept, discover=discover)
        if syncs:
            source["syncs"] = syncs
        return source


PROVIDER = Airbyte()
