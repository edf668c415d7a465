"""The alerting rules: up to date with their generator, valid, unit-tested, routed, documented."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from alerts.generate import RULES_FILE, render
from alerts.settings import RUNBOOK_BASE, SEVERITIES, Settings, settings_table
from dashboards.promql import metric_names, unknown_names
from tests.tools import ROOT, require

UNIT_TESTS = ROOT / "alerts" / "tests" / "sync-status-exporter.test.yml"
ALERTMANAGER_EXAMPLE = ROOT / "alerts" / "alertmanager.example.yml"
RUNBOOKS = ROOT / "docs" / "runbooks.md"
GUIDE = ROOT / "docs" / "alerts-and-dashboards.md"

# The issue's table: alert -> severity.
REQUIRED = {
    "SyncErrored": "critical",
    "SyncStale": "warning",
    "SyncRateLimitedTooLong": "warning",
    "SyncStuckInitializing": "warning",
    "SyncProgressStalled": "warning",
    "SyncStatusUnavailable": "warning",
    "SyncExporterDown": "critical",
    "SyncExporterUpstreamErrors": "warning",
}
# Alerts about the exporter rather than one sync: their descriptions name no sync.
EXPORTER_ALERTS = {
    "SyncExporterDown",
    "SyncExporterUpstreamErrors",
    "SyncExporterConfigReloadFailed",
}
_PRINTF_QUERY = re.compile(r'printf "((?:[^"\\]|\\.)*)"')


def rules(text: str | None = None) -> list[dict[str, Any]]:
    """Every rule of the committed rules file (or of `text`), in order."""
    data = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8") if text is None else text)
    return [rule for group in data["groups"] for rule in group["rules"]]


def run(*command: str) -> subprocess.CompletedProcess[str]:
    """Run a tool, capturing its output for the assertion message."""
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped, '-' for ' '."""
    anchor = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return anchor.replace(" ", "-")


def runbook_sections() -> dict[str, str]:
    """Runbook text per `## ` heading anchor."""
    sections: dict[str, str] = {}
    current = ""
    for line in RUNBOOKS.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            current = github_anchor(line[3:])
            sections[current] = ""
        elif current:
            sections[current] += line + "\n"
    return sections


def test_committed_rules_equal_generator_output() -> None:
    assert RULES_FILE.read_text(encoding="utf-8") == render(), (
        "alerts/sync-status-exporter.rules.yml is out of date: run python -m alerts.generate"
    )


