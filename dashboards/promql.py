"""Small PromQL helpers for checking dashboards and rules against the metric contract.

They work on text, not on a parse tree: `promtool` does the parsing (see the tests); this
only needs to find which metric names an expression selects, and to fill in Grafana's
template variables so the expression is plain PromQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from exporter.exposition.metrics import EXPORTER_FAMILIES, RUN_FAMILIES, SYNC_FAMILIES
from exporter.providers import PROVIDER_FAMILIES

# Series Prometheus itself writes for every target (the last two only with
# --enable-feature=extra-scrape-metrics), and the series of its own alerting.
PROMETHEUS_SERIES = frozenset(
    {
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
        "scrape_timeout_seconds",
        "scrape_sample_limit",
        "ALERTS",
        "ALERTS_FOR_STATE",
    }
)
# prometheus_client's process collector: not in the contract, always served on Linux.
ALLOWED_PREFIXES = ("process_",)

# Grafana's built-in interval variables, replaced by a plausible value.
BUILTIN_VALUES = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h"}

_VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_BRACKETS = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
_IDENTIFIER = re.compile(r"(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(?!\s*\()")
_KEYWORDS = frozenset(
    {
        "and",
        "or",
        "unless",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "offset",
        "inf",
        "nan",
        "atan2",
    }
)


def substitute(expr: str, values: Mapping[str, str], default: str = ".*") -> str:
    """`expr` with `$name` and `${name}` replaced from `values`, Grafana's built-ins, or `default`.

    `default` is a regex matching anything because the dashboards use every variable with
    `=~`, where Grafana's "All" becomes `.*` too.
    """

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return values.get(name, BUILTIN_VALUES.get(name, default))

    return _VARIABLE.sub(replace, expr)


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (written as bare names, not `__name__=`)."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub("{}", text)
    text = _BRACKETS.sub("", text)
    text = _GROUPING.sub(" ", text)
    return {name for name in _IDENTIFIER.findall(text) if name.lower() not in _KEYWORDS}


def exported_names() -> frozenset[str]:
    """Every series name the exporter serves: the core and exporter families, and the adapters'."""
    names: set[str] = set()
    for family in (*SYNC_FAMILIES, *RUN_FAMILIES, *PROVIDER_FAMILIES, *EXPORTER_FAMILIES):
        if family.type == "histogram":
            names.update(f"{family.name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        else:
            names.add(family.name)
    return frozenset(names)


def unknown_names(names: Iterable[str]) -> set[str]:
    """Those of `names` that neither the exporter nor Prometheus itself produces."""
    known = exported_names() | PROMETHEUS_SERIES
    return {n for n in names if n not in known and not n.startswith(ALLOWED_PREFIXES)}
