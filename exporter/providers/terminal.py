"""Terminal: connections, each read through its latest sync job.

What a Terminal customer watches is a *connection*: Terminal runs a new batch sync job (a
new id) for it every couple of hours in automatic mode, and `GET /syncs` is the log of every
job ever run. So with `discover: true` a source lists `GET /connections` with the secret key,
and each connection is one target (its id is the `sync_id` label, stable across jobs) read
with its own `Connection-Token`: `GET /syncs?limit=2` for the latest job, and the latest
*completed* job's `completedAt` as the last success, re-read only when a new job starts.
Configured `syncs:` keep their older meaning: single job ids read with one connection token.

Terminal's spec does not say in which order the log lists jobs: newest first is what has been
seen, so the two newest jobs' `requestedAt` are compared, and a log that turns out oldest
first is read whole. `providerRequests` is in the spec only as a field of the request that
starts a sync (`POST /syncs`), not of the job, so nothing users read is derived from it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr, model_validator

from exporter import values
from exporter.exposition.metrics import Family
from exporter.exposition.targets import Found, Target
from exporter.model import State, SyncStatus
from exporter.providers.base import (
    Adapter,
    BadResponse,
    Http,
    Listing,
    UpstreamError,
    follow_pages,
    listed_id,
    next_cursor,
    objects_in,
    path_id,
    require_object,
    with_query,
)
from exporter.schema import (
    FieldError,
    Model,
    PositiveSeconds,
    SourceConfig,
    SyncConfig,
    problems_error,
    secret_from,
)

_STATES = {
    "requested": State.INITIALIZING,
    "in_progress": State.ACTIVE,
    "completed": State.IDLE,
    "failed": State.ERRORED,
}
_CONNECTED = "connected"
# Terminal's spec: a disconnected connection "is no longer authenticated": its user must link
# the account again, so it is a failure to page on; archived and pending_deletion are paused.
_DISCONNECTED = "disconnected"
RELINK = "disconnected: no longer authenticated, ask the customer to link the account again"
_TOKEN = re.compile(r"[\x21-\x7e]{1,16384}")
LIST_PAGE_SIZE = 100

ATTEMPTS = Family(
    "sync_attempts",
    "Number of attempts Terminal made for the sync job (the connection's latest job).",
    field="attempts",
)
ISSUES = Family(
    "sync_issues",
    "Ongoing issues Terminal reports on the sync job: problems short of a failure that may "
    "need someone to act (resolved issues are not counted).",
    field="issues",
)
REQUESTED = Family(
    "sync_requested_timestamp_seconds",
    "Unix time the sync job (the connection's latest job) was requested.",
    field="requested",
)
COMPLETED = Family(
    "sync_completed_timestamp_seconds",
    "Unix time the sync job (the connection's latest job) completed.",
    field="completed",
)


class TerminalAuth(Model):
    """The secret key, and the connection token that configured job ids are read with."""

    token: SecretStr | None = None
    token_file: Path | None = None
    connection_token: SecretStr | None = None
    connection_token_file: Path | None = None

    @model_validator(mode="after")
    def _read_files(self) -> TerminalAuth:
        problems: list[FieldError] = []
        token = connection = None
        try:
            token = secret_from(self.token, self.token_file, "token")
            if token is None:
                problems.append(FieldError("", "token or token_file (the secret key) is required"))
        except ValueError as exc:
            problems.append(FieldError("", str(exc)))
        try:
            connection = secret_from(
                self.connection_token, self.connection_token_file, "connection_token"
            )
        except ValueError as exc:
            problems.append(FieldError("", str(exc)))
        if problems:
            raise problems_error(type(self).__name__, problems)
        object.__setattr__(self, "token", token)
        object.__setattr__(self, "connection_token", connection)
        return self


class ConnectionFilter(Model):
    """Filters `GET /connections` applies on Terminal's side."""

    status: Literal["connected", "disconnected", "archived", "pending_deletion"] | None = None
    tag: str | None = None
    provider: str | None = None
    external_id: str | None = None


class TerminalConfig(SourceConfig[TerminalAuth, SyncConfig]):
    """A Terminal application (secret key): its connections, or single jobs of one connection."""

    provider: Literal["terminal"]
    connections: ConnectionFilter = ConnectionFilter()
    # Automatic mode's cadence: Terminal documents "a regular cadence", seen as every
    # couple of hours; the staleness budget of a connection is derived from it.
    sync_interval: PositiveSeconds = 7200.0

    @classmethod
    def problems(cls, values: Mapping[str, Any], raw: Mapping[str, Any]) -> Iterator[FieldError]:
        """Configured job ids are read with a connection token, which auth must then hold."""
        yield from super().problems(values, raw)
        auth = values.get("auth")
        if values.get("syncs") and auth is not None and auth.connection_token is None:
            yield FieldError(
                "auth.connection_token",
                "is required to read the configured sync job ids (or use discover: true to "
                "watch every connection with the secret key alone)",
            )


