"""The canonical record every provider adapter produces: the only thing the collector sees."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class State(StrEnum):
    """Canonical sync states, exported as a state set in `sync_state{state=...}`."""

    INITIALIZING = "initializing"
    ACTIVE = "active"
    IDLE = "idle"
    RATE_LIMITED = "rate_limited"
    DISABLED = "disabled"
    ERRORED = "errored"
    UNKNOWN = "unknown"


STATES: tuple[State, ...] = tuple(State)

INFO_LABELS: tuple[str, ...] = ("name", "integration", "credential_id", "frequency")


@dataclass(slots=True)
class SyncStatus:
    """One sync's status as read in one scrape; `None` means the provider did not say."""

    state: State
    provider_status: str
    info: dict[str, str] = field(default_factory=dict)
    progress_ratio: float | None = None
    records_expected: float | None = None
    records_synced: float | None = None
    last_synced_timestamp: float | None = None
    rate_limit_backoff_seconds: float | None = None
    interval_seconds: float | None = None
    attempts: float | None = None
    issues: float | None = None
    requested_timestamp: float | None = None
    completed_timestamp: float | None = None
    initial_backfill_completed_timestamp: float | None = None
    rate_limit_allowed_requests: float | None = None
    rate_limit_interval_seconds: float | None = None
    rate_limit_max_concurrent_requests: float | None = None
    collections: float | None = None
    error_reason: str | None = None
