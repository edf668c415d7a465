"""Terminal: customers watch connections; each connection keeps a log of batch sync jobs and, in
automatic mode, starts a new job (with a new id) on a regular cadence.

    {sim}/terminal/tsp/v1  GET /connections?limit&cursor&status&tag&provider&externalId
                               Bearer <secret key>
                           GET /syncs?limit&cursor&status&expand   the connection's job log,
                               newest first (a connection made with `logOrder: oldest`
                               lists it oldest first); Bearer <secret key> and Connection-Token
                           GET /syncs/{id}?expand=issues           one job of that connection
    control  GET|POST /_sim/terminal/connections,
             GET|PATCH|DELETE /_sim/terminal/connections/{id}
             POST /_sim/syncs/terminal {"id", "body", "connection"?}: a job appended to a log
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web

from exporter.simulator.clock import DAY, HOUR, MINUTE, Moment, iso_millis, parse_iso
from exporter.simulator.host import Host, WorldView
from exporter.simulator.providers.base import (
    JSON,
    ControlError,
    ProviderState,
    SimProvider,
    bulk_id,
    phrase,
    snake,
    spread,
    state_of,
)
from exporter.simulator.serving import Handler, admit, answer, bearer, json_response

NAME = "terminal"
SECRET = "sim-terminal-secret"
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
CONNECTION_STATUSES = ("connected", "disconnected", "archived", "pending_deletion")
SYNC_MODES = ("automatic", "manual")
# guess: Terminal's spec does not say in which order `GET /syncs` lists the log; newest first
# is what has been seen, so it is the default, and oldest first can be asked for.
LOG_ORDERS = ("newest", "oldest")
JOB_STATUSES = ("requested", "in_progress", "completed", "failed")
PROVIDER_NAMES = {
    "geotab": "Geotab",
    "samsara": "Samsara",
    "motive": "Motive",
    "omnitracs": "Omnitracs",
    "verizon": "Verizon Connect",
}
_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    422: "unprocessable_entity",
    429: "too_many_requests",
    500: "internal_server_error",
    501: "not_implemented",
    502: "bad_gateway",
    504: "gateway_timeout",
}
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ANCHOR_MS = 1_704_067_200_000  # 2024-01-01: the time part of generated ids, never a real time
_FAILS_AT = 66.67  # progress of a cadence job that fails, when it gives up
_TOKEN_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

T = TypeVar("T")
Key = tuple[float, str]


def _crockford(number: int, length: int) -> str:
    chars = []
    for _ in range(length):
        number, digit = divmod(number, 32)
        chars.append(_CROCKFORD[digit])
    return "".join(reversed(chars))


def ulid_like(prefix: str, seed: str, ms: int = _ANCHOR_MS) -> str:
    """`<prefix>_` and a ULID (26 characters: 48-bit time, 80 bits) that is a stable function
    of `seed`, so the same world always has the same ids."""
    random = int.from_bytes(hashlib.blake2b(seed.encode(), digest_size=10).digest(), "big")
    return f"{prefix}_{_crockford(ms, 10)}{_crockford(random, 16)}"


def token_of(connection_id: str) -> str:
    """The connection token Terminal would have issued for the connection (`con_tkn_...`)."""
    number = int.from_bytes(hashlib.blake2b(connection_id.encode(), digest_size=24).digest())
    chars = []
    for _ in range(32):
        number, digit = divmod(number, len(_TOKEN_ALPHABET))
        chars.append(_TOKEN_ALPHABET[digit])
    return "con_tkn_" + "".join(chars)


# Demo connections and job ids, stable across runs (tests and docs refer to them).
HEALTHY = "conn_01M7WCBDCMH4QCHFB7DF785KF6"
RECOVERED = ulid_like("conn", "demo:recovered")
FAILING = ulid_like("conn", "demo:failing")
DISCONNECTED = ulid_like("conn", "demo:disconnected")
MANUAL = ulid_like("conn", "demo:manual")
WITH_ISSUES = ulid_like("conn", "demo:issues")
HISTORICAL = ulid_like("conn", "demo:historical")
DEFAULT_CONNECTION = ulid_like("conn", "simulator:default")
DEFAULT_CONNECTION_TOKEN = "con_tkn_simulator"
JOB = "sync_01M7WCAP67GWM666TX4H6G7ZRA"
FAILED_JOB = "sync_01M7WCAXXPRAKQM4VEW775FX7B"
ISSUES_JOB = "sync_01M7WCB5N5KYG3J7V546Q4WRC7"
HISTORICAL_JOB = ulid_like("sync", "demo:historical:files")
ONGOING_ISSUE = "isu_01M7WCBN43R6BHXGAVBHF0TXCS"
SECOND_ONGOING_ISSUE = ulid_like("isu", "demo:issues:inaccessible")
RESOLVED_ISSUE = "isu_01M7WCBWVJ8T957C1X7DHNX7J1"


# --- jobs ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Issue:
    """A problem Terminal met while ingesting a connection's data: ids on a job, objects with
    `expand=issues`. Ongoing issues were last reported when the job was requested."""

    id: str
    code: str
    message: str
    first_reported_ago: float
    resolved_ago: float | None = None

    def render(self, connection_id: str, m: Moment, requested_at: float) -> JSON:
        """The `Issue` schema."""
        first = m.started_at - self.first_reported_ago
        if self.resolved_ago is None:
            status, last = "ongoing", max(first, requested_at)
        else:
            status, last = "resolved", m.started_at - self.resolved_ago
        return {
            "id": self.id,
            "status": status,
            "connection": connection_id,
            "error": {"code": self.code, "message": self.message},
            "firstReportedAt": iso_millis(first),
            "lastReportedAt": iso_millis(last),
        }


@dataclass(frozen=True, slots=True)
class JobState:
    """What a sync job is doing at one moment."""

    status: str
    progress: float
    attempts: int
    requested_at: float
    completed_at: float | None = None
    failure_reason: str | None = None


@dataclass(frozen=True, slots=True)
class PastJob:
    """A job requested `requested_ago` seconds before the world started: completed or failed
    long ago, or still `in_progress` (progress gaining `creep` points a period, up to 99).

    `provider_requests` are echoed on the job as `providerRequests`: the spec has them only on
    the request body of `POST /syncs`, so showing them on the job is a guess.
    """

    id: str
    requested_ago: float
    status: str = "completed"
    duration: float = 10 * MINUTE
    progress: float = 100.0
    creep: float = 0.0
    attempts: int = 1
    failure_reason: str | None = None
    issues: tuple[Issue, ...] = ()
    provider_requests: tuple[str, ...] = ()
    lookback: float = DAY

    def state(self, m: Moment) -> JobState:
        """Where the job is at `m`."""
        requested = m.started_at - self.requested_ago
        if self.status == "in_progress":
            progress = min(99.0, round(self.progress + self.creep * m.elapsed / m.period, 2))
            return JobState("in_progress", progress, self.attempts, requested)
        if self.status == "failed":
            return JobState(
                "failed", self.progress, self.attempts, requested, None, self.failure_reason
            )
        return JobState(self.status, 100.0, self.attempts, requested, requested + self.duration)


@dataclass(frozen=True, slots=True)
class Cadence:
    """Automatic mode: a new job every `length` periods (`phase` of the way along at start).
    A job is requested for the first `requested` of its cycle, runs (progress 0 to 100) for
    `running`, then completes, or fails with `failure`. Job 0 may carry a fixed `first_id`."""

    length: float = 1.0
    phase: float = 0.0
    requested: float = 0.1
    running: float = 0.5
    failure: str | None = None
    first_id: str | None = None
    issues: tuple[Issue, ...] = ()

    def current(self, m: Moment) -> tuple[int, float]:
        """Index of the newest job at `m` (negative before the first) and how far it is."""
        return m.cycle(self.length, self.phase)

    def requested_at(self, m: Moment, k: int) -> float:
        """When job `k` was requested."""
        return m.at(k, self.length, self.phase)

    def job_id(self, connection_id: str, k: int) -> str:
        """Job `k`'s id: new for every job, sorting in the order the jobs started."""
        if k == 0 and self.first_id is not None:
            return self.first_id
        return ulid_like("sync", f"{connection_id}:job:{k}", _ANCHOR_MS + k * 1000)

    def state(self, m: Moment, k: int) -> JobState:
        """Where job `k` is at `m` (jobs before the newest have finished)."""
        newest, f = self.current(m)
        if k < newest:
            f = 1.0
        requested = self.requested_at(m, k)
        if f < self.requested:
            return JobState("requested", 0.0, 1, requested)
        if f < self.requested + self.running:
            share = (f - self.requested) / self.running
            if self.failure is None:
                return JobState("in_progress", round(share * 100, 2), 1, requested)
            attempts = 1 + min(2, int(share * 3))
            return JobState("in_progress", round(share * _FAILS_AT, 2), attempts, requested)
        if self.failure is not None:
            return JobState("failed", _FAILS_AT, 3, requested, None, self.failure)
        ended = m.at(k + self.requested + self.running, self.length, self.phase)
        return JobState("completed", 100.0, 1, requested, ended)


