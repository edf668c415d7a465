"""Build the Grafana dashboards with grafana-foundation-sdk and write them as JSON.

Generated rather than hand-written so the three dashboards share one set of variables,
selectors and state colours, and so `docs/alerts-and-dashboards.md` can list every panel's
queries straight from the code. `python -m dashboards.generate` rewrites the JSON files
(a test checks the committed ones equal this output); `--docs` prints the panel reference.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from grafana_foundation_sdk.builders import bargauge, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as builders
from grafana_foundation_sdk.builders import prometheus as prometheus_builders
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as models
from grafana_foundation_sdk.models import prometheus as prometheus_models

from exporter.model import STATES, State

DIRECTORY = Path(__file__).resolve().parent
DATASOURCE = models.DataSourceRef(type_val="prometheus", uid="${datasource}")
TAGS = ["sync-status-exporter"]

# Labels identifying one sync's series; joins between per-sync families use them.
SYNC_KEY = "job, instance, source, provider, sync_id"
# Selectors of the template variables, for per-sync, per-source and per-target series.
SYNC = 'job=~"$job", source=~"$source", provider=~"$provider", sync_id=~"$sync_id"'
SOURCE = 'job=~"$job", source=~"$source"'
JOB = 'job=~"$job"'

STATE_COLORS: dict[State, str] = {
    State.INITIALIZING: "purple",
    State.ACTIVE: "blue",
    State.IDLE: "green",
    State.RATE_LIMITED: "orange",
    State.DISABLED: "#8e8e8e",
    State.ERRORED: "red",
    State.UNKNOWN: "yellow",
}

Panel = TypeVar(
    "Panel", stat.Panel, timeseries.Panel, table.Panel, statetimeline.Panel, bargauge.Panel
)


# --- building blocks --------------------------------------------------------------------------


def query(
    expr: str, legend: str = "", *, instant: bool = False, as_table: bool = False
) -> prometheus_builders.Dataquery:
    """One Prometheus target; tables and single values ask for an instant query."""
    target = prometheus_builders.Dataquery().expr(expr).datasource(DATASOURCE)
    if legend:
        target = target.legend_format(legend)
    if as_table:
        target = target.format(prometheus_models.PromQueryFormat.TABLE)
    return target.instant() if instant or as_table else target.range()


def with_queries(panel: Panel, *targets: prometheus_builders.Dataquery) -> Panel:
    """Attach targets with ref ids A, B, ... in order (the SDK leaves them empty)."""
    for index, target in enumerate(targets):
        panel = panel.with_target(target.ref_id(chr(ord("A") + index)))
    return panel


def mapping(*entries: tuple[str, str, str]) -> list[models.ValueMapping]:
    """Value mappings `value -> (text, colour)` in the order given."""
    options = {
        value: models.ValueMappingResult(text=text, color=color, index=index)
        for index, (value, text, color) in enumerate(entries)
    }
    return [models.ValueMap(options=options)]


def steps(*pairs: tuple[float | None, str]) -> cogbuilder.Builder[models.ThresholdsConfig]:
    """Absolute thresholds; the first value is None (the base colour)."""
    return (
        builders.ThresholdsConfig()
        .mode(models.ThresholdsMode.ABSOLUTE)
        .steps([models.Threshold(value=value, color=color) for value, color in pairs])
    )


def fixed_color(color: str) -> models.DynamicConfigValue:
    """An override property painting a field in one colour."""
    return models.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": color})


def organize(hide: Sequence[str], rename: dict[str, str]) -> models.DataTransformerConfig:
    """Grafana's "organize fields" transformation: hide columns, rename the rest."""
    return models.DataTransformerConfig(
        id_val="organize",
        options={
            "excludeByName": dict.fromkeys(hide, True),
            "renameByName": rename,
            "indexByName": {},
        },
    )


MERGE = models.DataTransformerConfig(id_val="merge", options={})
# Columns of table queries that say nothing to a reader.
NOISE = ("Time", "__name__", "job", "instance")


def stat_panel(title: str, description: str, width: int = 6, height: int = 4) -> stat.Panel:
    """A single-value panel showing the last value of each series."""
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .span(width)
        .height(height)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .graph_mode(common.BigValueGraphMode.NONE)
        .color_mode(common.BigValueColorMode.VALUE)
    )


def targets_up(title: str, description: str, width: int) -> stat.Panel:
    """How many of the job's scrape targets answer, out of all: on two dashboards."""
    return with_queries(
        stat_panel(title, description, width=width).text_mode(
            common.BigValueTextMode.VALUE_AND_NAME
        ),
        query(f"sum(up{{{JOB}}})", "up", instant=True),
        query(f"count(up{{{JOB}}})", "targets", instant=True),
    )


def graph(title: str, description: str, unit: str, width: int = 12) -> timeseries.Panel:
    """A time series panel with its legend as a table, so long label sets stay readable."""
    return (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .span(width)
        .height(8)
        .unit(unit)
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["lastNotNull", "max"])
        )
    )


def table_panel(title: str, description: str, width: int = 12, height: int = 8) -> table.Panel:
    """A table of instant values, one row per series."""
    return (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .span(width)
        .height(height)
        .show_header(True)
    )


def timeline(title: str, description: str, height: int = 6) -> statetimeline.Panel:
    """A full-width state timeline."""
    return (
        statetimeline.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .span(24)
        .height(height)
        .show_value(common.VisibilityMode.AUTO)
        .merge_values(True)
        .row_height(0.8)
    )


