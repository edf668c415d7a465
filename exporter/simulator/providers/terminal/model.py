"""Terminal's objects: ids, jobs with their issues, and connections with their job logs."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from exporter.simulator.clock import DAY, HOUR, MINUTE, Moment, iso_millis
from exporter.simulator.providers.base import (
    JSON,
)

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
ERROR_CODES = {
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
ANCHOR_MS = 1_704_067_200_000  # 2024-01-01: the time part of generated ids, never a real time
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


def ulid_like(prefix: str, seed: str, ms: int = ANCHOR_MS) -> str:
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
        return ulid_like("sync", f"{connection_id}:job:{k}", ANCHOR_MS + k * 1000)

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