@dataclass(frozen=True, slots=True)
class AdHocJob:
    """A job a test appended, whose body never changes; it sorts by its `requestedAt`, or by
    the moment it was added when it has none."""

    id: str
    body: JSON
    requested_at: float


@dataclass(frozen=True, slots=True)
class JobRef:
    """A job in a connection's log: when it was requested and where to render it from."""

    key: Key
    id: str
    job: PastJob | AdHocJob | int


def render_job(
    job_id: str,
    st: JobState,
    connection_id: str,
    m: Moment,
    *,
    issues: Sequence[Issue] = (),
    lookback: float = DAY,
    provider_requests: Sequence[str] = (),
    expand: bool = False,
) -> JSON:
    """The `Sync` schema, fields in the order of Terminal's own example."""
    body: JSON = {"id": job_id, "status": st.status, "requestedAt": iso_millis(st.requested_at)}
    if st.failure_reason is not None:
        body["failureReason"] = st.failure_reason
    body["progress"] = st.progress
    if expand:
        body["issues"] = [issue.render(connection_id, m, st.requested_at) for issue in issues]
    else:
        body["issues"] = [issue.id for issue in issues]
    body["startFrom"] = iso_millis(st.requested_at - lookback)
    if st.completed_at is not None:
        body["completedAt"] = iso_millis(st.completed_at)
    body["attempts"] = st.attempts
    if provider_requests:
        # guess: the spec has `providerRequests` only on POST /syncs, not on the job.
        body["providerRequests"] = [{"type": kind} for kind in provider_requests]
    return body


