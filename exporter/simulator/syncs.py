"""Fake syncs of each provider: a lifecycle (state as a function of time) and a JSON renderer."""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from exporter.simulator.clock import Moment, iso_millis, iso_seconds, sequin_time

JSON = dict[str, Any]
Provider = Literal["paragon", "terminal", "sequin"]
PROVIDERS: tuple[Provider, ...] = ("paragon", "terminal", "sequin")

MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0

SEQUIN_ORG_ID = "6d6bbb73-a808-4d75-95ca-f2e9acfed605"


class FakeSync(Protocol):
    """What the world needs from a fake sync of any provider."""

    @property
    def id(self) -> str: ...

    @property
    def labels(self) -> Mapping[str, str]: ...

    def render(self, m: Moment, *, expand: bool = False) -> JSON:
        """The body of `GET .../syncs/{id}` at moment `m`; `expand` inlines related objects."""
        ...

    def list_item(self, m: Moment, body: JSON) -> JSON:
        """The entry for this sync in the provider's list endpoint, given its current body."""
        ...


# --- Paragon ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParagonState:
    """What a Paragon sync is doing at one moment, before it is rendered to JSON."""

    status: str
    total: int
    synced: int
    last_synced_at: float | None
    changed_at: float
    backoff_ms: int | None = None
    reason: str | None = None


ParagonLifecycle = Callable[[Moment], ParagonState]


def paragon_first_sync_then_incremental(total: int, growth: int) -> ParagonLifecycle:
    """INITIALIZING, then ACTIVE until `total` records are in, then IDLE; every later period is an
    incremental run (ACTIVE for a quarter period, `growth` more records) followed by IDLE."""

    def state(m: Moment) -> ParagonState:
        k, f = m.cycle()
        if k == 0:
            if f < 0.15:
                return ParagonState("INITIALIZING", 0, 0, None, m.started_at)
            if f < 0.5:
                synced = int(total * (f - 0.15) / 0.35)
                return ParagonState("ACTIVE", total, synced, None, m.at(0.15))
            return ParagonState("IDLE", total, total, m.at(0.5), m.at(0.5))
        before = total + growth * (k - 1)
        after = before + growth
        if f < 0.25:
            previous = m.at(0.5) if k == 1 else m.at(k - 1 + 0.25)
            synced = before + int(growth * f / 0.25)
            return ParagonState("ACTIVE", after, synced, previous, m.at(k))
        done = m.at(k + 0.25)
        return ParagonState("IDLE", after, after, done, done)

    return state


def paragon_rate_limited(total: int, growth: int, limited: float = 0.4) -> ParagonLifecycle:
    """RATE_LIMITED for the first `limited` of every period, `rateLimitBackoffMs` counting down to
    the moment it resumes, then ACTIVE catching up; a run completes at each period boundary."""

    def state(m: Moment) -> ParagonState:
        k, f = m.cycle()
        before = total + growth * k
        after = before + growth
        stuck = before + growth // 3
        if f < limited:
            backoff = math.ceil((limited - f) * m.period * 1000)
            return ParagonState("RATE_LIMITED", after, stuck, m.at(k), m.at(k), backoff_ms=backoff)
        synced = stuck + int((after - stuck) * (f - limited) / (1 - limited))
        return ParagonState("ACTIVE", after, synced, m.at(k), m.at(k + limited))

    return state


def paragon_active_idle(
    total: int, growth: int, active: float = 0.3, phase: float = 0.0
) -> ParagonLifecycle:
    """An established sync: ACTIVE for the first `active` of every period, then IDLE."""

    def state(m: Moment) -> ParagonState:
        k, f = m.cycle(phase=phase)
        before = total + growth * k
        after = before + growth
        if f < active:
            previous = m.at(k - 1 + active, phase=phase)
            synced = before + int(growth * f / active)
            return ParagonState("ACTIVE", after, synced, previous, m.at(k, phase=phase))
        done = m.at(k + active, phase=phase)
        return ParagonState("IDLE", after, after, done, done)

    return state


def paragon_fixed(
    status: str, total: int, last_synced_ago: float | None, reason: str | None = None
) -> ParagonLifecycle:
    """A sync stuck in one status since its last sync, `last_synced_ago` seconds before start."""

    def state(m: Moment) -> ParagonState:
        last = None if last_synced_ago is None else m.started_at - last_synced_ago
        changed = m.started_at - HOUR if last is None else last + MINUTE
        return ParagonState(status, total, total, last, changed, reason=reason)

    return state


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


