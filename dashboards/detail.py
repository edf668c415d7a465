"""The sync detail dashboard: one sync's state history and every figure reported about it."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as builders
from grafana_foundation_sdk.models import common

from dashboards.panels import (
    NOISE,
    SYNC,
    fixed_color,
    graph,
    mapping,
    new_dashboard,
    organize,
    query,
    stat_panel,
    state_code,
    state_mappings,
    table_panel,
    timeline,
    with_queries,
)


def detail() -> builders.Dashboard:
    """One sync: its state history and every figure the provider reports about it."""
    dashboard = new_dashboard(
        "sync-detail",
        "Sync status / Sync detail",
        "One sync over time: state, progress, records, staleness, rate limit, attempts.",
        sync_multi=False,
    )
    dashboard = dashboard.with_row(builders.Row("Now"))
    dashboard = (
        dashboard.with_panel(
            with_queries(
                stat_panel("State", "Canonical state now (sync_state).", width=5)
                .mappings(state_mappings())
                .color_mode(common.BigValueColorMode.BACKGROUND),
                query(state_code(SYNC), instant=True),
            )
        )
        .with_panel(
            with_queries(
                stat_panel(
                    "Provider status",
                    "The provider's own status string (sync_provider_status).",
                    width=5,
                ).text_mode(common.BigValueTextMode.NAME),
                query(f"sync_provider_status{{{SYNC}}}", "{{status}}", instant=True),
            )
        )
        .with_panel(
            with_queries(
                stat_panel(
                    "Status read",
                    "Whether the exporter read this sync's status in the last scrape (sync_up).",
                    width=4,
                )
                .mappings(mapping(("1", "yes", "green"), ("0", "no", "red")))
                .color_mode(common.BigValueColorMode.BACKGROUND),
                query(f"sync_up{{{SYNC}}}", instant=True),
            )
        )
        .with_panel(
            with_queries(
                stat_panel(
                    "Last synced",
                    "When the last successful sync finished "
                    "(sync_last_synced_timestamp_seconds; Paragon, and Terminal connections' "
                    "latest completed job).",
                    width=5,
                ).unit("dateTimeFromNow"),
                query(f"sync_last_synced_timestamp_seconds{{{SYNC}}} * 1000", instant=True),
            )
        )
        .with_panel(
            with_queries(
                stat_panel(
                    "Sync interval",
                    "Configured interval between incremental syncs (sync_interval_seconds; "
                    "0 for continuous syncs).",
                    width=5,
                ).unit("s"),
                query(f"sync_interval_seconds{{{SYNC}}}", instant=True),
            )
        )
        .with_panel(
            with_queries(
                table_panel(
                    "Sync",
                    "Descriptive labels the provider reports (sync_info).",
                    width=12,
                    height=4,
                ).with_transformation(organize((*NOISE, "Value"), {})),
                query(f"sync_info{{{SYNC}}}", as_table=True),
            )
        )
        .with_panel(
            with_queries(
                stat_panel(
                    "Error",
                    "The provider's error message while the sync is errored "
                    "(sync_error_info); empty otherwise.",
                    width=12,
                )
                .text_mode(common.BigValueTextMode.NAME)
                .no_value("not errored"),
                query(f"sync_error_info{{{SYNC}}}", "{{reason}}", instant=True),
            )
        )
    )
    dashboard = dashboard.with_row(builders.Row("History"))
    return (
        dashboard.with_panel(
            with_queries(
                timeline(
                    "State over time",
                    "Canonical state over time; gaps are scrapes where the status was not read.",
                ).mappings(state_mappings()),
                query(state_code(SYNC), "{{sync_id}}"),
            )
        )
        .with_panel(
            with_queries(
                timeline(
                    "Status read over time",
                    "Whether each scrape read the sync's status (sync_up).",
                    height=4,
                ).mappings(mapping(("1", "read", "green"), ("0", "not read", "red"))),
                query(f"sync_up{{{SYNC}}}", "{{sync_id}}"),
            )
        )
        .with_panel(
            with_queries(
                graph(
                    "Progress", "Progress of the current run (sync_progress_ratio).", "percentunit"
                )
                .min(0)
                .max(1),
                query(f"sync_progress_ratio{{{SYNC}}}", "progress"),
            )
        )
        .with_panel(
            with_queries(
                graph(
                    "Records synced vs expected",
                    "Records synced so far (sync_records_synced) against the records the "
                    "provider expects (sync_records_expected).",
                    "short",
                ),
                query(f"sync_records_synced{{{SYNC}}}", "synced"),
                query(f"sync_records_expected{{{SYNC}}}", "expected"),
            )
        )
        .with_panel(
            with_queries(
                graph(
                    "Age vs staleness budget",
                    "Time since the last successful sync, computed from "
                    "sync_last_synced_timestamp_seconds, against the budget "
                    "(sync_stale_threshold_seconds): SyncStale fires once age stays above it.",
                    "s",
                ).override_by_name("budget", [fixed_color("red")]),
                query(f"time() - sync_last_synced_timestamp_seconds{{{SYNC}}}", "age"),
                query(f"sync_stale_threshold_seconds{{{SYNC}}}", "budget"),
            )
        )
        .with_panel(
            with_queries(
                graph(
                    "Rate-limit backoff",
                    "Seconds the sync is backing off from the third-party API "
                    "(sync_rate_limit_backoff_seconds; 0 when not rate limited).",
                    "s",
                ),
                query(f"sync_rate_limit_backoff_seconds{{{SYNC}}}", "backoff"),
            )
        )
        .with_panel(
            with_queries(
                graph(
                    "Runs per hour by outcome",
                    "Runs ending per hour, succeeded and failed (sync_runs_total, counted "
                    "from webhooks and readings).",
                    "short",
                    width=24,
                ),
                query(
                    f"sum by (outcome) (rate(sync_runs_total{{{SYNC}}}[$__rate_interval])) * 3600",
                    "{{outcome}}",
                ),
            )
        )
        .with_panel(
            with_queries(
                graph(
                    "Attempts and issues",
                    "Attempts the provider made for the current job (sync_attempts) and "
                    "issues it reports (sync_issues).",
                    "short",
                    width=24,
                ),
                query(f"sync_attempts{{{SYNC}}}", "attempts"),
                query(f"sync_issues{{{SYNC}}}", "issues"),
            )
        )
    )
