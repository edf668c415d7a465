"""Every metric name and help text the exporter serves: the core families here, each adapter's own
families in its module, and the docs tables generated from both (the metric contract)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from exporter.model import CORE_INFO_LABELS

TARGET_LABELS: tuple[str, ...] = ("source", "provider", "sync_id")
# Base units a family name may end with, declared as its unit in OpenMetrics.
UNITS: tuple[str, ...] = ("seconds", "ratio", "bytes")


@dataclass(frozen=True, slots=True)
class Family:
    """One metric family: its name, help text, type and the labels it adds to a sync's labels.

    `field` names the SyncStatus attribute (core families) or the key in `SyncStatus.values`
    (an adapter's number families) that holds the sample. An adapter's state-set family has
    one label and `states`: every known state gets a sample, 1 for the one seen, and a state
    outside that open set gets a sample of its own.
    """

    name: str
    help: str
    type: str = "gauge"
    labels: tuple[str, ...] = ()
    field: str = ""
    states: tuple[str, ...] = ()

    @property
    def unit(self) -> str:
        """The unit OpenMetrics declares (`# UNIT`), read from the name's base-unit suffix."""
        return next((unit for unit in UNITS if self.name.endswith(f"_{unit}")), "")


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
    "Always 1; descriptive labels of the sync as the provider reports them, empty when absent "
    "(each provider adds labels of its own, see the per-provider tables).",
    labels=CORE_INFO_LABELS,
)
SYNC_ERROR_INFO = Family(
    "sync_error_info",
    "1 while the sync is errored; the reason label holds the provider's error message "
    "(at most 200 characters).",
    labels=("reason",),
)
SYNC_READ_TIMESTAMP = Family(
    "sync_status_read_timestamp_seconds",
    "Unix time the exporter read this status from the provider: earlier than the scrape when "
    "the source's min_interval or max_requests_per_second served an earlier reading.",
)
SYNC_LAST_SYNCED_AGE = Family(
    "sync_last_synced_age_seconds",
    "Seconds between the last successful sync and this collection.",
)
SYNC_STALE_THRESHOLD = Family(
    "sync_stale_threshold_seconds",
    "Staleness budget: the sync counts as stale once its last successful sync is older than "
    "this (from stale_after in the config, or derived from the sync interval); exported only "
    "with a last successful sync time.",
)

# A family more than one adapter fills (Sequin's health, a generic source's warning): defined
# once, as two adapters' families of one name must agree.
SYNC_HEALTH = Family(
    "sync_health",
    "The provider's health of the sync as a state set over the statuses seen so far "
    "(Sequin's health status; warn or ok for a generic source with a warning field; an "
    "unseen status gets a series of its own; unknown when absent): exactly one is 1.",
    labels=("status",),
    field="health",
    states=("healthy", "ok", "warn", "error", "unknown"),
)

# Core families with one sample per sync whose value is a SyncStatus field, emitted when set.
VALUE_FAMILIES: tuple[Family, ...] = (
    Family(
        "sync_progress_ratio",
        "Progress of the current sync run, from 0 to 1.",
        field="progress_ratio",
    ),
    Family(
        "sync_records_expected",
        "Number of records the provider expects to sync.",
        field="records_expected",
    ),
    Family(
        "sync_records_synced",
        "Number of records synced so far.",
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
)

# Order in which the core per-sync families appear in the exposition; adapters' families follow.
SYNC_FAMILIES: tuple[Family, ...] = (
    SYNC_UP,
    SYNC_STATE,
    SYNC_PROVIDER_STATUS,
    SYNC_INFO,
    SYNC_ERROR_INFO,
    *VALUE_FAMILIES,
    SYNC_READ_TIMESTAMP,
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
        "Number of syncs read per source: the configured ones plus those discovered.",
        labels=("source", "provider"),
    ),
    Family(
        "sync_exporter_syncs_dropped",
        "Syncs the last listing of a source returned but the exporter does not read, by reason "
        "(invalid_id: an id that is empty, too long, a path segment or unprintable; max_syncs: "
        "beyond the source's max_syncs; unreadable_item: a list item holding a string no "
        "UTF-8 can carry).",
        labels=("source", "reason"),
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
        "Failed reads of a sync's status and failed listings, by source and reason.",
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
        "sync_exporter_reads_not_started_total",
        "Reads of a sync's status never sent because the scrape's deadline came first (too "
        "many syncs or too slow a provider for the deadline); not counted as upstream errors.",
        type="counter",
        labels=("source",),
    ),
    Family(
        "sync_exporter_budget_deferred_total",
        "Reads put off because the source's max_requests_per_second could not cover them "
        "before the scrape's deadline; the sync's last reading was served instead.",
        type="counter",
        labels=("source",),
    ),
    Family(
        "sync_exporter_readings_reused_total",
        "Syncs served from a reading younger than the source's min_interval, without a request.",
        type="counter",
        labels=("source",),
    ),
    Family(
        "sync_exporter_webhook_events_total",
        "Webhook deliveries accepted, by source and event (names a provider does not "
        "document count as other).",
        type="counter",
        labels=("source", "event"),
    ),
    Family(
        "sync_exporter_webhook_rejected_total",
        "Webhook deliveries refused or not applied, by source and reason (missing_signature, "
        "bad_signature, too_large, too_slow, bad_json, unmatched).",
        type="counter",
        labels=("source", "reason"),
    ),
    Family(
        "sync_exporter_source_backoff_seconds",
        "Seconds left before the exporter calls this source again after a 429 Retry-After.",
        labels=("source",),
    ),
    Family(
        "sync_exporter_tokens_minted_total",
        "Tokens the exporter signed or requested for sources that mint them (Paragon signing "
        "keys, OAuth2 client credentials).",
        type="counter",
        labels=("source",),
    ),
    Family(
        "sync_exporter_token_mint_failures_total",
        "Tokens the exporter failed to sign or to obtain.",
        type="counter",
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

# Families about a sync's runs, kept by exporter/collect/runs.py beside the readings.
SYNC_RUNS = Family(
    "sync_runs_total",
    "Runs of the sync seen to end since the exporter started, by outcome (succeeded, failed), "
    "from webhook events and from readings; a run seen both ways or delivered twice counts once.",
    type="counter",
    labels=("outcome",),
)
SYNC_LAST_RUN_FAILED = Family(
    "sync_last_run_failed_timestamp_seconds",
    "Unix time the exporter last saw a run of the sync fail.",
)
RUN_FAMILIES: tuple[Family, ...] = (SYNC_RUNS, SYNC_LAST_RUN_FAILED)

_BY_NAME = {family.name: family for family in (*SYNC_FAMILIES, *EXPORTER_FAMILIES)}


def exporter_family(name: str) -> Family:
    """Look up one of the exporter's own families, so its help text is written once."""
    return _BY_NAME[name]


def _row(family: Family, base: Sequence[str]) -> str:
    labels = ", ".join(f"`{label}`" for label in (*base, *family.labels))
    return f"| `{family.name}` | {family.type} | {labels} | {family.help} |"


def table(families: Sequence[Family], base: Sequence[str] = TARGET_LABELS) -> str:
    """A Markdown table of families, each row listing `base` labels before the family's own."""
    rows = ["| metric | type | labels | meaning |", "|---|---|---|---|"]
    rows += [_row(family, base) for family in families]
    return "\n".join(rows) + "\n"