@dataclass(frozen=True, slots=True)
class ParagonSync:
    """A Paragon Managed Sync, rendered as `GET /api/syncs/{syncId}` returns it."""

    id: str
    integration: str
    pipeline: str
    configuration_name: str
    lifecycle: ParagonLifecycle
    credential_id: str | None = None
    frequency: str | None = None
    legacy: bool = False
    timestamp: Callable[[float], str] = iso_millis
    created_ago: float = 30 * DAY
    labels: Mapping[str, str] = field(default_factory=dict)

    def render(self, m: Moment, *, expand: bool = False) -> JSON:
        """The status body; the legacy form has lower-case statuses and a snake_case summary."""
        st = self.lifecycle(m)
        if self.legacy:
            legacy_summary: JSON = {"total_records": st.total, "synced_records_count": st.synced}
            if st.last_synced_at is not None:
                legacy_summary["last_synced_at"] = iso_seconds(st.last_synced_at)
            status = "paused" if st.status == "DISABLED" else st.status.lower()
            return {"status": status, "summary": legacy_summary}
        summary: JSON = {"totalRecords": st.total, "syncedRecordsCount": st.synced}
        if st.last_synced_at is not None:
            summary["lastSyncedAt"] = self.timestamp(st.last_synced_at)
            summary["latestCursor"] = _cursor(st.synced)
        body: JSON = {"status": st.status, "summary": summary}
        if self.credential_id is not None:
            body["credentialId"] = self.credential_id
        if self.frequency is not None:
            body["incrementalAccumulatorFrequency"] = self.frequency
        if st.backoff_ms is not None:
            body["rateLimitBackoffMs"] = st.backoff_ms
        if st.reason is not None:
            body["reason"] = st.reason
        return body

    def list_item(self, m: Moment, body: JSON) -> JSON:
        """The `GET /api/syncs` entry."""
        return {
            "id": self.id,
            "integration": self.integration,
            "pipeline": self.pipeline,
            "status": body.get("status"),
            "configurationName": self.configuration_name,
            "dateCreated": iso_millis(m.started_at - self.created_ago),
            "dateUpdated": iso_millis(self.lifecycle(m).changed_at),
        }


# --- Terminal -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TerminalState:
    """What a Terminal sync job is doing at one moment."""

    status: str
    progress: float
    attempts: int
    requested_at: float
    completed_at: float | None = None
    failure_reason: str | None = None


TerminalLifecycle = Callable[[Moment], TerminalState]


def terminal_job(length: float = 1.0, phase: float = 0.0) -> TerminalLifecycle:
    """A job that is requested, runs with progress 0 to 100, completes, and is requested again
    (one more attempt) when the next cycle of `length` periods begins."""

    def state(m: Moment) -> TerminalState:
        k, f = m.cycle(length, phase)
        requested = m.at(k, length, phase)
        if f < 0.1:
            return TerminalState("requested", 0, k + 1, requested)
        if f < 0.6:
            return TerminalState("in_progress", round((f - 0.1) * 200, 2), k + 1, requested)
        return TerminalState("completed", 100, k + 1, requested, m.at(k + 0.6, length, phase))

    return state


def terminal_failed(
    reason: str, progress: float, attempts: int, requested_ago: float
) -> TerminalLifecycle:
    """A job that failed before the simulator started and stays failed."""

    def state(m: Moment) -> TerminalState:
        requested = m.started_at - requested_ago
        return TerminalState("failed", progress, attempts, requested, failure_reason=reason)

    return state


@dataclass(frozen=True, slots=True)
class TerminalIssue:
    """A Terminal issue attached to a sync (ids by default, objects with `expand=issues`)."""

    id: str
    code: str
    message: str
    first_reported_ago: float