# --- connections --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConnectionSpec:
    """A connection as the catalogue (or a control request) describes it."""

    id: str
    company: str
    provider: str
    token: str | None = None
    status: str = "connected"
    sync_mode: str = "automatic"
    external_id: str | None = None
    tags: tuple[str, ...] = ()
    created_ago: float = 90 * DAY
    updated_ago: float | None = None
    history: tuple[PastJob, ...] = ()
    cadence: Cadence | None = None
    provider_name: str | None = None
    log_order: str = "newest"


class Connection:
    """A live connection: its spec, the status and mode tests set, and the jobs they appended.

    While it is not connected in automatic mode its cadence starts no jobs; `_gaps` holds the
    cycles it skipped, `(after, before)` (before None: still skipping).
    """

    def __init__(
        self, spec: ConnectionSpec, created_at: float | None = None, m: Moment | None = None
    ) -> None:
        self.spec = spec
        self.token = spec.token or token_of(spec.id)
        self.status = spec.status
        self.sync_mode = spec.sync_mode
        self.created_at = created_at
        self.updated_at = created_at
        self.added: list[AdHocJob] = []
        self._gaps: list[tuple[int, int | None]] = []
        self._index: dict[str, int] = {}
        self._indexed = -1
        if spec.cadence is not None and not self.running():
            self._gaps.append((-1, None))
        elif spec.cadence is not None and m is not None:
            self._gaps.append((-1, spec.cadence.current(m)[0] + 1))
        self._history = {job.id: job for job in spec.history}

    @property
    def id(self) -> str:
        """The connection id (`conn_...`)."""
        return self.spec.id

    def running(self) -> bool:
        """Whether the cadence starts new jobs now."""
        return self.status == "connected" and self.sync_mode == "automatic"

    def change(self, m: Moment, now: float, status: str | None, sync_mode: str | None) -> None:
        """Set the status and/or mode; the cadence stops or resumes (from the next cycle)."""
        was = self.running()
        self.status = status or self.status
        self.sync_mode = sync_mode or self.sync_mode
        self.updated_at = now
        cadence = self.spec.cadence
        if cadence is None or was == self.running():
            return
        newest, _ = cadence.current(m)
        if was:
            self._gaps.append((newest, None))
        elif self._gaps and self._gaps[-1][1] is None:
            self._gaps[-1] = (self._gaps[-1][0], newest + 1)
        else:
            self._gaps.append((-1, newest + 1))

    def _ran(self, k: int) -> bool:
        return not any(after < k and (before is None or k < before) for after, before in self._gaps)

    def created(self, m: Moment) -> float:
        """When the connection was made."""
        if self.created_at is not None:
            return self.created_at
        return m.started_at - self.spec.created_ago

    def updated(self, m: Moment) -> float:
        """When the connection last changed."""
        if self.updated_at is not None:
            return self.updated_at
        if self.spec.updated_ago is not None:
            return m.started_at - self.spec.updated_ago
        return self.created(m) + HOUR

    def render(self, m: Moment) -> JSON:
        """The `Connection` schema."""
        spec = self.spec
        body: JSON = {
            "id": spec.id,
            "status": self.status,
            "provider": {
                "code": spec.provider,
                "name": spec.provider_name or PROVIDER_NAMES.get(spec.provider, spec.provider),
            },
            "company": {"name": spec.company},
            "account": {"name": spec.company},
        }
        if spec.external_id is not None:
            body["externalId"] = spec.external_id
        body["syncMode"] = self.sync_mode
        body["token"] = self.token
        body["tags"] = list(spec.tags)
        # The spec requires `options` but shows no example; its only options are Omnitracs'.
        # guess: a connection without provider options carries an empty object.
        body["options"] = {}
        body["linkUrl"] = f"https://link.withterminal.com/connection/{spec.id}?key=pk_simulator"
        body["options"] = {}  # required by Terminal's spec; no provider-specific options set
        body["createdAt"] = iso_millis(self.created(m))
        body["updatedAt"] = iso_millis(self.updated(m))
        return body

    def _cadence_indexes(self, m: Moment) -> range:
        cadence = self.spec.cadence
        if cadence is None:
            return range(0)
        newest, _ = cadence.current(m)
        return range(max(newest + 1, 0))

    def log(self, m: Moment) -> list[JobRef]:
        """Every job of the connection at `m`, newest first."""
        refs = [
            JobRef((m.started_at - job.requested_ago, f"0:{i:09d}"), job.id, job)
            for i, job in enumerate(self.spec.history)
        ]
        cadence = self.spec.cadence
        if cadence is not None:
            refs += [
                JobRef((cadence.requested_at(m, k), f"1:{k:09d}"), cadence.job_id(self.id, k), k)
                for k in self._cadence_indexes(m)
                if self._ran(k)
            ]
        refs += [
            JobRef((job.requested_at, f"2:{i:09d}"), job.id, job)
            for i, job in enumerate(self.added)
        ]
        refs.sort(key=lambda ref: ref.key, reverse=True)
        return refs

    def find(self, job_id: str, m: Moment) -> JobRef | None:
        """The job `job_id` of this connection at `m`, or None."""
        past = self._history.get(job_id)
        if past is not None:
            return JobRef((m.started_at - past.requested_ago, ""), job_id, past)
        for job in self.added:
            if job.id == job_id:
                return JobRef((job.requested_at, ""), job_id, job)
        cadence = self.spec.cadence
        if cadence is None:
            return None
        indexes = self._cadence_indexes(m)
        while self._indexed + 1 < len(indexes):
            self._indexed += 1
            self._index[cadence.job_id(self.id, self._indexed)] = self._indexed
        k = self._index.get(job_id)
        if k is None or k not in indexes or not self._ran(k):
            return None
        return JobRef((cadence.requested_at(m, k), ""), job_id, k)

    def render_job(self, ref: JobRef, m: Moment, *, expand: bool = False) -> JSON:
        """The job's own body at `m` (no override)."""
        job = ref.job
        if isinstance(job, AdHocJob):
            return dict(job.body)
        if isinstance(job, PastJob):
            return render_job(
                job.id,
                job.state(m),
                self.id,
                m,
                issues=job.issues,
                lookback=job.lookback,
                provider_requests=job.provider_requests,
                expand=expand,
            )
        cadence = self.spec.cadence
        assert cadence is not None
        lookback = cadence.length * m.period
        st = cadence.state(m, job)
        return render_job(
            ref.id, st, self.id, m, issues=cadence.issues, lookback=lookback, expand=expand
        )


