"""Write the Prometheus alerting rules from one table of settings.

Prometheus rule files have no variables, so the job name and every tunable threshold would
otherwise be repeated across expressions, `for:` fields and descriptions. Here they are fields
of `Settings`; `python -m alerts.generate` writes `alerts/sync-status-exporter.rules.yml` (a test
checks the committed file equals this output) and `--job`/`--set` make a tuned copy.

Run `python -m alerts.generate --help` for the options.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from exporter import values

RUNBOOK_BASE = (
    "https://github.com/sync-status-exporter/sync-status-exporter/blob/main/docs/runbooks.md"
)
RULES_FILE = Path(__file__).resolve().with_name("sync-status-exporter.rules.yml")
PROMETHEUS_RULE_FILE = (
    Path(__file__).resolve().parent.parent / "deploy/kubernetes/standalone/prometheusrule.yaml"
)
SEVERITIES = ("critical", "warning", "info")

# The labels that identify one sync's series; every join between per-sync families uses them.
SYNC_KEY = "job, instance, source, provider, sync_id"
SOURCE_KEY = "job, instance, source"

_DURATION = re.compile(r"^(?:\d+(?:ms|s|m|h|d|w|y))+$")


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
            if is_duration and not _DURATION.match(value):
                raise ValueError(f"{item.name}: not a Prometheus duration: {value!r}")
        if not 0 < self.upstream_error_ratio <= 1:
            raise ValueError("upstream_error_ratio must be in (0, 1]")
        for ratio in (self.run_failure_ratio, *self.source_objectives().values()):
            if not 0 < ratio < 1:
                raise ValueError("run failure ratios must be in (0, 1)")
        if not self.job:
            raise ValueError("job must not be empty")
        if not re.match(r"^https?://\S+$", self.runbook_base):
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


@dataclass(frozen=True, slots=True)
class Alert:
    """One alerting rule before it is written as YAML."""

    name: str
    severity: str
    expr: str
    duration: str
    summary: str
    description: str
    keep_firing_for: str = "0s"

    @property
    def anchor(self) -> str:
        """The runbook section's anchor: GitHub lower-cases a heading made of one word."""
        return self.name.lower()

    def rule(self, runbook_base: str = RUNBOOK_BASE) -> dict[str, Any]:
        """The rule as Prometheus reads it."""
        rule: dict[str, Any] = {"alert": self.name, "expr": self.expr, "for": self.duration}
        if seconds(self.keep_firing_for) > 0:
            rule["keep_firing_for"] = self.keep_firing_for
        rule["labels"] = {"severity": self.severity}
        rule["annotations"] = {
            "summary": self.summary,
            "description": self.description,
            "runbook_url": f"{runbook_base}#{self.anchor}",
        }
        return rule


def seconds(duration: str) -> float:
    """Seconds in a Prometheus duration such as `1h30m`, to compare settings."""
    parsed = values.duration(duration)
    if parsed is None:
        raise ValueError(f"not a Prometheus duration: {duration!r}")
    return parsed


def _lookup(query: str, labels: Sequence[str]) -> str:
    """A template pipeline that runs `query` with `%[n]q` replaced by the alert's labels.

    The annotation asks Prometheus at evaluation time, so free text such as an error reason
    reaches the notification without becoming an alert label (a changed reason would otherwise
    resolve one alert and fire another).
    """
    arguments = " ".join(f"$labels.{label}" for label in labels)
    return f"printf {_go_string(query)} {arguments} | query"


