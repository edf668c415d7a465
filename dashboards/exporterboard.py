"""The exporter dashboard: the exporter's own health and how the provider APIs answer."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as builders
from grafana_foundation_sdk.models import common

from dashboards.panels import (
    JOB,
    NOISE,
    SOURCE,
    SYNC,
    fixed_color,
    graph,
    mapping,
    new_dashboard,
    organize,
    query,
    stat_panel,
    table_panel,
    targets_up,
    with_queries,
)


def exporter() -> builders.Dashboard:
    """The exporter itself: is it keeping up, and how are the provider APIs answering."""
    dashboard = new_dashboard(
        "sync-exporter",
        "Sync status / Exporter",
        "The exporter's own health: collection time against the scrape timeout, and the "
        "provider APIs' request rate, latency, errors and rate limiting.",
    )
    dashboard = dashboard.with_row(builders.Row("Exporter"))
    dashboard = (
        dashboard.with_panel(
            with_queries(
                stat_panel(
                    "Version",
                    "Exporter version and Python version per instance (sync_exporter_build_info).",
                ).text_mode(common.BigValueTextMode.NAME),
                query(
                    f"sync_exporter_build_info{{{JOB}}}",
                    "{{version}} (Python {{python_version}})",
                    instant=True,
                ),
            )
        )
        .with_panel(
            targets_up(
                "Targets up",
                "Scrape targets answering Prometheus (up), out of all targets of the job.",
                width=4,
            )
        )
        .with_panel(
            with_queries(
                stat_panel(
                    "Syncs configured",
                    "Syncs in the exporter's configuration (sync_exporter_syncs_configured).",
                    width=4,
                ),
                query(
                    f'sum(sync_exporter_syncs_configured{{{SOURCE}, provider=~"$provider"}})',
                    instant=True,
                ),
            )
        )
        .with_panel(
            with_queries(
                stat_panel(
                    "Config reload",
                    "Whether the last configuration reload succeeded on every instance "
                    "(sync_exporter_config_last_reload_successful).",
                    width=4,
                )
                .mappings(mapping(("1", "ok", "green"), ("0", "failed", "red")))
                .color_mode(common.BigValueColorMode.BACKGROUND),
                query(f"min(sync_exporter_config_last_reload_successful{{{JOB}}})", instant=True),
            )
        )
        .with_panel(
            with_queries(
                stat_panel(
                    "Config loaded",
                    "When the configuration in use was loaded "
                    "(sync_exporter_config_last_reload_success_timestamp_seconds).",
                ).unit("dateTimeFromNow"),
                query(
                    "max(sync_exporter_config_last_reload_success_timestamp_seconds"
                    f"{{{JOB}}}) * 1000",
                    instant=True,
                ),
            )
        )
    )
    dashboard = dashboard.with_row(builders.Row("Collection"))
    dashboard = (
        dashboard.with_panel(
            with_queries(
                graph(
                    "Collection duration vs scrape timeout",
                    "Time to read every sync (sync_exporter_collection_duration_seconds) and "
                    "the whole scrape (scrape_duration_seconds) against the scrape timeout "
                    "(scrape_timeout_seconds, only with Prometheus's "
                    "--enable-feature=extra-scrape-metrics). A collection that reaches the "
                    "timeout minus 0.5 s is cut short: unread syncs get sync_up 0.",
                    "s",
                ).override_by_regexp(".*timeout", [fixed_color("red")]),
                query(
                    f"sync_exporter_collection_duration_seconds{{{JOB}}}",
                    "{{instance}} collection",
                ),
                query(f"scrape_duration_seconds{{{JOB}}}", "{{instance}} scrape"),
                query(f"scrape_timeout_seconds{{{JOB}}}", "{{instance}} timeout"),
            )
        )
        .with_panel(
            with_queries(
                graph(
                    "Status reads succeeding by source",
                    "Share of each source's syncs whose status was read (mean of sync_up).",
                    "percentunit",
                )
                .min(0)
                .max(1),
                query(f"avg by (source) (sync_up{{{SYNC}}})", "{{source}}"),
            )
        )
        .with_panel(
            with_queries(
                table_panel(
                    "Unreadable syncs",
                    "Syncs whose status the last scrape could not read (sync_up == 0). The "
                    "exporter logs the reason once when a sync starts failing; the Read "
                    "errors panel shows the reasons by source.",
                    width=24,
                    height=6,
                ).with_transformation(organize((*NOISE, "Value"), {})),
                query(f"sync_up{{{SYNC}}} == 0", as_table=True),
            )
        )
    )
    dashboard = dashboard.with_row(builders.Row("Provider APIs"))
    rate = "[$__rate_interval]"
    dashboard = (
        dashboard.with_panel(
            with_queries(
                graph(
                    "Requests by source and code",
                    "Requests to provider APIs per second by HTTP status code "
                    "(sync_exporter_upstream_requests_total; empty code: no response).",
                    "reqps",
                ),
                query(
                    "sum by (source, code) "
                    f"(rate(sync_exporter_upstream_requests_total{{{SOURCE}}}{rate}))",
                    "{{source}} {{code}}",
                ),
            )
        )
        .with_panel(
            with_queries(
                graph(
                    "Request latency",
                    "Median and 99th percentile duration of requests to provider APIs "
                    "(sync_exporter_upstream_request_duration_seconds).",
                    "s",
                ),
                query(
                    "histogram_quantile(0.5, sum by (source, le) (rate("
                    f"sync_exporter_upstream_request_duration_seconds_bucket{{{SOURCE}}}{rate})))",
                    "{{source}} p50",
                ),
                query(
                    "histogram_quantile(0.99, sum by (source, le) (rate("
                    f"sync_exporter_upstream_request_duration_seconds_bucket{{{SOURCE}}}{rate})))",
                    "{{source}} p99",
                ),
            )
        )
        .with_panel(
            with_queries(
                graph(
                    "Failed requests by source and code",
                    "Requests per second answered with anything but 2xx, or not answered "
                    "(empty code).",
                    "reqps",
                ),
                query(
                    "sum by (source, code) (rate(sync_exporter_upstream_requests_total"
                    f'{{{SOURCE}, code!~"2.."}}{rate}))',
                    "{{source}} {{code}}",
                ),
            )
        )
        .with_panel(
            with_queries(
                graph(
                    "Read errors by source and reason",
                    "Failed reads of sync statuses per second by reason "
                    "(sync_exporter_errors_total).",
                    "ops",
                ),
                query(
                    f"sum by (source, reason) (rate(sync_exporter_errors_total{{{SOURCE}}}{rate}))",
                    "{{source}}: {{reason}}",
                ),
            )
        )
        .with_panel(
            with_queries(
                graph(
                    "Source backoff",
                    "Seconds before the exporter calls a source again after HTTP 429 "
                    "(sync_exporter_source_backoff_seconds).",
                    "s",
                ),
                query(f"sync_exporter_source_backoff_seconds{{{SOURCE}}}", "{{source}}"),
            )
        )
        .with_panel(
            with_queries(
                graph(
                    "Reads skipped while backing off",
                    "Status reads per second not sent because the source is backing off "
                    "(sync_exporter_upstream_requests_skipped_total).",
                    "ops",
                ),
                query(
                    "sum by (source) (rate("
                    f"sync_exporter_upstream_requests_skipped_total{{{SOURCE}}}{rate}))",
                    "{{source}}",
                ),
            )
        )
        .with_panel(
            with_queries(
                graph(
                    "Reads spared the provider",
                    "Syncs per second served from an earlier reading instead of a request: "
                    "younger than the source's min_interval (reused), or put off by its "
                    "max_requests_per_second (deferred); and reads the scrape deadline left "
                    "unstarted.",
                    "ops",
                    width=24,
                ),
                query(
                    "sum by (source) (rate("
                    f"sync_exporter_readings_reused_total{{{SOURCE}}}{rate}))",
                    "{{source}} reused",
                ),
                query(
                    "sum by (source) (rate("
                    f"sync_exporter_budget_deferred_total{{{SOURCE}}}{rate}))",
                    "{{source}} deferred",
                ),
                query(
                    "sum by (source) (rate("
                    f"sync_exporter_reads_not_started_total{{{SOURCE}}}{rate}))",
                    "{{source}} not started",
                ),
            )
        )
    )
    dashboard = dashboard.with_row(builders.Row("Process"))
    return (
        dashboard.with_panel(
            with_queries(
                graph(
                    "CPU",
                    "CPU seconds used per second (process_cpu_seconds_total).",
                    "short",
                    width=8,
                ),
                query(f"rate(process_cpu_seconds_total{{{JOB}}}{rate})", "{{instance}}"),
            )
        )
        .with_panel(
            with_queries(
                graph(
                    "Memory",
                    "Resident memory (process_resident_memory_bytes).",
                    "bytes",
                    width=8,
                ),
                query(f"process_resident_memory_bytes{{{JOB}}}", "{{instance}}"),
            )
        )
        .with_panel(
            with_queries(
                graph(
                    "Open file descriptors",
                    "Open file descriptors against the limit (process_open_fds, "
                    "process_max_fds); connections to providers use them.",
                    "short",
                    width=8,
                ),
                query(f"process_open_fds{{{JOB}}}", "{{instance}} open"),
                query(f"process_max_fds{{{JOB}}}", "{{instance}} max"),
            )
        )
    )