class TerminalWorld(ProviderState):
    """Terminal's part of a world: the application's secret key and its connections."""

    def __init__(self, specs: Iterable[ConnectionSpec], secret: str = SECRET) -> None:
        super().__init__()
        self.secret = secret
        self._specs = list(specs)
        ids = [spec.id for spec in self._specs]
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate terminal connection ids")
        self._forget()

    def _forget(self) -> None:
        self.connections: dict[str, Connection] = {}
        self._by_token: dict[str, Connection] = {}
        for spec in self._specs:
            self._add(Connection(spec))

    def _add(self, connection: Connection) -> Connection:
        if connection.id in self.connections:
            raise ControlError(409, f"connection {connection.id!r} exists")
        if connection.token in self._by_token:
            raise ControlError(409, "another connection has that token")
        self.connections[connection.id] = connection
        self._by_token[connection.token] = connection
        return connection

    def add_connection(self, spec: ConnectionSpec, m: Moment) -> Connection:
        """A connection made at `m` (its cadence, if any, starts with the next cycle);
        ControlError 409 if its id or token is taken."""
        return self._add(Connection(spec, m.now, m))

    def by_token(self, token: str | None) -> Connection | None:
        """The connection a Connection-Token selects."""
        return None if token is None else self._by_token.get(token)

    def default_connection(self, m: Moment) -> Connection:
        """The connection of jobs appended without one (token `con_tkn_simulator`), made the
        first time a test needs it."""
        known = self._by_token.get(DEFAULT_CONNECTION_TOKEN)
        if known is not None:
            return known
        spec = ConnectionSpec(
            DEFAULT_CONNECTION,
            "Simulator default connection",
            "geotab",
            token=DEFAULT_CONNECTION_TOKEN,
            sync_mode="manual",
        )
        return self.add_connection(spec, m)

    def listing(self, m: Moment) -> list[tuple[Key, Connection]]:
        """Connections oldest first, keyed for pagination."""
        keyed = [((c.created(m), c.id), c) for c in self.connections.values()]
        keyed.sort(key=lambda pair: pair[0])
        return keyed

    def find(self, job_id: str, m: Moment) -> tuple[Connection, JobRef] | None:
        """The connection holding job `job_id`, and the job."""
        for connection in self.connections.values():
            ref = connection.find(job_id, m)
            if ref is not None:
                return connection, ref
        return None

    def ids(self, m: Moment) -> list[str]:
        """Job ids of every connection, each log newest first."""
        return [ref.id for c in self.connections.values() for ref in c.log(m)]

    def has(self, sync_id: str, m: Moment) -> bool:
        """Whether some connection has the job."""
        return self.find(sync_id, m) is not None

    def has_target(self, target: str, m: Moment) -> bool:
        """Faults aim at a job or at a connection (all requests with its token)."""
        return target in self.connections or self.has(target, m)

    def render(self, sync_id: str, m: Moment, *, expand: bool = False) -> JSON | None:
        """The job's body at `m`, before overrides."""
        found = self.find(sync_id, m)
        if found is None:
            return None
        connection, ref = found
        return connection.render_job(ref, m, expand=expand)

    def add_static(self, sync_id: str, body: JSON, m: Moment, extra: Mapping[str, Any]) -> bool:
        """A job appended to the log of `extra["connection"]` (an id), or of the default
        connection; it replaces an earlier appended job of the same id."""
        unknown = sorted(set(extra) - {"connection"})
        if unknown:
            raise ControlError(400, f"unknown fields: {', '.join(unknown)}")
        target = extra.get("connection")
        if target is None:
            connection = self.default_connection(m)
        elif not isinstance(target, str) or target not in self.connections:
            raise ControlError(404, f"no terminal connection {target!r}")
        else:
            connection = self.connections[target]
        created = True
        for other in self.connections.values():
            kept = [job for job in other.added if job.id != sync_id]
            if len(kept) != len(other.added):
                other.added, created = kept, False
        if created and self.has(sync_id, m):
            raise ControlError(409, f"{sync_id!r} is a catalogue job; pick another id")
        stamp = body.get("requestedAt")
        requested = parse_iso(stamp) if isinstance(stamp, str) else None
        job = AdHocJob(sync_id, dict(body), m.now if requested is None else requested)
        connection.added.append(job)
        self.drop_override(sync_id)
        return created

    def remove_static(self, sync_id: str, m: Moment) -> bool:
        """Take an appended job out of its connection's log."""
        for connection in self.connections.values():
            kept = [job for job in connection.added if job.id != sync_id]
            if len(kept) != len(connection.added):
                connection.added = kept
                self.drop_override(sync_id)
                return True
        return False

    def remove_connection(self, connection_id: str) -> bool:
        """Delete a connection and its jobs, as deleting it in Terminal's dashboard would;
        False if there is no such connection."""
        connection = self.connections.pop(connection_id, None)
        if connection is None:
            return False
        self._by_token.pop(connection.token, None)
        return True