def _go_string(text: str) -> str:
    """A Go template string literal (the same escaping as JSON for our ASCII queries)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


_SYNC_LABELS = ("job", "instance", "source", "provider", "sync_id")
_SYNC_MATCH = "job=%[1]q,instance=%[2]q,source=%[3]q,provider=%[4]q,sync_id=%[5]q"
_SOURCE_LABELS = ("job", "instance", "source")
_SOURCE_MATCH = "job=%[1]q,instance=%[2]q,source=%[3]q"
_WHICH = (
    "Sync {{ $labels.sync_id }} (provider {{ $labels.provider }}, source {{ $labels.source }}"
    "{{ with $labels.user }}, user {{ . }}{{ end }})"
)


def _percent(ratio: float) -> str:
    return f"{ratio * 100:g}%"


def sync_alerts(s: Settings) -> list[Alert]:
    """Alerts about one sync each, built on the per-sync families."""
    job = f"job={_go_string(s.job)}"
    gap = s.read_gap

    def last(metric: str, matchers: str = "") -> str:
        extra = f", {matchers}" if matchers else ""
        return f"last_over_time({metric}{{{job}{extra}}}[{gap}])"

    def state(name: str) -> str:
        return f"{last('sync_state', f'state={_go_string(name)}')} == 1"

    reason = _lookup(
        f"sync_error_info{{{_SYNC_MATCH}}} or (last_over_time(sync_error_info{{{_SYNC_MATCH}}}"
        f"[{gap}]) unless ignoring (reason) sync_error_info{{{_SYNC_MATCH}}})",
        _SYNC_LABELS,
    )
    budget = _lookup(
        f"last_over_time(sync_stale_threshold_seconds{{{_SYNC_MATCH}}}[{gap}])", _SYNC_LABELS
    )
    backoff = _lookup(
        f"last_over_time(sync_rate_limit_backoff_seconds{{{_SYNC_MATCH}}}[{gap}])", _SYNC_LABELS
    )
    progress = _lookup(f"last_over_time(sync_progress_ratio{{{_SYNC_MATCH}}}[{gap}])", _SYNC_LABELS)
    provider_status = _lookup(
        f"last_over_time(sync_provider_status{{{_SYNC_MATCH}}}[{gap}])", _SYNC_LABELS
    )
    read_error = _lookup(
        "topk(1, sum by (reason) (increase(sync_exporter_errors_total{"
        f"{_SOURCE_MATCH}}}[{s.unavailable_for}])) > 0)",
        _SOURCE_LABELS,
    )
    keep = s.keep_firing_for
    warned = f"status={_go_string('warn')}"
    return [
        Alert(
            name="SyncErrored",
            severity="critical",
            expr=state("errored"),
            duration=s.errored_for,
            keep_firing_for=keep,
            summary="A sync is in the errored state and has stopped syncing.",
            description=(
                f"{_WHICH} has been errored for more than {s.errored_for}. Reason: "
                f'{{{{ with {reason} }}}}{{{{ with . | first | label "reason" }}}}{{{{ . }}}}'
                "{{ else }}none given by the provider{{ end }}"
                "{{ else }}not known (status not read recently){{ end }}"
            ),
        ),
        Alert(
            name="SyncStale",
            severity="warning",
            expr=(
                f"time() - {last('sync_last_synced_timestamp_seconds')}\n"
                f"  > {last('sync_stale_threshold_seconds')}"
            ),
            duration=s.stale_for,
            keep_firing_for=keep,
            summary="A sync has not completed within its staleness budget.",
            description=(
                f"{_WHICH} last synced successfully {{{{ $value | humanizeDuration }}}} ago, "
                f"more than its staleness budget of {{{{ with {budget} }}}}"
                "{{ . | first | value | humanizeDuration }}{{ else }}(unknown){{ end }}."
            ),
        ),
        Alert(
            name="SyncRateLimitedTooLong",
            severity="warning",
            expr=state("rate_limited"),
            duration=s.rate_limited_for,
            keep_firing_for=keep,
            summary="A sync has been held back by the third-party API's rate limit for long.",
            description=(
                f"{_WHICH} has been rate limited for more than {s.rate_limited_for}. "
                f"Current backoff: {{{{ with {backoff} }}}}"
                "{{ . | first | value | humanizeDuration }}{{ else }}not reported{{ end }}."
            ),
        ),
        Alert(
            name="SyncStuckInitializing",
            severity="warning",
            expr=state("initializing"),
            duration=s.initializing_for,
            keep_firing_for=keep,
            summary="A sync's initial sync has not finished.",
            description=(
                f"{_WHICH} has been initializing for more than {s.initializing_for}. "
                f"Progress: {{{{ with {progress} }}}}"
                "{{ . | first | value | humanizePercentage }}{{ else }}not reported{{ end }}."
            ),
        ),
        Alert(
            name="SyncProgressStalled",
            severity="warning",
            expr=(
                f"(\n  {last('sync_progress_ratio')} < 1\n"
                f"  and on ({SYNC_KEY})\n"
                f"  changes(sync_progress_ratio{{{job}}}[{gap}]) == 0\n)\n"
                f"and on ({SYNC_KEY})\n{state('active')}"
            ),
            duration=s.progress_stalled_for,
            keep_firing_for=keep,
            summary="An active sync's progress has stopped moving.",
            description=(
                f"{_WHICH} is active, but its progress has stayed at "
                "{{ $value | humanizePercentage }} for more than "
                f"{s.progress_stalled_for}."
            ),
        ),
        Alert(
            name="SyncStatusUnavailable",
            severity="warning",
            expr=f"{last('sync_up')} == 0",
            duration=s.unavailable_for,
            keep_firing_for=keep,
            summary="The exporter cannot read a sync's status.",
            description=(
                f"The exporter {{{{ $labels.instance }}}} has not read the status of "
                f"{_WHICH[0].lower()}{_WHICH[1:]} for more than {s.unavailable_for}. "
                f"Most frequent read error of the source: {{{{ with {read_error} }}}}"
                '{{ . | first | label "reason" }}{{ else }}none counted (the source may be '
                "backing off after HTTP 429){{ end }}."
            ),
        ),
        Alert(
            name="SyncHealthWarning",
            severity="warning",
            expr=f"{last('sync_health', warned)} == 1",
            duration=s.health_warning_for,
            keep_firing_for=keep,
            summary="The provider warns about a sync's health.",
            description=(
                f"The provider has reported the health of "
                f"{_WHICH[0].lower()}{_WHICH[1:]} as warn for more than "
                f"{s.health_warning_for}: the sync still runs, but something needs attention "
                "(Sequin: its credential or the third-party API; Merge: some fields failed to "
                "sync; Fivetran: its data is late; the provider's console has the details). "
                f"Provider status: {{{{ with {provider_status} }}}}"
                '{{ . | first | label "status" }}{{ else }}not known{{ end }}.'
            ),
        ),
        run_failure_alert(s),
        Alert(
            name="SyncDisabled",
            severity="info",
            expr=state("disabled"),
            duration=s.disabled_for,
            summary="A sync has been disabled (paused) for a long time.",
            description=(
                f"{_WHICH} has been disabled for more than {s.disabled_for}; "
                "its data is not being kept up to date."
            ),
        ),
    ]


def run_failure_alert(s: Settings) -> Alert:
    """Failed runs over a long and a short window above the objective (multi-window, as in
    the SRE workbook): lasting enough to matter, and still going on."""
    job = f"job={_go_string(s.job)}"
    objectives = s.source_objectives()

    def ratio(window: str, scope: str) -> str:
        def runs(extra: str) -> str:
            selector = f"sync_runs_total{{{job}{scope}{extra}}}"
            return f"sum by ({SYNC_KEY}) (increase({selector}[{window}]))"

        failed = runs(", outcome=" + _go_string("failed"))
        return f"{failed}\n  /\n  {runs('')}"

    def clause(scope: str, objective: float) -> str:
        long, short = s.run_failure_long_window, s.run_failure_short_window
        return (
            f"(\n  {ratio(long, scope)}\n) > {objective:g}\n"
            f"and on ({SYNC_KEY})\n(\n  {ratio(short, scope)}\n) > {objective:g}\n"
            f"and on ({SYNC_KEY})\n"
            f"sum by ({SYNC_KEY}) (increase(sync_runs_total{{{job}{scope}}}[{long}]))"
            f" >= {s.run_failure_min_runs:g}"
        )

    if objectives:
        named = "|".join(re.escape(name) for name in objectives)
        parts = [clause(f", source!~{_go_string(named)}", s.run_failure_ratio)]
        parts += [
            clause(f", source={_go_string(name)}", objective)
            for name, objective in objectives.items()
        ]
        expr = "\nor\n".join(f"(\n{part}\n)" for part in parts)
    else:
        expr = clause("", s.run_failure_ratio)
    return Alert(
        name="SyncRunFailureRateHigh",
        severity="warning",
        expr=expr,
        duration=s.run_failure_for,
        keep_firing_for=s.keep_firing_for,
        summary="Too many of a sync's runs fail.",
        description=(
            f"{{{{ $value | humanizePercentage }}}} of the recent runs of "
            f"{_WHICH[0].lower()}{_WHICH[1:]} failed, over both the last "
            f"{s.run_failure_long_window} and the last {s.run_failure_short_window} "
            "(above the objective for its source). The sync may recover between runs, so "
            "SyncErrored can stay quiet while it fails again and again."
        ),
    )


def exporter_alerts(s: Settings) -> list[Alert]:
    """Alerts about the exporter process and its view of each source."""
    job = f"job={_go_string(s.job)}"
    window = s.upstream_error_window

    def per_source(metric: str, matchers: str = "") -> str:
        extra = f", {matchers}" if matchers else ""
        return f"sum by ({SOURCE_KEY}) (rate({metric}{{{job}{extra}}}[{window}]))"

    skipped = per_source("sync_exporter_upstream_requests_skipped_total")
    errors = per_source("sync_exporter_errors_total", 'reason!="not_found"')
    top_reason = _lookup(
        "topk(1, sum by (reason) (increase(sync_exporter_errors_total{"
        f"{_SOURCE_MATCH}}}[{window}])) > 0)",
        _SOURCE_LABELS,
    )
    return [
        Alert(
            name="SyncExporterDown",
            severity="critical",
            expr=f"up{{{job}}} == 0\nor\nabsent(up{{{job}}})",
            duration=s.exporter_down_for,
            keep_firing_for=s.keep_firing_for,
            summary="Prometheus cannot scrape the sync status exporter.",
            description=(
                "{{ if $labels.instance }}Prometheus has failed to scrape "
                "{{ $labels.instance }} of job {{ $labels.job }}"
                "{{ else }}Prometheus has no target for job {{ $labels.job }}{{ end }} "
                f"for more than {s.exporter_down_for}: no sync is being watched."
            ),
        ),
        Alert(
            name="SyncExporterUpstreamErrors",
            severity="warning",
            expr=(
                "clamp_max(\n"
                "  (\n"
                f"    {errors}\n"
                f"    + {skipped}\n"
                "  )\n"
                "  /\n"
                "  (\n"
                f"    ({per_source('sync_exporter_upstream_requests_total')}\n"
                f"     or {skipped} * 0)\n"
                f"    + {skipped}\n"
                "  ),\n"
                "  1\n"
                f")\n> {s.upstream_error_ratio:g}"
            ),
            duration=s.upstream_errors_for,
            keep_firing_for=s.keep_firing_for,
            summary="Reads from a provider source keep failing or being rate limited.",
            description=(
                "{{ $value | humanizePercentage }} of the status reads of source "
                "{{ $labels.source }} by {{ $labels.instance }} failed or were skipped for "
                f"rate limiting over the last {window} (threshold "
                f"{_percent(s.upstream_error_ratio)}). Most frequent error: "
                f'{{{{ with {top_reason} }}}}{{{{ . | first | label "reason" }}}}'
                "{{ else }}none (reads were skipped while backing off after HTTP 429){{ end }}."
            ),
        ),
        Alert(
            name="SyncExporterConfigReloadFailed",
            severity="warning",
            expr=(
                f"last_over_time(sync_exporter_config_last_reload_successful{{{job}}}"
                f"[{s.read_gap}]) == 0"
            ),
            duration=s.reload_failed_for,
            keep_firing_for=s.keep_firing_for,
            summary="The exporter refused its new configuration and runs the previous one.",
            description=(
                "The exporter {{ $labels.instance }} of job {{ $labels.job }} failed to reload "
                f"its configuration more than {s.reload_failed_for} ago and still runs the "
                "previous one: config changes since then are not applied."
            ),
        ),
    ]


def groups(s: Settings) -> dict[str, Any]:
    """The whole rules file as a mapping."""
    return {
        "groups": [
            {
                "name": "sync-status-exporter.syncs",
                "rules": [a.rule(s.runbook_base) for a in sync_alerts(s)],
            },
            {
                "name": "sync-status-exporter.exporter",
                "rules": [a.rule(s.runbook_base) for a in exporter_alerts(s)],
            },
        ]
    }


class _Dumper(yaml.SafeDumper):
    """Block style for multi-line PromQL, so the file reads like a hand-written one."""


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _represent_str)

_HEADER = """\
# Alerting rules for sync-status-exporter.
#
# Generated by `python -m alerts.generate` from alerts/generate.py; a test checks this file
# equals its output. Every expression selects the scrape job {job!r}.
# The job name and the thresholds are the fields of `Settings` in alerts/generate.py,
# documented in docs/alerts-and-dashboards.md. To tune them, either run
#   python -m alerts.generate --job my-job --set errored_for=15m --output my.rules.yml
# or edit this file directly (keep the job matcher of every expression in step).
"""


def render(s: Settings | None = None) -> str:
    """The rules file's text."""
    settings = s or Settings()
    body = yaml.dump(
        groups(settings),
        Dumper=_Dumper,
        sort_keys=False,
        width=1_000_000,
        allow_unicode=True,
    )
    return _HEADER.format(job=settings.job) + body