@dataclass(frozen=True, slots=True)
class Connection:
    """A listed connection: what the listing says, and its token (a secret)."""

    id: str
    status: str
    mode: str
    company: str
    provider: str
    token: str = field(repr=False)
    # The listed item (without its token) only for label_from, whose expressions may read it.
    item: dict[str, Any] | None = field(default=None, repr=False)


def _connection(item: dict[str, Any], keep: bool) -> Connection:
    company = item.get("company")
    provider = item.get("provider")
    token = values.text(item.get("token"))
    return Connection(
        id=listed_id(item),
        status=values.text(item.get("status")),
        mode=values.text(item.get("syncMode")) or "automatic",
        company=values.text(company.get("name")) if isinstance(company, dict) else "",
        provider=values.text(provider.get("code")) if isinstance(provider, dict) else "",
        token=token if _TOKEN.fullmatch(token) else "",
        item={key: value for key, value in item.items() if key != "token"} if keep else None,
    )


def _ongoing(issues: list[Any]) -> list[Any]:
    """Issue ids (not expanded) all count; expanded issues count while `ongoing`."""
    return [
        issue
        for issue in issues
        if not isinstance(issue, dict) or values.text(issue.get("status")) in ("ongoing", "")
    ]


def _issue_code(issues: list[Any]) -> str:
    for issue in issues:
        if isinstance(issue, dict) and isinstance(issue.get("error"), dict):
            return values.text(issue["error"].get("code"))
    return ""


def parse(body: Any) -> SyncStatus:
    """Map a Get Sync Job Status response to SyncStatus; issues may be ids or expanded objects."""
    data = require_object(body)
    status = data["status"]
    state = _STATES.get(status.lower(), State.UNKNOWN)
    progress = values.number(data.get("progress"))
    issues = data.get("issues")
    ongoing = _ongoing(issues) if isinstance(issues, list) else None
    return SyncStatus(
        state=state,
        provider_status=status,
        info={"job_id": values.text(data.get("id"))},
        progress_ratio=None if progress is None else progress / 100.0,
        error_reason=values.text(data.get("failureReason")) or _issue_code(ongoing or []),
        values={
            ATTEMPTS.field: values.number(data.get("attempts")),
            ISSUES.field: None if ongoing is None else float(len(ongoing)),
            REQUESTED.field: values.timestamp(data.get("requestedAt")),
            COMPLETED.field: values.timestamp(data.get("completedAt")),
        },
    )


