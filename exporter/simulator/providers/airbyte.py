"""Airbyte: connections, each watched through its job log, behind an application's access
token (Cloud and self-managed), a static bearer token or Basic auth (older self-managed).

    {sim}/airbyte/v1  POST /applications/token   {"client_id", "client_secret", "grant-type"}
                          -> {"access_token", "token_type": "Bearer", "expires_in"}
                      GET /connections[?limit=&offset=]   {"data": [...], "next": URL, "previous"}
                          (`next` is the absolute URL of the next page; 20 a page unless asked)
                      GET /jobs?connectionId=&orderBy=updatedAt|DESC&limit=1[&offset=]
                          [&status=&jobType=]
                          {"data": [{jobId, status, jobType, startTime, connectionId,
                          lastUpdatedAt, duration, bytesSynced, rowsSynced}], "next", "previous"}
    control           GET|PUT /_sim/airbyte/application   the client id and secret, the tokens'
                          lifetime (`expires_in`, seconds) and how many were issued; PUT
                          {"expires_in"} or {"expire": true} (every issued token expires now)

Shapes follow Airbyte's public API spec (api_sdk.yaml: List connections, List jobs): a
connection's `status` is active, inactive, deprecated or locked, with an optional
`statusReason`; a job's status pending, queued, running, incomplete, failed, succeeded or
cancelled, its `jobType` sync, reset, refresh or clear. The token exchange follows Airbyte's
"Configuring API access" page (JSON body with `grant-type`; tokens last minutes: 3 by the API
reference, 15 by the newer docs). Guesses, marked as such: a malformed `orderBy` is a 400; the
error body `{type, title, detail}`; the fake keeps only a connection's latest job and the
successful one before it.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from exporter.simulator.catalog import AdHoc, Catalog, basic, limit_of, stretch
from exporter.simulator.clock import HOUR, MINUTE, Moment, iso_seconds
from exporter.simulator.host import Host, WorldView
from exporter.simulator.providers.base import (
    JSON,
    SimProvider,
    derived_uuid,
    phrase,
    preset_source,
    state_of,
)
from exporter.simulator.serving import Handler, admit, answer, bearer, json_response

NAME = "airbyte"
TOKEN = "sim-airbyte-token"
USER, PASSWORD = "airbyte", "sim-airbyte-password"
CLIENT_ID = "sim-airbyte-application"
CLIENT_SECRET = "sim-airbyte-client-secret"
# 3 minutes, as Airbyte's API reference says of Cloud tokens.
TOKEN_LIFETIME = 180.0
JOB_STATUSES = frozenset(
    {"pending", "queued", "running", "incomplete", "failed", "succeeded", "cancelled"}
)
JOB_TYPES = frozenset({"sync", "reset", "refresh", "clear"})
WORKSPACE = derived_uuid(NAME, "workspace")
_ORDER = re.compile(r"(createdAt|updatedAt)\|(ASC|DESC)")

WAREHOUSE = derived_uuid(NAME, "postgres-snowflake")
BILLING = derived_uuid(NAME, "stripe-bigquery")
CRM = derived_uuid(NAME, "salesforce-s3")
NEW = derived_uuid(NAME, "notion-postgres")
OLD = derived_uuid(NAME, "mysql-redshift")
LOCKED = derived_uuid(NAME, "hubspot-postgres")


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
    reason: str | None = None

    def summary(self) -> JSON:
        """The connection as the list shows it."""
        reason = {} if self.reason is None else {"statusReason": self.reason}
        return {
            **reason,
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
    """Six connections, one of them inactive and one locked."""
    return [
        AirbyteConnection(WAREHOUSE, "Postgres → Snowflake", "runs", labels={"team": "data"}),
        AirbyteConnection(BILLING, "Stripe → BigQuery", "failed"),
        AirbyteConnection(CRM, "Salesforce → S3", "retrying"),
        AirbyteConnection(NEW, "Notion → Postgres", "new"),
        AirbyteConnection(OLD, "MySQL → Redshift", "runs", status="inactive"),
        AirbyteConnection(
            LOCKED,
            "HubSpot → Postgres",
            "runs",
            status="locked",
            reason="The workspace is out of credits",  # invented: statusReason's wording
        ),
    ]


class AirbyteWorld(Catalog):
    """Airbyte's part of a world: the credentials and the connections."""

    extras = frozenset({"name", "status", "statusReason", "jobs"})

    def __init__(self, connections: list[AirbyteConnection]) -> None:
        super().__init__(connections)
        self.token = TOKEN
        self.lifetime = TOKEN_LIFETIME
        self.issued: dict[str, float] = {}
        self.issued_count = 0

    def issue(self) -> tuple[str, float]:
        """A new access token and its lifetime; it is refused once the lifetime is over."""
        self.issued_count += 1
        token = f"sim-airbyte-access-{self.issued_count}-{secrets.token_urlsafe(12)}"
        self.issued[token] = time.monotonic() + self.lifetime
        return token, self.lifetime

    def token_state(self, token: str | None) -> str:
        """`static`, `live`, `expired` or `unknown`."""
        if token == self.token:
            return "static"
        until = self.issued.get(token or "")
        if until is None:
            return "unknown"
        return "live" if time.monotonic() < until else "expired"

    def _forget(self) -> None:
        super()._forget()
        self.lifetime = TOKEN_LIFETIME
        self.issued.clear()
        self.issued_count = 0

    def summary(self, sync_id: str) -> JSON:
        """The connection as the list shows it (an ad-hoc one: its `name` and `status`)."""
        entry = self.entry(sync_id)
        if isinstance(entry, AirbyteConnection):
            return entry.summary()
        extra = entry.extra if isinstance(entry, AdHoc) else {}
        reason = {"statusReason": extra["statusReason"]} if "statusReason" in extra else {}
        return {
            "connectionId": sync_id,
            "name": extra.get("name", sync_id),
            "sourceId": derived_uuid(sync_id, "source"),
            "destinationId": derived_uuid(sync_id, "destination"),
            "workspaceId": WORKSPACE,
            "status": extra.get("status", "active"),
            "schedule": {"scheduleType": "manual"},
            "configurations": {"streams": []},
            "createdAt": 1_700_000_000,
            "tags": [],
            **reason,
        }

    def log(self, sync_id: str, m: Moment) -> list[JSON]:
        """The connection's jobs, newest first; the newest is the sync's (overridable) body."""
        latest = self.body(sync_id, m) or {}
        entry = self.entry(sync_id)
        if isinstance(entry, AdHoc):
            older = [job for job in entry.extra.get("jobs", []) if isinstance(job, dict)]
        else:
            older = entry.jobs(m)[1:] if isinstance(entry, AirbyteConnection) else []
        return ([latest] if latest else []) + older