_RULE_HEADER = """\
# The alerting rules of alerts/sync-status-exporter.rules.yml as a Prometheus Operator
# PrometheusRule. Generated by `python -m alerts.generate --prometheus-rule`; a test checks this
# file equals its output. Your Prometheus resource's ruleSelector must match its labels.
"""


def render_prometheus_rule(s: Settings | None = None) -> str:
    """The same groups wrapped in a PrometheusRule, so Kubernetes users load identical rules."""
    manifest = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "sync-status-exporter",
            "labels": {"app.kubernetes.io/name": "sync-status-exporter"},
        },
        "spec": groups(s or Settings()),
    }
    body = yaml.dump(manifest, Dumper=_Dumper, sort_keys=False, width=1_000_000, allow_unicode=True)
    return _RULE_HEADER + body


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


def _override(settings: Settings, assignment: str) -> Settings:
    name, sep, value = assignment.partition("=")
    names = {item.name: item for item in dataclasses.fields(Settings)}
    if not sep or name not in names:
        raise SystemExit(f"--set {assignment!r}: expected NAME=VALUE, NAME one of {sorted(names)}")
    overrides: dict[str, Any] = {name: float(value) if names[name].type == "float" else value}
    try:
        return dataclasses.replace(settings, **overrides)
    except ValueError as exc:
        raise SystemExit(f"--set {assignment!r}: {exc}") from None


