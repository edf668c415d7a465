"""The canonical record every provider adapter produces: the only thing the collector sees."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from exporter.values import finite, label_text, label_texts


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

# The sync_info labels every adapter tries to fill; adapters declare more of their own.
CORE_INFO_LABELS: tuple[str, ...] = ("name", "integration")


@dataclass(slots=True)
class SyncStatus:
    """One sync's status as read in one scrape; `None` means the provider did not say.

    The named fields are the core every adapter tries to fill. Values only one provider has
    go in `values` (numbers) and `sets` (the one state seen of a state-set family), keyed by
    the family names that adapter declares.
    """

    state: State
    provider_status: str
    info: dict[str, str] = field(default_factory=dict)
    progress_ratio: float | None = None
    records_expected: float | None = None
    records_synced: float | None = None
    last_synced_timestamp: float | None = None
    interval_seconds: float | None = None
    rate_limit_backoff_seconds: float | None = None
    error_reason: str | None = None
    # Runs only when someone asks for it (Terminal's manual mode): no staleness budget of
    # its own, only a configured stale_after.
    on_demand: bool = False
    values: dict[str, float | None] = field(default_factory=dict)
    sets: dict[str, str] = field(default_factory=dict)


_INF = float("inf")


def _not_negative(value: float | None) -> float | None:
    """A finite number that is not negative, else None, in one call for the common float."""
    if type(value) is float:
        return value if 0.0 <= value < _INF else None
    if value is None:
        return None
    checked = finite(value)
    return None if checked is None or checked < 0 else checked


def normalise(status: SyncStatus) -> SyncStatus:
    """Bound what a provider sent before it becomes a label or a sample, once for every adapter.

    Strings are cut and cleaned, numbers that are not finite dropped, the ratio clamped to
    [0, 1], negative record counts and intervals dropped (a `-1` meaning "manual" must not
    become a staleness budget; 0 is a continuous sync), and the error reason kept only while the
    sync is errored.
    """
    status.provider_status = label_text(status.provider_status)
    status.info = label_texts(status.info)
    ratio = finite(status.progress_ratio)
    if ratio is not None:
        ratio = 0.0 if ratio < 0.0 else 1.0 if ratio > 1.0 else ratio
    status.progress_ratio = ratio
    status.records_expected = _not_negative(status.records_expected)
    status.records_synced = _not_negative(status.records_synced)
    status.last_synced_timestamp = finite(status.last_synced_timestamp)
    status.interval_seconds = _not_negative(status.interval_seconds)
    backoff = finite(status.rate_limit_backoff_seconds)
    if backoff is not None and backoff < 0.0:
        backoff = 0.0
    status.rate_limit_backoff_seconds = backoff
    if status.state is State.ERRORED:
        status.error_reason = label_text(status.error_reason or "")
    else:
        status.error_reason = None
    values = status.values
    if values:
        status.values = {name: finite(value) for name, value in values.items()}
    status.sets = label_texts(status.sets)
    return status