def _state(world: WorldView) -> AirbyteWorld:
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

    def demo(self, options: Mapping[str, Any]) -> AirbyteWorld:
        """Five connections of one workspace."""
        return AirbyteWorld(demo_connections())

    def error_body(self, status: int, detail: str, retry_after: str | None = None) -> JSON:
        """A guess at Airbyte's problem-details shape."""
        return {"type": "about:blank", "title": phrase(status), "detail": detail}

    def routes(self, sim: Host) -> list[web.RouteDef]:
        """The token exchange, the connection list and the job log."""
        return [
            web.post(f"{self.prefix}/applications/token", self._token(sim)),
            web.get(f"{self.prefix}/connections", self._connections(sim)),
            web.get(f"{self.prefix}/jobs", self._jobs(sim)),
        ]

    def _refused(self, world: WorldView, request: web.Request) -> web.Response | None:
        state = _state(world)
        if basic(request) == (USER, PASSWORD):
            return None
        known = state.token_state(bearer(request))
        if known == "expired":
            return self.error_response(401, "The access token has expired")
        if known == "unknown":
            return self.error_response(401, "Invalid or expired credentials")
        return None

    def _token(self, sim: Host) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            early, _ = await admit(sim, self, request)
            if early is not None:
                return early
            if request.content_type != "application/json":
                # guess: Airbyte documents a JSON body only; other bodies are refused here.
                return self.error_response(400, "the body must be JSON")
            try:
                body = await request.json()
            except ValueError:
                return self.error_response(400, "the body is not JSON")
            if not isinstance(body, dict):
                return self.error_response(400, "the body must be a JSON object")
            # guess: the docs' older example leaves grant-type out, so it is optional here.
            grant = body.get("grant-type", "client_credentials")
            if grant != "client_credentials":
                return self.error_response(400, "grant-type must be client_credentials")
            if (body.get("client_id"), body.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET):
                # guess: the status and wording of a refused application.
                return self.error_response(401, "Invalid client credentials")
            token, lifetime = _state(sim.world).issue()
            return json_response(
                {"access_token": token, "token_type": "Bearer", "expires_in": lifetime}
            )

        return handle

    def control_routes(self, sim: Host) -> list[web.RouteDef]:
        """`GET|PUT /_sim/airbyte/application`: the application and its tokens' lifetime."""

        def shown() -> web.Response:
            state = _state(sim.world)
            return json_response(
                {
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "expires_in": state.lifetime,
                    "issued": state.issued_count,
                }
            )

        async def show(request: web.Request) -> web.StreamResponse:
            return shown()

        async def change(request: web.Request) -> web.StreamResponse:
            state = _state(sim.world)
            try:
                body = await request.json()
            except ValueError:
                body = None
            if not isinstance(body, dict):
                return json_response({"error": "a JSON object is required"}, 400)
            lifetime = body.get("expires_in")
            if lifetime is not None:
                if isinstance(lifetime, bool) or not isinstance(lifetime, int | float):
                    return json_response({"error": "expires_in must be a number"}, 400)
                state.lifetime = float(lifetime)
            if body.get("expire"):
                state.issued = dict.fromkeys(state.issued, 0.0)
            return shown()

        return [
            web.get("/_sim/airbyte/application", show),
            web.put("/_sim/airbyte/application", change),
        ]

    def _connections(self, sim: Host) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            early, fault = await admit(sim, self, request, check=self._refused)
            if early is not None:
                return early
            state = _state(sim.world)
            m = sim.world.moment(sim.clock())
            every = [state.summary(sync_id) for sync_id in state.ids(m)]
            return answer(_paged(request, every, 20), fault)

        return handle

    def _jobs(self, sim: Host) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            connection = request.query.get("connectionId")
            early, fault = await admit(sim, self, request, connection, check=self._refused)
            if early is not None:
                return early
            state = _state(sim.world)
            order = request.query.get("orderBy", "createdAt|DESC")
            if not _ORDER.fullmatch(order):
                return self.error_response(
                    400, "orderBy must be createdAt or updatedAt, |ASC or |DESC"
                )
            wanted = request.query.get("status")
            kind = request.query.get("jobType")
            if wanted is not None and wanted not in JOB_STATUSES:
                return self.error_response(400, f"status must be one of {sorted(JOB_STATUSES)}")
            if kind is not None and kind not in JOB_TYPES:
                return self.error_response(400, f"jobType must be one of {sorted(JOB_TYPES)}")
            m = sim.world.moment(sim.clock())
            if connection is None:
                ids = state.ids(m)
            elif state.has(connection, m):
                ids = [connection]
            else:
                return self.error_response(404, f"Connection {connection} not found")
            jobs = [
                job
                for sync_id in ids
                for job in state.log(sync_id, m)
                if (wanted is None or job.get("status") == wanted)
                and (kind is None or job.get("jobType") == kind)
            ]
            key = "lastUpdatedAt" if order.startswith("updatedAt") else "startTime"
            jobs.sort(key=lambda job: str(job.get(key, "")), reverse=order.endswith("DESC"))
            return answer(_paged(request, jobs, 20), fault)

        return handle

    def source(self, base_url: str, world: WorldView, *, discover: bool) -> dict[str, Any] | None:
        """The preset with the application's client credentials."""
        state = _state(world)
        ids = world.ids(NAME)
        if not ids:
            return None
        credentials = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
        auth = {"client_credentials": credentials}
        return preset_source(NAME, world, base_url, auth, state, ids, discover=discover)


PROVIDER = Airbyte()
