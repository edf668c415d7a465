"""The Grafana dashboards: generated, importable, and querying only what the exporter exports."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards.generate import DASHBOARDS, DIRECTORY, outputs, panel_reference
from dashboards.promql import metric_names, substitute, unknown_names
from exporter.model import STATES
from tests.tools import ROOT, require

GUIDE = ROOT / "docs" / "alerts-and-dashboards.md"
CHAIN = ("job", "source", "provider", "sync_id")
UIDS = {
    "sync-fleet-overview.json": "sync-fleet-overview",
    "sync-detail.json": "sync-detail",
    "sync-exporter.json": "sync-exporter",
}
_LABEL_VALUES = re.compile(r"^label_values\((.*),\s*(\w+)\)$", re.DOTALL)


def committed() -> dict[str, dict[str, Any]]:
    """Every committed dashboard by file name."""
    return {
        spec.filename: json.loads((DIRECTORY / spec.filename).read_text(encoding="utf-8"))
        for spec in DASHBOARDS
    }


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every non-row panel, including panels nested in collapsed rows."""
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def queries() -> Iterator[tuple[str, str, str]]:
    """(where, expression, kind) of every panel target, annotation and variable query."""
    for filename, dashboard in committed().items():
        for panel in panels(dashboard):
            for target in panel["targets"]:
                yield f"{filename}: {panel['title']} [{target['refId']}]", target["expr"], "panel"
        for annotation in dashboard["annotations"]["list"]:
            yield f"{filename}: annotation {annotation['name']}", annotation["expr"], "annotation"
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "query":
                match = _LABEL_VALUES.match(variable["query"])
                assert match, f"{filename}: ${variable['name']}: {variable['query']}"
                yield f"{filename}: ${variable['name']}", match.group(1), "variable"


def test_committed_json_equals_generator_output() -> None:
    for path, text in outputs().items():
        assert path.read_text(encoding="utf-8") == text, (
            f"{path.name} is out of date: run python -m dashboards.generate"
        )


def test_dashboards_have_their_stable_uids() -> None:
    dashboards = committed()
    assert {name: d["uid"] for name, d in dashboards.items()} == UIDS
    for dashboard in dashboards.values():
        assert dashboard["title"].startswith("Sync status / ")
        assert "sync-status-exporter" in dashboard["tags"]


def test_variables_are_a_datasource_and_a_chain() -> None:
    for name, dashboard in committed().items():
        variables = dashboard["templating"]["list"]
        assert [v["name"] for v in variables] == ["datasource", *CHAIN], name
        assert variables[0]["type"] == "datasource"
        assert variables[0]["query"] == "prometheus"
        for position, variable in enumerate(variables[1:]):
            assert variable["type"] == "query"
            assert variable["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            for earlier in CHAIN[:position]:
                assert f'{earlier}=~"${earlier}"' in variable["query"], (
                    f"{name}: ${variable['name']} does not follow ${earlier}"
                )
            if variable["multi"]:
                assert variable["includeAll"] and variable["allValue"] == ".*"
    assert committed()["sync-detail.json"]["templating"]["list"][-1]["multi"] is False


def test_every_panel_reads_the_datasource_variable() -> None:
    for name, dashboard in committed().items():
        for panel in panels(dashboard):
            where = f"{name}: {panel['title']}"
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
            assert panel["targets"], where
            assert panel.get("description"), where
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == "${datasource}", where


def test_panel_ids_are_unique_and_panels_fit_the_grid() -> None:
    for name, dashboard in committed().items():
        ids = [panel["id"] for panel in dashboard["panels"]]
        assert len(ids) == len(set(ids)), name
        for panel in dashboard["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, f"{name}: {panel['title']}"


def test_every_panel_uses_every_selector_variable_it_can() -> None:
    """A per-sync query that ignores a variable would show syncs the user filtered out."""
    for where, expr, kind in queries():
        if kind != "panel":
            continue
        for selector in re.findall(r"(sync_(?!exporter_)\w+)\{([^{}]*)\}", expr):
            for label in CHAIN:
                assert f'{label}=~"${label}"' in selector[1], f"{where}: no ${label}"


def test_rates_use_rate_interval() -> None:
    for where, expr, _ in queries():
        for window in re.findall(r"\b(?:rate|increase|irate)\([^()]*\[([^\]]+)\]", expr):
            assert window == "$__rate_interval", f"{where}: [{window}]"


def test_every_query_names_only_exported_metrics() -> None:
    for where, expr, _ in queries():
        names = metric_names(substitute(expr, {}))
        assert names, f"{where}: no metric in {expr!r}"
        assert not unknown_names(names), f"{where}: {sorted(unknown_names(names))}"


def test_every_query_parses(tmp_path: Path) -> None:
    """promtool parses each query, variables substituted, as a recording rule's expression."""
    promtool = require("promtool")
    index: dict[str, str] = {}
    rules = []
    for number, (where, expr, _) in enumerate(queries()):
        record = f"dashboard_query_{number}"
        index[record] = where
        rules.append({"record": record, "expr": substitute(expr, {"job": "sync-status-exporter"})})
    path = tmp_path / "dashboard-queries.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{output}\nrule index: {json.dumps(index, indent=1)}"
    assert f"SUCCESS: {len(rules)} rules found" in output


def test_state_timeline_maps_every_state() -> None:
    detail = committed()["sync-detail.json"]
    timeline = next(p for p in panels(detail) if p["title"] == "State over time")
    (value_map,) = timeline["fieldConfig"]["defaults"]["mappings"]
    names = [value_map["options"][str(code)]["text"] for code in range(1, len(STATES) + 1)]
    assert names == [state.value for state in STATES]
    expr = timeline["targets"][0]["expr"]
    for code, state in enumerate(STATES, start=1):
        assert f'state="{state.value}"}} * {code}' in expr


def test_panel_reference_in_the_docs_is_current() -> None:
    assert panel_reference() in GUIDE.read_text(encoding="utf-8"), (
        "docs/alerts-and-dashboards.md: paste the output of python -m dashboards.generate --docs"
    )


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (source) (rate(a_total{code!~"2..", x="b{c}"}[5m]))', {"a_total"}),
        ("x * on (job, sync_id) group_left (name) y_info", {"x", "y_info"}),
        ("histogram_quantile(0.99, sum by (le) (rate(h_bucket[1m])))", {"h_bucket"}),
        ("count(up == 0) or vector(0)", {"up"}),
        ("time() - ts offset 5m > bool 1e3", {"ts"}),
        ('a unless ignoring (reason) b{reason="and or"}', {"a", "b"}),
    ],
)
def test_metric_names_finds_selected_metrics(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_substitute_fills_variables_and_builtins() -> None:
    expr = 'rate(x{job=~"$job", source=~"${source}"}[$__rate_interval])'
    assert substitute(expr, {"job": "j"}) == 'rate(x{job=~"j", source=~".*"}[1m])'
    assert substitute(expr, {"__rate_interval": "5s"}).endswith("[5s])")


def test_unknown_names_rejects_what_the_exporter_does_not_export() -> None:
    assert unknown_names({"sync_up", "up", "process_open_fds"}) == set()
    assert unknown_names(
        {"sync_exporter_upstream_request_duration_seconds_bucket", "sync_stale"}
    ) == {"sync_stale"}