def test_promtool_accepts_the_rules() -> None:
    promtool = require("promtool")
    result = run(promtool, "check", "rules", str(RULES_FILE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    promtool = require("promtool")
    result = run(promtool, "test", "rules", str(UNIT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_unit_tests_fail_when_a_threshold_moves(tmp_path: Path) -> None:
    """The unit tests pin the thresholds: a rules file one minute off must fail them."""
    promtool = require("promtool")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / UNIT_TESTS.name).write_text(UNIT_TESTS.read_text(encoding="utf-8"))
    (tmp_path / RULES_FILE.name).write_text(render(Settings(errored_for="9m")))
    result = run(promtool, "test", "rules", str(tmp_path / "tests" / UNIT_TESTS.name))
    assert result.returncode != 0
    assert "SyncErrored" in result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    suite = yaml.safe_load(UNIT_TESTS.read_text(encoding="utf-8"))
    firing: dict[str, list[dict[str, Any]]] = {}
    quiet: set[str] = set()
    for case in suite["tests"]:
        for check in case.get("alert_rule_test", []):
            if check["exp_alerts"]:
                firing.setdefault(check["alertname"], []).extend(check["exp_alerts"])
            else:
                quiet.add(check["alertname"])
    names = {rule["alert"] for rule in rules()}
    assert set(firing) == names, f"alerts without a firing case: {names - set(firing)}"
    assert quiet >= names, f"alerts without a just-short case: {names - quiet}"
    for name, expected in firing.items():
        for alert in expected:
            assert "severity" in alert["exp_labels"], name
            assert set(alert["exp_annotations"]) == {"summary", "description", "runbook_url"}, name


def test_the_issue_alerts_exist_with_their_severity() -> None:
    severities = {rule["alert"]: rule["labels"]["severity"] for rule in rules()}
    for name, severity in REQUIRED.items():
        assert severities.get(name) == severity, name


def test_rules_follow_the_mixin_style() -> None:
    names = [rule["alert"] for rule in rules()]
    assert len(names) == len(set(names))
    for rule in rules():
        name = rule["alert"]
        assert re.fullmatch(r"Sync(?:[A-Z][a-z]+)+", name), name
        assert rule["for"] not in ("", "0s", "0m"), name
        assert rule["labels"]["severity"] in SEVERITIES, name
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description", "runbook_url"}, name
        assert "{{" not in annotations["summary"], f"{name}: summary must be static"
        description = annotations["description"]
        if name in EXPORTER_ALERTS:
            assert "$labels.instance" in description or "$labels.job" in description, name
        else:
            for label in ("sync_id", "provider", "source"):
                assert f"$labels.{label}" in description, f"{name} does not name {label}"


def test_every_selector_is_limited_to_the_job() -> None:
    """Changing the job must reach every selector, so none may be left without it."""
    text = render(Settings(job="my-exporters"))
    assert "sync-status-exporter" not in "".join(rule["expr"] for rule in rules(text))
    for rule in rules(text):
        selectors = re.findall(r"\{([^{}]*)\}", rule["expr"])
        assert selectors, rule["alert"]
        for selector in selectors:
            assert 'job="my-exporters"' in selector, f"{rule['alert']}: {{{selector}}}"


def test_expressions_and_annotation_queries_use_exported_metrics() -> None:
    for rule in rules():
        queries = [rule["expr"], *_PRINTF_QUERY.findall(rule["annotations"]["description"])]
        for query in queries:
            names = metric_names(query)
            assert names, f"{rule['alert']}: no metric found in {query!r}"
            assert not unknown_names(names), f"{rule['alert']}: {unknown_names(names)}"


def test_state_alerts_bridge_unreadable_scrapes() -> None:
    """Per-sync series vanish while a status is unreadable; their alerts must look back."""
    for rule in rules():
        # increase() over hours looks back by itself (run counters are served unread too).
        if rule["alert"] in EXPORTER_ALERTS or rule["alert"] == "SyncRunFailureRateHigh":
            continue
        assert "last_over_time(" in rule["expr"], rule["alert"]


def test_runbook_urls_point_at_runbook_sections() -> None:
    sections = runbook_sections()
    for rule in rules():
        url = rule["annotations"]["runbook_url"]
        base, _, anchor = url.partition("#")
        assert base == RUNBOOK_BASE
        assert anchor in sections, f"{rule['alert']}: no '## ' heading with anchor #{anchor}"


def test_runbook_sections_say_meaning_confirmation_and_action() -> None:
    sections = runbook_sections()
    for rule in rules():
        text = sections[rule["annotations"]["runbook_url"].partition("#")[2]]
        for part in ("Meaning", "Confirm", "Act"):
            assert f"**{part}" in text, f"{rule['alert']}: no {part} part"
        assert "```promql" in text, f"{rule['alert']}: no PromQL to confirm"
        assert "curl " in text, f"{rule['alert']}: no curl to the exporter"


def test_thresholds_table_in_the_docs_matches_the_settings() -> None:
    assert settings_table() in GUIDE.read_text(encoding="utf-8"), (
        "docs/alerts-and-dashboards.md: paste the output of alerts.settings.settings_table()"
    )


def test_settings_refuse_values_prometheus_would_reject() -> None:
    with pytest.raises(ValueError, match="errored_for"):
        Settings(errored_for="10")
    with pytest.raises(ValueError, match="upstream_error_ratio"):
        Settings(upstream_error_ratio=0.0)
    with pytest.raises(ValueError, match="job"):
        Settings(job="")


def test_run_failure_objectives_can_be_set_per_source() -> None:
    (rule,) = [r for r in rules(render(Settings(run_failure_ratios="a=0.5, b.c=0.05")))
               if r["alert"] == "SyncRunFailureRateHigh"]  # fmt: skip
    expr = rule["expr"]
    assert 'source!~"a|b\\\\.c"' in expr and ") > 0.25" in expr
    assert 'source="a"' in expr and ") > 0.5" in expr
    assert 'source="b.c"' in expr and ") > 0.05" in expr
    for bad in ("a", "a=x", "a=1", "a b=0.5"):
        with pytest.raises(ValueError):
            Settings(run_failure_ratios=bad)


def test_keep_firing_for_can_be_switched_off() -> None:
    assert all(
        "keep_firing_for" not in rule for rule in rules(render(Settings(keep_firing_for="0s")))
    )
    assert all(
        rule.get("keep_firing_for") == "5m" for rule in rules() if rule["alert"] != "SyncDisabled"
    )


def test_alertmanager_example_is_valid() -> None:
    amtool = require("amtool")
    result = run(amtool, "check-config", str(ALERTMANAGER_EXAMPLE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (("alertname=SyncErrored", "severity=critical", "source=paragon-prod"), "pager"),
        (("alertname=SyncExporterDown", "severity=critical"), "pager"),
        (("alertname=SyncStale", "severity=warning", "source=paragon-prod"), "tickets"),
        (("alertname=SyncDisabled", "severity=info"), "blackhole"),
    ],
)
def test_alertmanager_example_routes_by_severity(labels: tuple[str, ...], receiver: str) -> None:
    amtool = require("amtool")
    result = run(
        amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER_EXAMPLE}", *labels
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receiver


def test_alertmanager_example_names_real_alerts() -> None:
    config = yaml.safe_load(ALERTMANAGER_EXAMPLE.read_text(encoding="utf-8"))
    names = {rule["alert"] for rule in rules()}
    matchers = [
        matcher
        for inhibit in config["inhibit_rules"]
        for matcher in (*inhibit["source_matchers"], *inhibit["target_matchers"])
    ]
    for matcher in matchers:
        match = re.fullmatch(r'alertname=(?:"([A-Za-z]+)")', matcher)
        if match:
            assert match.group(1) in names, matcher
    assert config["route"]["group_by"] == ["alertname", "source"]


OWN_RUNBOOKS = "https://wiki.example.com/sre/sync-runbooks"


@pytest.mark.parametrize("kind", ["rules file", "PrometheusRule"])
def test_runbook_base_moves_every_runbook_url(kind: str) -> None:
    extra = ["--prometheus-rule"] if kind == "PrometheusRule" else []
    result = run(
        sys.executable, "-m", "alerts.generate", *extra,
        "--set", f"runbook_base={OWN_RUNBOOKS}", "--output", "-",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    document = yaml.safe_load(result.stdout)
    groups = document["spec"]["groups"] if kind == "PrometheusRule" else document["groups"]
    generated = [rule for group in groups for rule in group["rules"]]
    assert [rule["alert"] for rule in generated] == [rule["alert"] for rule in rules()]
    for rule in generated:
        expected = f"{OWN_RUNBOOKS}#{rule['alert'].lower()}"
        assert rule["annotations"]["runbook_url"] == expected, rule["alert"]
    assert RUNBOOK_BASE not in result.stdout


@pytest.mark.parametrize("base", ["wiki/runbooks", "https://wiki.example/runbooks\n"])
def test_runbook_base_must_be_a_web_address(base: str) -> None:
    result = run(
        sys.executable, "-m", "alerts.generate", "--set", f"runbook_base={base}",
        "--output", "-",
    )  # fmt: skip
    assert result.returncode == 1
    assert f"runbook_base: not an http(s) URL: {base!r}" in result.stderr
    assert result.stdout == ""


def test_the_guide_documents_runbook_base_with_a_command_that_works() -> None:
    guide = GUIDE.read_text(encoding="utf-8")
    assert "### Where `runbook_url` points" in guide
    joined = guide.replace("\\\n    ", "")  # the shell's line continuations
    commands = re.findall(r"^python -m alerts\.generate .*$", joined, flags=re.M)
    documented = [c for c in commands if "runbook_base=" in c]
    assert len(documented) == 2, commands
    for command in documented:
        args = command.split()[3:]
        output = args.index("--output")
        args[output + 1] = "-"
        result = run(sys.executable, "-m", "alerts.generate", *args)
        assert result.returncode == 0, result.stderr
        assert f"runbook_url: {OWN_RUNBOOKS}#syncerrored" in result.stdout