class Terminal(Adapter[TerminalConfig]):
    """A Terminal source: connections found with the secret key, or configured job ids."""

    name = "terminal"
    default_base_url = "https://api.withterminal.com/tsp/v1"
    config_model = TerminalConfig
    families = (ATTEMPTS, ISSUES, REQUESTED, COMPLETED)
    info_labels = ("job_id", "sync_mode")
    # Terminal's Webhook Events (its OpenAPI definition) name themselves in `type`, and carry
    # the connection and the sync job under `detail`. guess: `event`, read too, as before.
    webhook_event = "type || event"
    # A connection's id: the sync id of discovered connections.
    webhook_id = "detail.connection.id"
    webhook_outcome = (
        "(type || event) == 'sync.completed' && 'succeeded'"
        " || (type || event) == 'sync.failed' && 'failed'"
    )
    # A connection's status comes from the listing: its events list again.
    webhook_relist = "starts_with(type || event || '', 'connection.')"
    # The run is the job; guess: `detail.job`, read too, as before.
    webhook_run = "detail.sync.id || detail.job.id"
    webhook_events = (
        "sync.requested",
        "sync.started",
        "sync.completed",
        "sync.failed",
        "connection.first_sync_completed",
        "issue.reported",
        "issue.resolved",
        "connection.disconnected",
    )

    def _headers(self, connection_token: str) -> dict[str, str]:
        assert self.config.auth.token is not None
        return {
            "Authorization": f"Bearer {self.config.auth.token.get_secret_value()}",
            "Connection-Token": connection_token,
        }

    async def discover(self, http: Http) -> Listing:
        """`GET /connections`, every page, with the filters the config gives."""
        assert self.config.auth.token is not None
        headers = {"Authorization": f"Bearer {self.config.auth.token.get_secret_value()}"}
        wanted = self.config.connections

        async def page(cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
            url = with_query(
                f"{self.base_url}/connections",
                limit=LIST_PAGE_SIZE,
                status=wanted.status,
                tag=wanted.tag,
                provider=wanted.provider,
                externalId=wanted.external_id,
                cursor=cursor,
            )
            body = require_object(await http.get(url, headers, listing=True), status=False)
            return objects_in(body.get("results"), "connections"), next_cursor(body)

        try:
            items = await follow_pages(page)
        except UpstreamError as exc:
            return {"": exc}
        except BadResponse as exc:
            return {"": UpstreamError("bad_response", str(exc))}
        found = []
        for item in items:
            connection = _connection(item, bool(self.label_from))
            found.append(Found(connection.id, context=connection))
        return {"": found}

    async def read(self, target: Target, http: Http) -> SyncStatus:
        """A connection's latest job, or one configured job."""
        if isinstance(target.context, Connection):
            return await self._read_connection(target, target.context, http)
        token = self.config.auth.connection_token
        assert token is not None
        url = f"{self.base_url}/syncs/{path_id(target.sync_id)}?expand=issues"
        return parse(await http.get(url, self._headers(token.get_secret_value())))

    async def _read_connection(
        self, target: Target, connection: Connection, http: Http
    ) -> SyncStatus:
        manual = connection.mode == "manual"
        info = {
            "name": connection.company,
            "integration": connection.provider,
            "sync_mode": connection.mode,
            "job_id": "",
            **self.described(connection.item or {}),
        }
        if connection.status == _DISCONNECTED:
            status = SyncStatus(
                State.ERRORED, provider_status=connection.status, info=info, error_reason=RELINK
            )
        elif connection.status != _CONNECTED:
            status = SyncStatus(State.DISABLED, provider_status=connection.status, info=info)
        elif not connection.token:
            raise BadResponse("the connection was listed without a usable token")
        else:
            status = await self._latest(target, connection, http)
            status.info = {**info, **status.info}
        status.interval_seconds = None if manual else self.config.sync_interval
        status.on_demand = manual
        return status

    async def _latest(self, target: Target, connection: Connection, http: Http) -> SyncStatus:
        """The latest job's status, with the last completed job's time as the last success."""
        headers = self._headers(connection.token)
        log = f"{self.base_url}/syncs"
        body = await http.get(with_query(log, limit=2, expand="issues"), headers, listing=True)
        jobs = objects_in(require_object(body, status=False).get("results"), "sync jobs")
        memory = target.memory
        if not jobs:
            # Connected, and no job has run yet: the first one is pending.
            return SyncStatus(State.INITIALIZING, provider_status="", info={})
        if len(jobs) > 1 and _requested(jobs[0]) < _requested(jobs[1]):
            return await self._from_whole_log(target, http, headers)
        latest = jobs[0]
        status = parse(latest)
        latest_id = listed_id(latest)
        if status.provider_status == "completed":
            memory["completed"] = values.timestamp(latest.get("completedAt"))
        elif memory.get("latest") != latest_id or "completed" not in memory:
            done = await http.get(
                with_query(log, status="completed", limit=1), headers, listing=True
            )
            finished = objects_in(require_object(done, status=False).get("results"), "sync jobs")
            memory["completed"] = (
                values.timestamp(finished[0].get("completedAt")) if finished else None
            )
        memory["latest"] = latest_id
        return _with_last_success(status, memory["completed"])

    async def _from_whole_log(
        self, target: Target, http: Http, headers: Mapping[str, str]
    ) -> SyncStatus:
        """A log listed oldest first: every page, the latest job and last completion from all."""
        log = f"{self.base_url}/syncs"

        async def page(cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
            url = with_query(log, limit=LIST_PAGE_SIZE, expand="issues", cursor=cursor)
            body = require_object(await http.get(url, headers, listing=True), status=False)
            return objects_in(body.get("results"), "sync jobs"), next_cursor(body)

        jobs = await follow_pages(page)
        if not jobs:
            return SyncStatus(State.INITIALIZING, provider_status="", info={})
        # Of jobs requested at the same time (or with no time), the one listed last is newest.
        latest = max(reversed(jobs), key=_requested)
        completed = [
            when
            for job in jobs
            if values.text(job.get("status")) == "completed"
            and (when := values.timestamp(job.get("completedAt"))) is not None
        ]
        target.memory["latest"] = listed_id(latest)
        target.memory["completed"] = max(completed, default=None)
        return _with_last_success(parse(latest), target.memory["completed"])


def _requested(job: Mapping[str, Any]) -> float:
    """When a job was requested (-inf when it does not say): how jobs are ordered."""
    when = values.timestamp(job.get("requestedAt"))
    return -math.inf if when is None else when


def _with_last_success(status: SyncStatus, completed: float | None) -> SyncStatus:
    """The latest job's status with the last completion, which also tells a next run from a
    first one."""
    status.last_synced_timestamp = completed
    if status.state is State.INITIALIZING and completed is not None:
        # A job queued after earlier ones completed is the connection's next run, not a
        # first sync that has not started.
        status.state = State.ACTIVE
    return status


PROVIDER = Terminal
