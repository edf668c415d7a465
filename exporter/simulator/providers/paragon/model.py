"""Paragon's objects: demo ids, the lifecycles a sync follows, and syncs as the API lists them."""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from exporter.simulator.clock import (
    DAY,
    HOUR,
    MINUTE,
    Moment,
    iso_millis,
    iso_seconds,
)
from exporter.simulator.providers.base import (
    JSON,
)

NAME = "paragon"
AUDIENCE_HOST = "useparagon.com"
DEFAULT_USER = "sim-user"
TOKEN_TTL = 3600.0
SYNCS_PER_USER = 20
VERIFIED_CACHE = 4096
# guess: how far in the future a token's `iat` may be (clock skew); Paragon names no leeway.
IAT_SKEW = 60.0

# Demo users and sync ids, stable across runs (tests and docs refer to them).
ACME = "acme"
INITECH = "initech"
GLOBEX = "globex"
UMBRELLA = "umbrella"
ORDERS = "0a3b24a3-5675-4ed2-9f63-dc8a1da269b1"
TICKETS = "cf41dc6c-11ff-48b4-a6c0-e8a1174f582a"
ERRORED = "07e5c66b-3a4f-4b8f-9b93-59a2bf341d1a"
DISABLED = "f8f3b897-9924-406e-941e-b3b75187ea14"
LEGACY = "e0b812f7-a80e-402f-9181-b4f43d8642e8"
LEGACY_PAUSED = "ded981be-8b88-443b-b067-82dd60092eb3"
# invented: a sync whose status, MIGRATING, is in no Paragon document; it stands for a status
# outside the documented enum, which readers must show as unknown rather than refuse.
MIGRATING = "72c9f9a7-8496-4678-80c6-64e5bac5060a"


# --- lifecycles ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a Paragon sync is doing at one moment, before it is rendered to JSON."""

    status: str
    total: int
    synced: int
    last_synced_at: float | None
    changed_at: float
    backoff_ms: int | None = None
    reason: str | None = None


Lifecycle = Callable[[Moment], Snapshot]


def first_sync_then_incremental(total: int, growth: int) -> Lifecycle:
    """INITIALIZING, then ACTIVE until `total` records are in, then IDLE; every later period is an
    incremental run (ACTIVE for a quarter period, `growth` more records) followed by IDLE."""

    def state(m: Moment) -> Snapshot:
        k, f = m.cycle()
        if k == 0:
            if f < 0.15:
                return Snapshot("INITIALIZING", 0, 0, None, m.started_at)
            if f < 0.5:
                synced = int(total * (f - 0.15) / 0.35)
                return Snapshot("ACTIVE", total, synced, None, m.at(0.15))
            return Snapshot("IDLE", total, total, m.at(0.5), m.at(0.5))
        before = total + growth * (k - 1)
        after = before + growth
        if f < 0.25:
            previous = m.at(0.5) if k == 1 else m.at(k - 1 + 0.25)
            synced = before + int(growth * f / 0.25)
            return Snapshot("ACTIVE", after, synced, previous, m.at(k))
        done = m.at(k + 0.25)
        return Snapshot("IDLE", after, after, done, done)

    return state


def rate_limited(total: int, growth: int, limited: float = 0.4) -> Lifecycle:
    """RATE_LIMITED for the first `limited` of every period, `rateLimitBackoffMs` counting down to
    the moment it resumes, then ACTIVE catching up; a run completes at each period boundary."""

    def state(m: Moment) -> Snapshot:
        k, f = m.cycle()
        before = total + growth * k
        after = before + growth
        stuck = before + growth // 3
        if f < limited:
            backoff = math.ceil((limited - f) * m.period * 1000)
            return Snapshot("RATE_LIMITED", after, stuck, m.at(k), m.at(k), backoff_ms=backoff)
        synced = stuck + int((after - stuck) * (f - limited) / (1 - limited))
        return Snapshot("ACTIVE", after, synced, m.at(k), m.at(k + limited))

    return state


