"""Every metric name and help text the exporter serves, in one place (the metric contract)."""

from __future__ import annotations

from dataclasses import dataclass

from exporter.model import INFO_LABELS

TARGET_LABELS: tuple[str, ...] = ("source", "provider", "sync_id")


@dataclass(frozen=True, slots=True)
class Family:
    """One metric family: its name, help text, type and the labels it adds to a sync's labels."""

    name: str
    help: str
    type: str = "gauge"
    labels: tuple[str, ...] = ()
    field: str = ""


SYNC_UP = Family(
    "sync_up",
    "1 if this scrape read the sync's status from the provider, 0 if it could not "
    "(timeout, HTTP error, bad response, authentication failure, rate limited).",
)
SYNC_STATE = Family(
    "sync_state",
    "Canonical state of the sync as a state set: exactly one state is 1.",
    labels=("state",),
)
SYNC_PROVIDER_STATUS = Family(
    "sync_provider_status",
    "Always 1; the status label holds the provider's own status string as returned.",
    labels=("status",),
)
SYNC_INFO = Family(
    "sync_info",
    "Always 1; descriptive labels of the sync as the provider reports them, empty when absent.",
    labels=INFO_LABELS,
)
SYNC_ERROR_INFO = Family(
    "sync_error_info",
    "1 while the sync is errored; the reason label holds the provider's error message "
    "(at most 200 characters).",
    labels=("reason",),
)
SYNC_LAST_SYNCED_AGE = Family(
    "sync_last_synced_age_seconds",
    "Seconds between the last successful sync and this collection.",
)
SYNC_STALE_THRESHOLD = Family(
    "sync_stale_threshold_seconds",
    "Staleness budget: the sync counts as stale once its last successful sync is older than "
    "this (from stale_after in the config, or derived from the sync interval).",
)

# Families with one sample per sync whose value is a SyncStatus field, emitted when not None.
VALUE_FAMILIES: tuple[Family, ...] = (
    Family(
        "sync_progress_ratio",
        "Progress of the current sync run, from 0 to 1.",
        field="progress_ratio",
    ),
    Family(
        "sync_records_expected",
        "Number of records the provider expects to sync (Paragon summary.totalRecords).",
        field="records_expected",
    ),
    Family(
        "sync_records_synced",
        "Number of records synced so far (Paragon summary.syncedRecordsCount).",
        field="records_synced",
    ),
    Family(
        "sync_last_synced_timestamp_seconds",
        "Unix time of the last successful sync.",
        field="last_synced_timestamp",
    ),
    Family(
        "sync_rate_limit_backoff_seconds",
        "Seconds the sync is backing off because of the third-party API's rate limit "
        "(0 when not rate limited).",
        field="rate_limit_backoff_seconds",
    ),
    Family(
        "sync_interval_seconds",
        "Configured interval between incremental syncs (0 for continuous syncs).",
        field="interval_seconds",
    ),
    Family(
        "sync_attempts",
        "Number of attempts the provider made for the current sync job.",
        field="attempts",
    ),
    Family(
        "sync_issues",
        "Number of issues the provider reports on the sync (problems short of a failure).",
        field="issues",
    ),
    Family(
        "sync_requested_timestamp_seconds",
        "Unix time the sync job was requested.",
        field="requested_timestamp",
    ),
    Family(
        "sync_completed_timestamp_seconds",
        "Unix time the sync job completed.",
        field="completed_timestamp",
    ),
    Family(
        "sync_initial_backfill_completed_timestamp_seconds",
        "Unix time the initial backfill completed.",
        field="initial_backfill_completed_timestamp",
    ),
    Family(
        "sync_rate_limit_allowed_requests",
        "Requests the sync may make to the third-party API per rate-limit interval.",
        field="rate_limit_allowed_requests",
    ),
    Family(
        "sync_rate_limit_interval_seconds",
        "Length of the sync's rate-limit interval.",
        field="rate_limit_interval_seconds",
    ),
    Family(
        "sync_rate_limit_max_concurrent_requests",
        "Maximum concurrent requests the sync may make to the third-party API (0: no limit).",
        field="rate_limit_max_concurrent_requests",
    ),
    Family(
        "sync_collections",
        "Number of collections the sync writes.",
        field="collections",
    ),
)

# Order in which the per-sync families appear in the exposition.
SYNC_FAMILIES: tuple[Family, ...] = (
    SYNC_UP,
    SYNC_STATE,
    SYNC_PROVIDER_STATUS,
    SYNC_INFO,
    SYNC_ERROR_INFO,
    *VALUE_FAMILIES,
    SYNC_LAST_SYNCED_AGE,
    SYNC_STALE_THRESHOLD,
)

# The exporter's own metrics (rendered by prometheus_client from their own registry).
EXPORTER_FAMILIES: tuple[Family, ...] = (
    Family(
        "sync_exporter_build_info",
        "Always 1; labels hold the exporter's version and the Python it runs on.",
        labels=("version", "python_version"),
    ),
    Family(
        "sync_exporter_collection_duration_seconds",
        "Duration of the last collection of all syncs.",
    ),
    Family(
        "sync_exporter_render_duration_seconds",
        "Duration of writing the last collection's per-sync series in the text format.",
    ),
    Family(
        "sync_exporter_syncs_configured",
        "Number of syncs configured per source.",
        labels=("source", "provider"),
    ),
    Family(
        "sync_exporter_upstream_requests_total",
        "Requests sent to provider APIs, by source and HTTP status code (code is empty when "
        "no response arrived).",
        type="counter",
        labels=("source", "code"),
    ),
    Family(
        "sync_exporter_upstream_request_duration_seconds",
        "Duration of requests to provider APIs.",
        type="histogram",
        labels=("source",),
    ),
    Family(
        "sync_exporter_errors_total",
        "Failed reads of a sync's status, by source and reason.",
        type="counter",
        labels=("source", "reason"),
    ),
    Family(
        "sync_exporter_upstream_requests_skipped_total",
        "Reads not sent because the source is backing off after a 429 Retry-After.",
        type="counter",
        labels=("source",),
    ),
    Family(
        "sync_exporter_source_backoff_seconds",
        "Seconds left before the exporter calls this source again after a 429 Retry-After.",
        labels=("source",),
    ),
    Family(
        "sync_exporter_config_last_reload_successful",
        "1 if the last configuration reload succeeded.",
    ),
    Family(
        "sync_exporter_config_last_reload_success_timestamp_seconds",
        "Unix time of the last successful configuration (re)load.",
    ),
)

ERROR_REASONS: tuple[str, ...] = (
    "timeout",
    "connect",
    "unauthorized",
    "not_found",
    "rate_limited",
    "server_error",
    "bad_response",
)

_BY_NAME = {family.name: family for family in (*SYNC_FAMILIES, *EXPORTER_FAMILIES)}


def exporter_family(name: str) -> Family:
    """Look up one of the exporter's own families, so its help text is written once."""
    return _BY_NAME[name]


def markdown_table() -> str:
    """The README's metric table, generated so the docs cannot drift from the code."""
    rows = ["| metric | type | labels | meaning |", "|---|---|---|---|"]
    for family in (*SYNC_FAMILIES, *EXPORTER_FAMILIES):
        base = TARGET_LABELS if family in SYNC_FAMILIES else ()
        labels = ", ".join(f"`{label}`" for label in (*base, *family.labels))
        rows.append(f"| `{family.name}` | {family.type} | {labels} | {family.help} |")
    return "\n".join(rows) + "\n"