@dataclass(frozen=True, slots=True)
class TerminalSync:
    """A Terminal sync job, rendered as `GET /tsp/v1/syncs/{id}` returns it."""

    id: str
    lifecycle: TerminalLifecycle
    connection_id: str
    issues: tuple[TerminalIssue, ...] = ()
    lookback: float = DAY
    labels: Mapping[str, str] = field(default_factory=dict)

    def render(self, m: Moment, *, expand: bool = False) -> JSON:
        """The `Sync` schema, fields in the order of Terminal's own example."""
        st = self.lifecycle(m)
        body: JSON = {
            "id": self.id,
            "status": st.status,
            "requestedAt": iso_millis(st.requested_at),
        }
        if st.failure_reason is not None:
            body["failureReason"] = st.failure_reason
        body["progress"] = st.progress
        if expand:
            body["issues"] = [self._issue(issue, m, st) for issue in self.issues]
        else:
            body["issues"] = [issue.id for issue in self.issues]
        body["startFrom"] = iso_millis(st.requested_at - self.lookback)
        if st.completed_at is not None:
            body["completedAt"] = iso_millis(st.completed_at)
        body["attempts"] = st.attempts
        return body

    def _issue(self, issue: TerminalIssue, m: Moment, st: TerminalState) -> JSON:
        first = m.started_at - issue.first_reported_ago
        return {
            "id": issue.id,
            "status": "ongoing",
            "connection": self.connection_id,
            "error": {"code": issue.code, "message": issue.message},
            "firstReportedAt": iso_millis(first),
            "lastReportedAt": iso_millis(max(first, st.requested_at)),
        }

    def list_item(self, m: Moment, body: JSON) -> JSON:
        """List entries are full `Sync` objects."""
        return body


# --- Sequin -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SequinSync:
    """A Sequin sync, rendered as `GET /v1/syncs/{id}` returns it.

    `health` is a cycle of `health.status` values, each shown for an equal share of a period.
    """

    id: str
    name: str
    provider: str
    collection_ids: tuple[str, ...]
    stream_id: str
    credential_id: str
    credential_kind: str
    status: str = "active"
    health: tuple[str, ...] = ("healthy",)
    health_phase: float = 0.0
    sync_frequency: str = "continuous"
    backfilled: bool = True
    max_age_days: int | None = None
    allowed_requests: int = 1000
    created_ago: float = 30 * DAY
    labels: Mapping[str, str] = field(default_factory=dict)

    def render(self, m: Moment, *, expand: bool = False) -> JSON:
        """The sync object, with its credential inlined as Sequin does."""
        _, f = m.cycle(phase=self.health_phase)
        health = self.health[min(int(f * len(self.health)), len(self.health) - 1)]
        born = m.started_at - self.created_ago
        created = sequin_time(born)
        updated = sequin_time(born + min(HOUR, self.created_ago / 2))
        backfilled = sequin_time(born + min(2 * HOUR, self.created_ago * 0.75))
        return {
            "id": self.id,
            "provider": self.provider,
            "stream_id": self.stream_id,
            "name": self.name,
            "status": self.status,
            "org_id": SEQUIN_ORG_ID,
            "health": {"status": health, "sync_id": self.id},
            "collection_ids": list(self.collection_ids),
            "rate_limit": {
                "allowed_requests": self.allowed_requests,
                "interval": 60,
                "max_concurrent_requests": 0,
            },
            "credential_id": self.credential_id,
            "credential": {
                "id": self.credential_id,
                "provider": self.provider,
                "properties": {
                    "kind": self.credential_kind,
                    "name": self.name,
                    "secret": "***********",
                    "test": False,
                },
                "oauth_app_id": None,
                "oauth_app": {"kind": "sequin"},
                "metadata": {},
                "created_at": created,
                "updated_at": created,
            },
            "max_age_days": self.max_age_days,
            "sync_frequency": self.sync_frequency,
            "initial_backfill_completed_at": backfilled if self.backfilled else None,
            "metadata": {},
            "created_at": created,
            "updated_at": updated,
        }

    def list_item(self, m: Moment, body: JSON) -> JSON:
        """List entries are full sync objects."""
        return body


# --- Any provider -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StaticSync:
    """A sync created at run time whose body never changes, for tests that need exact values."""

    id: str
    provider: Provider
    body: JSON
    created_at: float
    labels: Mapping[str, str] = field(default_factory=dict)

    def render(self, m: Moment, *, expand: bool = False) -> JSON:
        """A shallow copy of the stored body."""
        return dict(self.body)

    def list_item(self, m: Moment, body: JSON) -> JSON:
        """Paragon lists a summary; the others list the body itself."""
        if self.provider != "paragon":
            return body
        stamp = iso_millis(self.created_at)
        return {
            "id": self.id,
            "integration": "custom",
            "pipeline": "custom",
            "status": body.get("status"),
            "configurationName": self.id,
            "dateCreated": stamp,
            "dateUpdated": stamp,
        }