def _state(world: WorldView) -> TerminalWorld:
    return state_of(world, NAME, TerminalWorld)


# --- pagination and request checks --------------------------------------------------------------


def encode_cursor(key: Key) -> str:
    """An opaque cursor: the sort key of the last item of a page (keyset pagination, so a job
    starting between two pages neither repeats nor hides an item)."""
    text = f"p={key[0]!r}&k={key[1]}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Key | None:
    """The sort key in a cursor, or None if it is not one of ours."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    position, sep, key = text.partition("&k=")
    if not sep or not position.startswith("p="):
        return None
    try:
        value = float(position[2:])
    except ValueError:
        return None
    return (value, key) if math.isfinite(value) else None


def paginate(
    items: Sequence[tuple[Key, T]], after: Key | None, limit: int, *, newest_first: bool
) -> tuple[list[T], Key | None]:
    """One page of sorted `items` after the cursor key, and the next page's cursor key."""
    if after is not None:
        items = [(k, v) for k, v in items if (k < after if newest_first else k > after)]
    page = items[:limit]
    more = len(items) > limit
    return [value for _, value in page], (page[-1][0] if more and page else None)


class _BadRequest(Exception):
    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.path = path


def _bad_request(problem: _BadRequest) -> web.Response:
    message = str(problem)
    body = {
        "code": "bad_request",
        "message": message,
        "detail": [{"message": message, "path": problem.path}],
    }
    return json_response(body, 400)


def _page_params(query: Mapping[str, str]) -> tuple[int, Key | None]:
    raw = query.get("limit", str(DEFAULT_LIMIT))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise _BadRequest(
            f"'limit' must be an integer from 1 to {MAX_LIMIT}", "{requestQuery}.limit"
        )
    after = None
    if "cursor" in query:
        after = decode_cursor(query["cursor"])
        if after is None:
            raise _BadRequest("'cursor' is not a valid cursor", "{requestQuery}.cursor")
    return int(raw), after


def _choice(query: Mapping[str, str], name: str, allowed: Sequence[str]) -> str | None:
    value = query.get(name)
    if value is not None and value not in allowed:
        raise _BadRequest(
            f"'{name}' must be one of: {', '.join(allowed)}", f"{{requestQuery}}.{name}"
        )
    return value


def _expand(query: Mapping[str, str]) -> bool:
    return _choice(query, "expand", ("issues",)) is not None


# --- catalogues ---------------------------------------------------------------------------------


def _completed(seed: str, ago: float, **fields: Any) -> PastJob:
    return PastJob(ulid_like("sync", seed, _ANCHOR_MS - int(ago * 1000)), ago, **fields)