def main(argv: Sequence[str] | None = None) -> int:
    """Write (or check) the rules file."""
    parser = argparse.ArgumentParser(prog="python -m alerts.generate", description=__doc__)
    parser.add_argument("--job", help="scrape job name of the exporter")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override one setting, e.g. --set errored_for=15m (repeatable)",
    )
    parser.add_argument(
        "--prometheus-rule",
        action="store_true",
        help="write a Prometheus Operator PrometheusRule manifest instead of a rules file",
    )
    parser.add_argument(
        "--output",
        help=f"file to write, '-' for stdout (default: {RULES_FILE.name}, or with "
        "--prometheus-rule deploy/kubernetes/standalone/prometheusrule.yaml)",
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if --output differs from what would be written"
    )
    args = parser.parse_args(argv)
    settings = Settings() if args.job is None else Settings(job=args.job)
    for assignment in args.set:
        settings = _override(settings, assignment)
    text = render_prometheus_rule(settings) if args.prometheus_rule else render(settings)
    if args.output == "-":
        sys.stdout.write(text)
        return 0
    path = Path(args.output or (PROMETHEUS_RULE_FILE if args.prometheus_rule else RULES_FILE))
    if args.check:
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            print(f"{path} is out of date: run python -m alerts.generate", file=sys.stderr)
            return 1
        return 0
    path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
