"""The fleet overview dashboard: which syncs need attention now, across every source."""

from __future__ import annotations

from grafana_foundation_sdk.builders import bargauge
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as builders
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as models

from dashboards.panels import (
    DATASOURCE,
    JOB,
    MERGE,
    NOISE,
    SOURCE,
    STATE_COLORS,
    SYNC,
    SYNC_KEY,
    fixed_color,
    graph,
    new_dashboard,
    organize,
    query,
    stat_panel,
    steps,
    table_panel,
    targets_up,
    with_queries,
)
from exporter.model import STATES


def fleet() -> builders.Dashboard:
    """Fleet overview: which syncs need attention now, and is the exporter seeing them all."""
    dashboard = new_dashboard(
        "sync-fleet-overview",
        "Sync status / Fleet overview",
        "Every watched sync at a glance: states, errors, staleness, rate limits, progress.",
    )
    dashboard = dashboard.with_row(builders.Row("Overview"))
    by_state = stat_panel(
        "Syncs by state",
        "Number of syncs currently in each canonical state (sync_state).",
        width=12,
    ).text_mode(common.BigValueTextMode.VALUE_AND_NAME)
    for state in STATES:
        by_state = by_state.override_by_name(state.value, [fixed_color(STATE_COLORS[state])])
    dashboard = (
        dashboard.with_panel(
            with_queries(
                stat_panel(
                    "Syncs watched",
                    "Syncs the exporter reads (one sync_up series each), readable or not.",
                    width=4,
                ),
                query(f"count(sync_up{{{SYNC}}})", instant=True),
            )
        )
        .with_panel(
            with_queries(
                by_state, query(f"sum by (state) (sync_state{{{SYNC}}})", "{{state}}", instant=True)
            )
        )
        .with_panel(
            with_queries(
                stat_panel(
                    "Status unreadable",
                    "Syncs whose status the exporter could not read in the last scrape "
                    "(sync_up == 0); see the Exporter dashboard for why.",
                    width=4,
                ).thresholds(steps((None, "green"), (1, "red"))),
                query(f"count(sync_up{{{SYNC}}} == 0) or vector(0)", instant=True),
            )
        )
        .with_panel(
            with_queries(
                stat_panel(
                    "Firing sync alerts",
                    "Alerts of this project's rules firing now, from Prometheus's ALERTS "
                    "series (0 when the rules are not loaded in this Prometheus).",
                    width=4,
                ).thresholds(steps((None, "green"), (1, "red"))),
                query(
                    'count(ALERTS{alertname=~"Sync.*", alertstate="firing", job=~"$job"})'
                    " or vector(0)",
                    instant=True,
                ),
            )
        )
    )
    by_state_graph = graph(
        "Syncs by state over time",
        "Stacked number of syncs in each state. Gaps mean no sync's status was read.",
        "short",
        width=24,
    ).stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
    by_state_graph = by_state_graph.fill_opacity(40)
    for state in STATES:
        by_state_graph = by_state_graph.override_by_name(
            state.value, [fixed_color(STATE_COLORS[state])]
        )
    dashboard = dashboard.with_panel(
        with_queries(by_state_graph, query(f"sum by (state) (sync_state{{{SYNC}}})", "{{state}}"))
    )

    dashboard = dashboard.with_row(builders.Row("Problems"))
    dashboard = (
        dashboard.with_panel(
            with_queries(
                table_panel(
                    "Errored syncs",
                    "Syncs in state errored now, with the provider's error message "
                    "(sync_error_info), the sync's name and integration, and for a Terminal "
                    "connection its latest job (sync_info); Paragon syncs read with minted "
                    "tokens show their user.",
                    width=24,
                    height=7,
                ).with_transformation(organize((*NOISE, "Value"), {"reason": "error"})),
                query(
                    f"sync_error_info{{{SYNC}}}\n"
                    f"* on ({SYNC_KEY}) group_left (name, integration, job_id)\n"
                    f"sync_info{{{SYNC}}}",
                    as_table=True,
                ),
            )
        )
        .with_panel(
            with_queries(
                table_panel(
                    "Health warnings",
                    "Syncs whose provider reports their health as warn now (sync_health: "
                    "Sequin's health, a generic source's warning such as Merge's partly "
                    "synced models or Fivetran's delayed data): still running, but something "
                    "needs attention; SyncHealthWarning fires after 30 minutes.",
                    width=24,
                    height=5,
                ).with_transformation(organize((*NOISE, "Value"), {"status": "health"})),
                query(
                    f'(sync_health{{{SYNC}, status="warn"}} == 1)\n'
                    f"* on ({SYNC_KEY}) group_left (name, integration)\n"
                    f"sync_info{{{SYNC}}}",
                    as_table=True,
                ),
            )
        )
        .with_panel(
            with_queries(
                table_panel(
                    "Stalest syncs against their budgets",
                    "Syncs with a last success time (Paragon, Terminal connections), stalest "
                    "first: share of the "
                    "staleness budget used (over 100% means SyncStale is pending or firing), "
                    "time since the last successful sync, and the budget "
                    "(sync_stale_threshold_seconds).",
                )
                .with_transformation(MERGE)
                .with_transformation(
                    organize(
                        NOISE,
                        {
                            "Value #A": "budget used",
                            "Value #B": "since last sync",
                            "Value #C": "budget",
                        },
                    )
                )
                .sort_by(
                    [common_builders.TableSortByFieldState().display_name("budget used").desc(True)]
                )
                .override_by_name(
                    "budget used",
                    [
                        models.DynamicConfigValue(id_val="unit", value="percentunit"),
                        models.DynamicConfigValue(
                            id_val="custom.cellOptions", value={"type": "color-background"}
                        ),
                        models.DynamicConfigValue(
                            id_val="thresholds",
                            value={
                                "mode": "absolute",
                                "steps": [
                                    {"value": None, "color": "green"},
                                    {"value": 0.8, "color": "orange"},
                                    {"value": 1, "color": "red"},
                                ],
                            },
                        ),
                    ],
                )
                .override_by_name(
                    "since last sync", [models.DynamicConfigValue(id_val="unit", value="s")]
                )
                .override_by_name("budget", [models.DynamicConfigValue(id_val="unit", value="s")]),
                query(
                    f"(time() - sync_last_synced_timestamp_seconds{{{SYNC}}})\n"
                    f"/ sync_stale_threshold_seconds{{{SYNC}}}",
                    as_table=True,
                ),
                query(f"time() - sync_last_synced_timestamp_seconds{{{SYNC}}}", as_table=True),
                query(
                    f"sync_stale_threshold_seconds{{{SYNC}}}\n"
                    f"and on ({SYNC_KEY}) sync_last_synced_timestamp_seconds{{{SYNC}}}",
                    as_table=True,
                ),
            )
        )
        .with_panel(
            with_queries(
                table_panel(
                    "Rate-limited syncs",
                    "Syncs in state rate_limited now and how long each is still backing off "
                    "from the third-party API (sync_rate_limit_backoff_seconds).",
                )
                .unit("s")
                .with_transformation(organize(NOISE, {"Value": "backoff left"})),
                query(
                    f"sync_rate_limit_backoff_seconds{{{SYNC}}}\n"
                    f"and on ({SYNC_KEY})\n"
                    f'sync_state{{{SYNC}, state="rate_limited"}} == 1',
                    as_table=True,
                ),
            )
        )
        .with_panel(
            with_queries(
                bargauge.Panel()
                .title("Progress of running syncs")
                .description(
                    "Progress ratio (sync_progress_ratio) of syncs that are initializing or "
                    "active now, one bar per sync."
                )
                .datasource(DATASOURCE)
                .span(24)
                .height(8)
                .unit("percentunit")
                .min(0)
                .max(1)
                .display_mode(common.BarGaugeDisplayMode.GRADIENT)
                .orientation(common.VizOrientation.HORIZONTAL)
                .reduce_options(
                    common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False)
                ),
                query(
                    f"sync_progress_ratio{{{SYNC}}}\n"
                    f"and on ({SYNC_KEY})\n"
                    f'sync_state{{{SYNC}, state=~"initializing|active"}} == 1',
                    "{{source}} / {{sync_id}}",
                    instant=True,
                ),
            )
        )
    )

    dashboard = dashboard.with_panel(
        with_queries(
            graph(
                "Worst run failure ratio by source",
                "The 5 sources whose runs fail most: failed share of the runs that ended "
                "(sync_runs_total, from webhooks and readings). SyncRunFailureRateHigh "
                "watches the same share per sync over 6h and 30m.",
                "percentunit",
                width=24,
            ).min(0),
            query(
                "topk(5, sum by (source) "
                f'(rate(sync_runs_total{{{SYNC}, outcome="failed"}}[$__rate_interval])) '
                f"/ sum by (source) (rate(sync_runs_total{{{SYNC}}}[$__rate_interval])))",
                "{{source}}",
            ),
        )
    )
    dashboard = dashboard.with_row(builders.Row("Exporter health"))
    return (
        dashboard.with_panel(
            targets_up(
                "Exporter targets up",
                "Scrape targets of the job answering Prometheus (up), out of all targets.",
                width=6,
            )
        )
        .with_panel(
            with_queries(
                stat_panel(
                    "Status reads succeeding",
                    "Share of the selected syncs whose status was read in the last scrape "
                    "(mean of sync_up).",
                    width=6,
                )
                .unit("percentunit")
                .thresholds(steps((None, "red"), (0.9, "orange"), (1, "green"))),
                query(f"avg(sync_up{{{SYNC}}})", instant=True),
            )
        )
        .with_panel(
            with_queries(
                graph(
                    "Read errors by source and reason",
                    "Failed reads of sync statuses per second (sync_exporter_errors_total).",
                    "ops",
                ),
                query(
                    "sum by (source, reason) "
                    f"(rate(sync_exporter_errors_total{{{SOURCE}}}[$__rate_interval]))",
                    "{{source}}: {{reason}}",
                ),
            )
        )
        .with_panel(
            with_queries(
                graph(
                    "Collection duration",
                    "Time the exporter took to read every sync "
                    "(sync_exporter_collection_duration_seconds) and Prometheus's whole "
                    "scrape (scrape_duration_seconds), per exporter instance.",
                    "s",
                ),
                query(
                    f"max by (instance) (sync_exporter_collection_duration_seconds{{{JOB}}})",
                    "{{instance}} collection",
                ),
                query(
                    f"max by (instance) (scrape_duration_seconds{{{JOB}}})", "{{instance}} scrape"
                ),
            )
        )
    )