def demo_connections() -> list[ConnectionSpec]:
    """Every case the exporter must get right, one connection each."""
    ongoing = (
        Issue(
            ONGOING_ISSUE,
            "missing_permissions",
            "Failed to ingest HOS Logs, missing permissions to access Duty Status Logs",
            2 * DAY,
        ),
        Issue(
            SECOND_ONGOING_ISSUE,
            "inaccessible_data",
            "Could not read trailer assignments: the provider returned 403 for 4 vehicles",
            6 * HOUR,
        ),
    )
    resolved = Issue(
        RESOLVED_ISSUE,
        "unknown_device_type",
        "Skipped 3 devices of an unrecognised type",
        5 * HOUR,
        resolved_ago=HOUR,
    )
    return [
        ConnectionSpec(
            HEALTHY,
            "Frank's Trucking",
            "geotab",
            external_id="fleet-101",
            created_ago=360 * DAY,
            tags=("east",),
            history=(
                _completed("demo:healthy:1", 2 * DAY),
                _completed("demo:healthy:2", DAY),
            ),
            cadence=Cadence(first_id=JOB),
        ),
        ConnectionSpec(
            RECOVERED,
            "Bluebird Freight",
            "samsara",
            external_id="fleet-102",
            created_ago=330 * DAY,
            tags=("west",),
            history=(
                _completed("demo:recovered:1", 2 * DAY),
                PastJob(
                    FAILED_JOB,
                    DAY,
                    status="failed",
                    progress=37.42,
                    attempts=3,
                    failure_reason=(
                        "Provider rejected the connection's credentials (401 from Samsara API)"
                    ),
                ),
            ),
            cadence=Cadence(length=4.0, phase=0.5, requested=0.01, running=0.05),
        ),
        ConnectionSpec(
            FAILING,
            "Cascade Carriers",
            "motive",
            external_id="fleet-103",
            created_ago=300 * DAY,
            tags=("west",),
            history=(_completed("demo:failing:1", 3 * DAY),),
            cadence=Cadence(
                length=2.0,
                phase=0.5,
                requested=0.05,
                running=0.2,
                failure="Motive API answered 403 Forbidden: the API key lacks the fleet scope",
            ),
        ),
        ConnectionSpec(
            DISCONNECTED,
            "Delta Haulage",
            "samsara",
            status="disconnected",
            external_id="fleet-104",
            created_ago=270 * DAY,
            tags=("east",),
            updated_ago=2 * DAY,
            history=(
                _completed("demo:disconnected:1", 3 * DAY),
                PastJob(
                    ulid_like("sync", "demo:disconnected:2"),
                    2 * DAY,
                    status="failed",
                    progress=0.0,
                    attempts=3,
                    failure_reason="Connection disconnected: the Samsara API token was revoked",
                ),
            ),
        ),
        ConnectionSpec(
            MANUAL,
            "Evergreen Transport",
            "geotab",
            sync_mode="manual",
            external_id="fleet-105",
            created_ago=240 * DAY,
            history=(
                _completed("demo:manual:1", 20 * DAY),
                _completed("demo:manual:2", 4 * DAY, duration=25 * MINUTE),
            ),
        ),
        ConnectionSpec(
            WITH_ISSUES,
            "Frontier Fleet",
            "motive",
            external_id="fleet-106",
            created_ago=210 * DAY,
            tags=("central",),
            history=(_completed("demo:issues:1", 3 * DAY, issues=(resolved,)),),
            cadence=Cadence(
                length=3.0, phase=0.1, first_id=ISSUES_JOB, issues=(*ongoing, resolved)
            ),
        ),
        ConnectionSpec(
            HISTORICAL,
            "Glacier Logistics",
            "omnitracs",
            external_id="fleet-107",
            created_ago=180 * DAY,
            tags=("central",),
            history=(
                _completed("demo:historical:1", 2 * DAY),
                PastJob(
                    HISTORICAL_JOB,
                    3 * HOUR,
                    status="in_progress",
                    progress=12.0,
                    creep=0.5,
                    provider_requests=("historical_files",),
                    lookback=365 * DAY,
                ),
            ),
        ),
    ]


def bulk_connection(number: int) -> ConnectionSpec:
    """The `number`-th bulk connection: mostly healthy, some failing, disconnected or manual."""
    connection_id = bulk_id(NAME, number)
    provider = ("geotab", "samsara", "motive")[number % 3]
    history = (_completed(f"{connection_id}:past", DAY),)
    status, mode, cadence = "connected", "automatic", None
    if number % 25 == 7:
        status = "disconnected"
    elif number % 30 == 11:
        mode = "manual"
    elif number % 20 == 3:
        cadence = Cadence(phase=spread(number), failure="Connection credentials were rejected")
    else:
        cadence = Cadence(phase=spread(number))
    return ConnectionSpec(
        connection_id,
        f"Bulk fleet {number}",
        provider,
        status=status,
        sync_mode=mode,
        external_id=f"bulk-fleet-{number}",
        created_ago=60 * DAY - number * MINUTE,
        history=history,
        cadence=cadence,
    )


# --- the provider -------------------------------------------------------------------------------


def _text(data: Mapping[str, Any], key: str, default: str | None = None) -> str | None:
    value = data.get(key, default)
    if value is not None and (not isinstance(value, str) or not value):
        raise ControlError(400, f"{key} must be a non-empty string")
    return value


def _named(data: Mapping[str, Any], key: str, inner: str, default: str) -> str:
    value = data.get(key, default)
    if isinstance(value, dict):
        value = value.get(inner)
    if not isinstance(value, str) or not value:
        raise ControlError(400, f"{key} must be a non-empty string or {{{inner!r}: ...}}")
    return value


def _one_of(data: Mapping[str, Any], key: str, allowed: Sequence[str]) -> str | None:
    value = data.get(key)
    if value is not None and value not in allowed:
        raise ControlError(400, f"{key} must be one of: {', '.join(allowed)}")
    return value