def state_code(selector: str) -> str:
    """One number per sync naming its state (1 = first state of the contract, ...).

    `sync_state` is a state set, one series per state; a state timeline wants one series
    whose value maps to a name, so each state's 0/1 is multiplied by its code and the
    largest (the only non-zero) kept.
    """
    terms = [
        f'sync_state{{{selector}, state="{state.value}"}} * {code}'
        for code, state in enumerate(STATES, start=1)
    ]
    body = "\n  or ".join(terms)
    return f"max by ({SYNC_KEY}) (\n  {body}\n)"


def state_mappings() -> list[models.ValueMapping]:
    """Value mappings from `state_code` numbers to state names and colours."""
    return mapping(
        *((str(code), s.value, STATE_COLORS[s]) for code, s in enumerate(STATES, start=1))
    )


def variables(sync_multi: bool) -> list[cogbuilder.Builder[models.VariableModel]]:
    """Data source, then job -> source -> provider -> sync_id, each filtered by the previous."""

    def chained(name: str, label: str, expr: str, multi: bool = True) -> builders.QueryVariable:
        variable = (
            builders.QueryVariable(name)
            .label(label)
            .datasource(DATASOURCE)
            .query(expr)
            .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(models.VariableSort.ALPHABETICAL_ASC)
            .multi(multi)
            .include_all(multi)
        )
        return variable.all_value(".*") if multi else variable

    return [
        builders.DatasourceVariable("datasource").label("Data source").type("prometheus"),
        chained("job", "Job", "label_values(sync_exporter_build_info, job)"),
        chained("source", "Source", 'label_values(sync_up{job=~"$job"}, source)'),
        chained(
            "provider",
            "Provider",
            'label_values(sync_up{job=~"$job", source=~"$source"}, provider)',
        ),
        chained(
            "sync_id",
            "Sync",
            'label_values(sync_up{job=~"$job", source=~"$source", provider=~"$provider"}, sync_id)',
            multi=sync_multi,
        ),
    ]


def new_dashboard(
    uid: str, title: str, description: str, sync_multi: bool = True
) -> builders.Dashboard:
    """A dashboard with the shared variables, tags, time range and refresh."""
    dashboard = (
        builders.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .editable()
        .time("now-6h", "now")
        .refresh("1m")
        .timezone("browser")
        .tooltip(models.DashboardCursorSync.CROSSHAIR)
        .annotation(
            builders.AnnotationQuery()
            .name("Sync alerts")
            .datasource(DATASOURCE)
            .enable(True)
            .icon_color("red")
            .expr(f'ALERTS{{alertname=~"Sync.*", alertstate="firing", {JOB}}}')
        )
    )
    for variable in variables(sync_multi):
        dashboard = dashboard.with_variable(variable)
    return dashboard


# --- the dashboards -----------------------------------------------------------------------------


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


# --- output ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Spec:
    """One dashboard and the file it is written to."""

    filename: str
    build: Callable[[], builders.Dashboard]


DASHBOARDS: tuple[Spec, ...] = (
    Spec("sync-fleet-overview.json", fleet),
    Spec("sync-detail.json", detail),
    Spec("sync-exporter.json", exporter),
)


def to_dict(dashboard: builders.Dashboard) -> dict[str, Any]:
    """The dashboard as Grafana's JSON model, with panel ids numbered in order."""
    model: dict[str, Any] = json.loads(json.dumps(dashboard.build(), cls=JSONEncoder))
    for number, panel in enumerate(model["panels"], start=1):
        panel["id"] = number
    # A datasource variable needs no id, and the SDK's all-zero UUID would be shared by all.
    for variable in model["templating"]["list"]:
        variable.pop("id", None)
    return model


def render(dashboard: builders.Dashboard) -> str:
    """The JSON text written to the file: stable key order, two-space indent."""
    return json.dumps(to_dict(dashboard), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def outputs() -> dict[Path, str]:
    """Every dashboard file and its content."""
    return {DIRECTORY / spec.filename: render(spec.build()) for spec in DASHBOARDS}


def panel_reference() -> str:
    """Markdown describing every dashboard panel by panel, for docs/alerts-and-dashboards.md."""
    lines: list[str] = []
    for spec in DASHBOARDS:
        model = to_dict(spec.build())
        lines += [
            f"### {model['title']}",
            "",
            f"File `dashboards/{spec.filename}`, uid `{model['uid']}`. {model['description']}",
            "",
        ]
        variables = ", ".join(
            f"`{v['name']}`{'' if v.get('multi') or v['type'] == 'datasource' else ' (single)'}"
            for v in model["templating"]["list"]
        )
        lines += [f"Variables: {variables}.", ""]
        for annotation in model["annotations"]["list"]:
            lines += [f"Annotation *{annotation['name']}*: `{annotation['expr']}`.", ""]
        for panel in model["panels"]:
            if panel["type"] == "row":
                if lines[-1]:
                    lines.append("")
                lines += [f"#### Row: {panel['title']}", ""]
                continue
            lines.append(f"- **{panel['title']}** ({panel['type']}): {panel['description']}")
            for target in panel.get("targets", []):
                expr = " ".join(target["expr"].split())
                legend = target.get("legendFormat")
                shown = f" as `{legend}`" if legend else ""
                lines.append(f"  - `{target['refId']}`{shown}: `{expr}`")
        lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Write the dashboards, check them (--check), or print the panel reference (--docs)."""
    parser = argparse.ArgumentParser(prog="python -m dashboards.generate", description=__doc__)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--check", action="store_true", help="exit 1 if a file is out of date")
    group.add_argument("--docs", action="store_true", help="print the Markdown panel reference")
    args = parser.parse_args(argv)
    if args.docs:
        sys.stdout.write(panel_reference())
        return 0
    stale = []
    for path, text in outputs().items():
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current == text:
            continue
        if args.check:
            stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(
            f"out of date: {', '.join(stale)}; run python -m dashboards.generate", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
