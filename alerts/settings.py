"""The one table of alert settings: every threshold and name a team may tune, with its default.

Each field carries its row of the documented thresholds table (`settings_table()`), so the
docs, the `--set` option of `python -m alerts.generate` and the rules read the same values.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from exporter import values

RUNBOOK_BASE = (
    "https://github.com/sync-status-exporter/sync-status-exporter/blob/main/docs/runbooks.md"
)

SEVERITIES = ("critical", "warning", "info")

_DURATION = re.compile(r"(?:\d+(?:ms|s|m|h|d|w|y))+")


def _setting(default: Any, alerts: str, meaning: str) -> Any:
    """A settings field carrying the text of its row in the documented thresholds table."""
    return field(default=default, metadata={"alerts": alerts, "meaning": meaning})


@dataclass(frozen=True, slots=True)
class Settings:
    """Every value a team may want to tune, with the defaults the committed rules use."""

    job: str = _setting(
        "sync-status-exporter",
        "all",
        'Scrape job name of the exporter; every expression selects `job="<job>"`.',
    )
    runbook_base: str = _setting(
        RUNBOOK_BASE,
        "all",
        "Where the runbooks live: every `runbook_url` is this plus `#<alert name in lower "
        "case>` (point it at your own copy of docs/runbooks.md).",
    )
    read_gap: str = _setting(
        "10m",
        "all per-sync alerts",
        "Window of `last_over_time()`: how long a sync's last known value counts while its "
        "status cannot be read (the exporter then exports only `sync_up 0`) or a scrape fails.",
    )
    keep_firing_for: str = _setting(
        "5m",
        "all but SyncDisabled",
        "`keep_firing_for`: a firing alert stays firing this long after its condition clears, "
        "so one good-looking sample does not resolve it and page again later.",
    )
    errored_for: str = _setting(
        "10m", "SyncErrored", "How long a sync must stay errored before it pages."
    )
    stale_for: str = _setting(
        "5m",
        "SyncStale",
        "How long a sync must stay over its staleness budget (`sync_stale_threshold_seconds`, "
        "set by the exporter's `stale_after`) before the alert fires.",
    )
    rate_limited_for: str = _setting(
        "30m", "SyncRateLimitedTooLong", "How long a sync may stay rate limited."
    )
    initializing_for: str = _setting(
        "6h", "SyncStuckInitializing", "How long an initial sync (backfill) may take."
    )
    progress_stalled_for: str = _setting(
        "1h",
        "SyncProgressStalled",
        "How long an active sync's progress ratio may stay unchanged below 1.",
    )
    unavailable_for: str = _setting(
        "15m",
        "SyncStatusUnavailable",
        "How long the exporter may fail to read a sync's status (`sync_up == 0`).",
    )
    exporter_down_for: str = _setting(
        "5m", "SyncExporterDown", "How long the scrape target may be down or absent."
    )
    upstream_error_ratio: float = _setting(
        0.1,
        "SyncExporterUpstreamErrors",
        "Fraction of a source's status reads that failed or were skipped while backing off "
        "after HTTP 429 (`not_found` excluded: that is one sync's problem).",
    )
    upstream_error_window: str = _setting(
        "10m", "SyncExporterUpstreamErrors", "Range of the `rate()` behind that fraction."
    )
    upstream_errors_for: str = _setting(
        "15m", "SyncExporterUpstreamErrors", "How long the fraction must stay above the ratio."
    )
    reload_failed_for: str = _setting(
        "10m",
        "SyncExporterConfigReloadFailed",
        "How long the exporter may keep running an old config after a failed reload.",
    )
    health_warning_for: str = _setting(
        "30m",
        "SyncHealthWarning",
        "How long a sync's provider-reported health may stay `warn` (Sequin's `health.status`; "
        "a generic source's warning, such as Merge's PARTIALLY_SYNCED or Fivetran's delayed "
        "data).",
    )
    disabled_for: str = _setting(
        "24h", "SyncDisabled", "How long a sync may stay disabled (paused) before an info alert."
    )
    run_failure_ratio: float = _setting(
        0.25,
        "SyncRunFailureRateHigh",
        "Objective: the fraction of a sync's runs (`sync_runs_total`) that may fail over both "
        "windows before the alert fires.",
    )
    run_failure_ratios: str = _setting(
        "",
        "SyncRunFailureRateHigh",
        "Per-source objectives replacing `run_failure_ratio`, as `source=ratio,source=ratio`.",
    )
    run_failure_long_window: str = _setting(
        "6h", "SyncRunFailureRateHigh", "The long window: failures that last, not one bad run."
    )
    run_failure_short_window: str = _setting(
        "30m",
        "SyncRunFailureRateHigh",
        "The short window: still failing now (it also resolves the alert soon after recovery).",
    )
    run_failure_min_runs: float = _setting(
        3.0,
        "SyncRunFailureRateHigh",
        "Runs the long window must hold: one failed run of a rare sync is SyncErrored's job.",
    )
    run_failure_for: str = _setting(
        "5m", "SyncRunFailureRateHigh", "How long both fractions must stay above the objective."
    )

    def source_objectives(self) -> dict[str, float]:
        """`run_failure_ratios` read as source -> ratio."""
        return _objectives(self.run_failure_ratios)

    def __post_init__(self) -> None:
        """Refuse values Prometheus would reject, here rather than at rule load time."""
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            is_duration = item.type == "str" and item.name not in (
                "job",
                "runbook_base",
                "run_failure_ratios",
            )
            if is_duration and not _DURATION.fullmatch(value):
                raise ValueError(f"{item.name}: not a Prometheus duration: {value!r}")
        if not 0 < self.upstream_error_ratio <= 1:
            raise ValueError("upstream_error_ratio must be in (0, 1]")
        for ratio in (self.run_failure_ratio, *self.source_objectives().values()):
            if not 0 < ratio < 1:
                raise ValueError("run failure ratios must be in (0, 1)")
        if not self.job:
            raise ValueError("job must not be empty")
        if not re.fullmatch(r"https?://\S+", self.runbook_base):
            raise ValueError(f"runbook_base: not an http(s) URL: {self.runbook_base!r}")


def _objectives(text: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        source, sep, ratio = item.partition("=")
        if not sep or not re.fullmatch(r"[^\s=\"\\|]+", source.strip()):
            raise ValueError(f"run_failure_ratios: expected source=ratio, got {item!r}")
        try:
            found[source.strip()] = float(ratio)
        except ValueError:
            raise ValueError(f"run_failure_ratios: not a number in {item!r}") from None
    return found


def seconds(duration: str) -> float:
    """Seconds in a Prometheus duration such as `1h30m`, to compare settings."""
    parsed = values.duration(duration)
    if parsed is None:
        raise ValueError(f"not a Prometheus duration: {duration!r}")
    return parsed


def settings_table() -> str:
    """The Markdown table of settings in docs/alerts-and-dashboards.md (a test keeps it equal)."""
    rows = ["| setting | default | used by | meaning |", "|---|---|---|---|"]
    for item in dataclasses.fields(Settings):
        default = item.default
        shown = f"{default:g}" if isinstance(default, float) else str(default)
        rows.append(
            f"| `{item.name}` | `{shown}` | {item.metadata['alerts']} | "
            f"{item.metadata['meaning']} |"
        )
    return "\n".join(rows) + "\n"