def _spec_from(data: Any, now: float) -> ConnectionSpec:
    if not isinstance(data, dict):
        raise ControlError(400, "expected a JSON object")
    known = {
        "id",
        "status",
        "syncMode",
        "company",
        "provider",
        "token",
        "externalId",
        "tags",
        "cadence",
        "logOrder",
    }
    unknown = sorted(set(data) - known)
    if unknown:
        raise ControlError(400, f"unknown fields: {', '.join(unknown)}")
    connection_id = _text(data, "id") or ulid_like("conn", f"control:{now!r}")
    if "/" in connection_id:
        raise ControlError(400, "id must not contain '/'")
    token = _text(data, "token")
    if token is not None and (not token.startswith("con_tkn_") or not token[8:].isprintable()):
        raise ControlError(400, "token must look like con_tkn_...")
    tags = data.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise ControlError(400, "tags must be a list of strings")
    provider = data.get("provider", "geotab")
    provider_name = provider.get("name") if isinstance(provider, dict) else None
    cadence = data.get("cadence", False)
    if not isinstance(cadence, bool):
        raise ControlError(400, "cadence must be true or false")
    return ConnectionSpec(
        connection_id,
        _named(data, "company", "name", f"Company of {connection_id}"),
        _named(data, "provider", "code", "geotab"),
        token=token,
        status=_one_of(data, "status", CONNECTION_STATUSES) or "connected",
        sync_mode=_one_of(data, "syncMode", SYNC_MODES) or "automatic",
        external_id=_text(data, "externalId"),
        tags=tuple(tags),
        provider_name=provider_name if isinstance(provider_name, str) else None,
        cadence=Cadence() if cadence else None,
        log_order=_one_of(data, "logOrder", LOG_ORDERS) or "newest",
    )


