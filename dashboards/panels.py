"""The dashboards' building blocks: shared selectors, variables, state colours and panel kinds.

Every dashboard is made of these, so the three share one set of variables, selectors and
colours, and a panel kind looks the same wherever it is used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from grafana_foundation_sdk.builders import bargauge, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as builders
from grafana_foundation_sdk.builders import prometheus as prometheus_builders
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as models
from grafana_foundation_sdk.models import prometheus as prometheus_models

from exporter.model import STATES, State

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