def active_idle(total: int, growth: int, active: float = 0.3, phase: float = 0.0) -> Lifecycle:
    """An established sync: ACTIVE for the first `active` of every period, then IDLE."""

    def state(m: Moment) -> Snapshot:
        k, f = m.cycle(phase=phase)
        before = total + growth * k
        after = before + growth
        if f < active:
            previous = m.at(k - 1 + active, phase=phase)
            synced = before + int(growth * f / active)
            return Snapshot("ACTIVE", after, synced, previous, m.at(k, phase=phase))
        done = m.at(k + active, phase=phase)
        return Snapshot("IDLE", after, after, done, done)

    return state


def fixed(
    status: str, total: int, last_synced_ago: float | None, reason: str | None = None
) -> Lifecycle:
    """A sync stuck in one status since its last sync, `last_synced_ago` seconds before start."""

    def state(m: Moment) -> Snapshot:
        last = None if last_synced_ago is None else m.started_at - last_synced_ago
        changed = m.started_at - HOUR if last is None else last + MINUTE
        return Snapshot(status, total, total, last, changed, reason=reason)

    return state


def _cursor(offset: int) -> str:
    # invented: the docs show `latestCursor` only as "<string>"; this form is ours.
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


# --- syncs --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParagonSync:
    """A Paragon Managed Sync of one connected user, rendered as `GET /api/syncs/{syncId}`."""

    id: str
    user: str
    integration: str
    pipeline: str
    configuration_name: str
    lifecycle: Lifecycle
    credential_id: str | None = None
    frequency: str | None = None
    legacy: bool = False
    timestamp: Callable[[float], str] = iso_millis
    created_ago: float = 30 * DAY
    labels: Mapping[str, str] = field(default_factory=dict)

    def render(self, m: Moment) -> JSON:
        """The status body; the legacy form has lower-case statuses and a snake_case summary."""
        st = self.lifecycle(m)
        if self.legacy:
            # Older docs show lower-case statuses (`paused` for DISABLED) and snake_case summary
            # fields (seeds README). invented: a body of only these two fields, lower-case,
            # with whole-second times, as one whole; no document shows a full legacy body.
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
        """The `GET /api/syncs` entry, given the sync's current body."""
        return _list_item(
            self.id,
            self.integration,
            self.pipeline,
            body,
            self.configuration_name,
            m.started_at - self.created_ago,
            self.lifecycle(m).changed_at,
        )


@dataclass(frozen=True, slots=True)
class AdHocSync:
    """A sync a test created, whose body never changes."""

    id: str
    user: str
    body: JSON
    created_at: float
    labels: Mapping[str, str] = field(default_factory=dict)

    def render(self, m: Moment) -> JSON:
        """A shallow copy of the stored body."""
        return dict(self.body)

    def list_item(self, m: Moment, body: JSON) -> JSON:
        """The `GET /api/syncs` entry, given the sync's current body."""
        stamp = self.created_at
        # invented: an ad-hoc sync's integration and pipeline ("custom") and name (its id).
        return _list_item(self.id, "custom", "custom", body, self.id, stamp, stamp)


def _list_item(
    sync_id: str,
    integration: str,
    pipeline: str,
    body: JSON,
    configuration: str,
    created: float,
    updated: float,
) -> JSON:
    item: JSON = {
        "id": sync_id,
        "integration": integration,
        "pipeline": pipeline,
        "status": body.get("status"),
    }
    # The list's items carry `reason` too (Paragon's docs, per the seeds README's facts of
    # 2026-11-23); that it is the status body's reason, left out when null, is a guess.
    if body.get("reason") is not None:
        item["reason"] = body["reason"]
    item["configurationName"] = configuration
    item["dateCreated"] = iso_millis(created)
    item["dateUpdated"] = iso_millis(updated)
    return item


Entry = ParagonSync | AdHocSync