class Terminal(SimProvider):
    """Terminal behind `/terminal/tsp/v1`."""

    name = NAME
    prefix = "/terminal/tsp/v1"
    list_path = "/connections"
    rank = 20

    def demo(self, options: Mapping[str, Any]) -> TerminalWorld:
        """Seven connections, one per case the exporter must get right."""
        return TerminalWorld(demo_connections())

    def bulk(self, count: int, options: Mapping[str, Any]) -> TerminalWorld:
        """`count` connections, `bulk-terminal-NNNNNN`, one job log each."""
        return TerminalWorld(bulk_connection(number) for number in range(1, count + 1))

    def error_body(self, status: int, detail: str, retry_after: str | None = None) -> JSON:
        """Terminal's documented `{code, message, detail}`; a 429 also carries `retryAfter`
        (whole seconds) when the wait is a number."""
        code = _CODES.get(status, snake(phrase(status)))
        body: JSON = {"code": code}
        if status == 429 and retry_after is not None:
            with contextlib.suppress(ValueError, OverflowError):
                body["retryAfter"] = math.ceil(float(retry_after))
        body["message"] = phrase(status)
        body["detail"] = detail
        return body

    def routes(self, sim: Host) -> list[web.RouteDef]:
        """`GET /connections`, `GET /syncs` and `GET /syncs/{id}`."""
        return [
            web.get(f"{self.prefix}/connections", self._connections(sim)),
            web.get(f"{self.prefix}/syncs", self._log(sim)),
            web.get(f"{self.prefix}/syncs/{{id}}", self._job(sim)),
        ]

    def _secret_problem(self, world: WorldView, request: web.Request) -> web.Response | None:
        state = _state(world)
        if bearer(request) != state.secret:
            return self.error_response(401, "Please ensure you have a valid API key")
        return None

    def _connection(
        self, world: WorldView, request: web.Request
    ) -> tuple[Connection | None, web.Response | None]:
        state = _state(world)
        problem = self._secret_problem(world, request)
        if problem is not None:
            return None, problem
        token = request.headers.get("Connection-Token")
        if token is None:
            return None, self.error_response(401, "Missing Connection-Token header")
        connection = state.by_token(token)
        if connection is None:
            return None, self.error_response(401, "Please ensure you have a valid connection token")
        return connection, None

    def _connections(self, sim: Host) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            early, fault = await admit(sim, self, request, check=self._secret_problem)
            if early is not None:
                return early
            state = _state(sim.world)
            query = request.query
            try:
                limit, after = _page_params(query)
                status = _choice(query, "status", CONNECTION_STATUSES)
            except _BadRequest as exc:
                return _bad_request(exc)
            tag, code, external = query.get("tag"), query.get("provider"), query.get("externalId")
            m = sim.world.moment(sim.clock())
            chosen = [
                (key, c)
                for key, c in state.listing(m)
                if (status is None or c.status == status)
                and (tag is None or tag in c.spec.tags)
                and (code is None or c.spec.provider == code)
                and (external is None or c.spec.external_id == external)
            ]
            page, more = paginate(chosen, after, limit, newest_first=False)
            body: JSON = {"results": [c.render(m) for c in page]}
            if more is not None:
                body["next"] = encode_cursor(more)
            return answer(body, fault)

        return handle

    def _log(self, sim: Host) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            state = _state(sim.world)
            hint = state.by_token(request.headers.get("Connection-Token"))
            early, fault = await admit(sim, self, request, None if hint is None else hint.id)
            if early is not None:
                return early
            connection, problem = self._connection(sim.world, request)
            if problem is not None:
                return problem
            assert connection is not None
            query = request.query
            try:
                expand = _expand(query)
                limit, after = _page_params(query)
                status = _choice(query, "status", JOB_STATUSES)
            except _BadRequest as exc:
                return _bad_request(exc)
            m = sim.world.moment(sim.clock())
            newest = connection.spec.log_order == "newest"
            refs = connection.log(m) if newest else connection.log(m)[::-1]

            def body_of(ref: JobRef) -> JSON:
                return state.overlay(ref.id, connection.render_job(ref, m, expand=expand))

            if status is None:
                refs_page, more = paginate(
                    [(r.key, r) for r in refs], after, limit, newest_first=newest
                )
                results = [body_of(ref) for ref in refs_page]
            else:
                bodies = [(r.key, body_of(r)) for r in refs]
                matching = [(key, body) for key, body in bodies if body.get("status") == status]
                results, more = paginate(matching, after, limit, newest_first=newest)
            body: JSON = {"results": results}
            if more is not None:
                body["next"] = encode_cursor(more)
            return answer(body, fault)

        return handle

    def _job(self, sim: Host) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            job_id = request.match_info["id"]
            state = _state(sim.world)
            hint = state.by_token(request.headers.get("Connection-Token"))
            early, fault = await admit(
                sim, self, request, job_id, None if hint is None else hint.id
            )
            if early is not None:
                return early
            connection, problem = self._connection(sim.world, request)
            if problem is not None:
                return problem
            assert connection is not None
            try:
                expand = _expand(request.query)
            except _BadRequest as exc:
                return _bad_request(exc)
            m = sim.world.moment(sim.clock())
            ref = connection.find(job_id, m)
            if ref is None:
                return self.error_response(404, f"Could not find sync with ID: {job_id}")
            body = state.overlay(job_id, connection.render_job(ref, m, expand=expand))
            return answer(body, fault)

        return handle

    def control_routes(self, sim: Host) -> list[web.RouteDef]:
        """Connections for tests: list (tokens and job ids), create, show, change, delete."""

        def described(connection: Connection, m: Moment) -> JSON:
            return {**connection.render(m), "jobs": [ref.id for ref in connection.log(m)]}

        def problem(exc: ControlError) -> web.Response:
            return json_response({"error": str(exc)}, exc.status)

        async def list_all(request: web.Request) -> web.StreamResponse:
            m = sim.world.moment(sim.clock())
            connections = _state(sim.world).connections.values()
            return json_response({"connections": [described(c, m) for c in connections]})

        async def create(request: web.Request) -> web.StreamResponse:
            m = sim.world.moment(sim.clock())
            try:
                try:
                    data = await request.json()
                except ValueError as exc:
                    raise ControlError(400, f"request body is not JSON: {exc}") from exc
                connection = _state(sim.world).add_connection(_spec_from(data, m.now), m)
            except ControlError as exc:
                return problem(exc)
            return json_response(described(connection, m), 201)

        def existing(request: web.Request) -> Connection:
            connection = _state(sim.world).connections.get(request.match_info["id"])
            if connection is None:
                raise ControlError(404, f"no terminal connection {request.match_info['id']!r}")
            return connection

        async def show(request: web.Request) -> web.StreamResponse:
            try:
                connection = existing(request)
            except ControlError as exc:
                return problem(exc)
            return json_response(described(connection, sim.world.moment(sim.clock())))

        async def change(request: web.Request) -> web.StreamResponse:
            now = sim.clock()
            m = sim.world.moment(now)
            try:
                connection = existing(request)
                try:
                    data = await request.json()
                except ValueError as exc:
                    raise ControlError(400, f"request body is not JSON: {exc}") from exc
                if (
                    not isinstance(data, dict)
                    or not data
                    or not set(data) <= {"status", "syncMode"}
                ):
                    raise ControlError(400, 'expected {"status": ...} and/or {"syncMode": ...}')
                status = _one_of(data, "status", CONNECTION_STATUSES)
                mode = _one_of(data, "syncMode", SYNC_MODES)
            except ControlError as exc:
                return problem(exc)
            connection.change(m, now, status, mode)
            return json_response(described(connection, m))

        async def delete(request: web.Request) -> web.StreamResponse:
            connection_id = request.match_info["id"]
            if not _state(sim.world).remove_connection(connection_id):
                return problem(ControlError(404, f"no terminal connection {connection_id!r}"))
            return json_response({"removed": connection_id})

        path = "/_sim/terminal/connections"
        return [
            web.get(path, list_all),
            web.post(path, create),
            web.get(path + "/{id}", show),
            web.patch(path + "/{id}", change),
            web.delete(path + "/{id}", delete),
        ]

    def source(self, base_url: str, world: WorldView, *, discover: bool) -> dict[str, Any] | None:
        """The secret key only: the exporter lists `/connections`, then each connection's log
        (static entries would be job ids, which change with every job)."""
        if not _state(world).connections:
            return None
        return {
            "name": f"{world.name}-{NAME}",
            "provider": NAME,
            "base_url": base_url,
            "auth": {"token": _state(world).secret},
            "discover": True,
        }


PROVIDER = Terminal()
