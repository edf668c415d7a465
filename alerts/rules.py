"""The alerting rules, built from `Settings`: the per-sync alerts and the exporter's own.

Each `Alert` is one rule before it is written as YAML; `groups()` is the whole rules file as a
mapping, which `alerts.generate` writes as a rules file or a PrometheusRule.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from alerts.settings import RUNBOOK_BASE, Settings, seconds

# The labels that identify one sync's series; every join between per-sync families uses them.
SYNC_KEY = "job, instance, source, provider, sync_id"
SOURCE_KEY = "job, instance, source"


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
