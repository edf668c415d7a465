"""--metric-allowlist and --metric-denylist: the per-sync families a scrape exposes, chosen as
kube-state-metrics chooses them, over real HTTP against the simulator."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from exporter.exposition import metrics
from exporter.exposition.deflate import gunzip, gzip_join
from exporter.exposition.families import Selection
from exporter.exposition.render import Renderer, render_syncs
from exporter.exposition.targets import Target
from exporter.model import SyncStatus
from tests.conftest import Sim, simulator_process
from tests.exposition import Exposition
from tests.procs import exporter_command, free_port, run_exporter, running
from tests.test_render import ADAPTERS, NOW, POLICY, ReferenceCollector, results
from tests.tools import ROOT, require

ALLOWED = ("sync_up", "sync_state", "sync_last_synced_timestamp_seconds")


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    """This module's own simulator: every demo sync must read, whatever other tests added."""
    yield from simulator_process(tmp_path_factory)


def demo_config(sim: Sim) -> dict[str, Any]:
    config: dict[str, Any] = sim.http.get("/_sim/config").json()
    return config


def families_in(text: str) -> set[str]:
    return set(re.findall(r"^# TYPE (\S+) ", text, re.MULTILINE))


def per_sync(names: set[str]) -> set[str]:
    return {
        name for name in names if not name.startswith(("sync_exporter_", "process_", "python_"))
    }


@pytest.fixture(scope="module")
def config_file(sim: Sim, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("families") / "config.yml"
    path.write_text(yaml.safe_dump(demo_config(sim)))
    return path


@pytest.fixture(scope="module")
def allowlisted(config_file: Path) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = exporter_command(config_file, port, "--metric-allowlist", ",".join(ALLOWED))
    with running(command, f"{url}/-/ready", log=config_file.with_name("allow.log")):
        yield url


def test_an_allowlist_exposes_only_its_families_and_every_self_metric(
    allowlisted: str, config_file: Path
) -> None:
    body = httpx.get(f"{allowlisted}/metrics", timeout=30).text
    names = families_in(body)
    assert per_sync(names) == set(ALLOWED)
    m = Exposition(body)
    assert len(m.find("sync_up")) > 10 and all(value == 1 for _, value in m.find("sync_up"))
    self_metrics = {f.name for f in metrics.EXPORTER_FAMILIES}
    assert self_metrics <= names
    log = config_file.with_name("allow.log").read_text()
    assert "per-sync families" in log
    assert "3 of " in log
    assert "sync_up, sync_state, sync_last_synced_timestamp_seconds" in log


def test_the_allowlisted_exposition_passes_promtool(allowlisted: str) -> None:
    promtool = require("promtool")
    body = httpx.get(f"{allowlisted}/metrics", timeout=30).content
    result = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_probes_follow_the_selection(allowlisted: str) -> None:
    body = httpx.get(f"{allowlisted}/probe", params={"source": "demo-nango"}, timeout=30).text
    assert per_sync(families_in(body)) == {*ALLOWED, "probe_success", "probe_duration_seconds"}


def test_a_denylist_drops_its_families_and_provider_families_too(
    config_file: Path, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    denied = "sync_(.*_)?info,sync_health"
    command = exporter_command(config_file, port, "--metric-denylist", denied)
    with running(command, f"{url}/-/ready", log=tmp_path / "log"):
        names = families_in(httpx.get(f"{url}/metrics", timeout=30).text)
    assert "sync_info" not in names and "sync_error_info" not in names
    assert (
        "sync_health" not in names and "sync_initial_backfill_completed_timestamp_seconds" in names
    )
    assert {"sync_up", "sync_state", "sync_exporter_build_info"} <= names


def test_a_reload_applies_a_new_selection(sim: Sim, tmp_path: Path) -> None:
    config = demo_config(sim)
    config["collector"] = {"metric_denylist": ["sync_state"]}
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = exporter_command(path, port, "--web.enable-lifecycle")
    with running(command, f"{url}/-/ready", log=tmp_path / "log"):
        before = families_in(httpx.get(f"{url}/metrics", timeout=30).text)
        config["collector"] = {"metric_allowlist": "sync_state"}
        path.write_text(yaml.safe_dump(config))
        assert httpx.post(f"{url}/-/reload", timeout=30).status_code == 200
        after = families_in(httpx.get(f"{url}/metrics", timeout=30).text)
        assert httpx.post(f"{url}/-/reload", timeout=30).status_code == 200
    assert "sync_state" not in before and "sync_up" in before
    assert per_sync(after) == {"sync_state"}
    changes = [line for line in (tmp_path / "log").read_text().splitlines() if "changed" in line]
    assert len(changes) == 1 and 'exposed="1 of ' in changes[0], changes


# --- the command line and the config file ------------------------------------------------------


def offline_config(tmp_path: Path, collector: str = "") -> Path:
    path = tmp_path / "config.yml"
    path.write_text(
        "sources:\n"
        "  - {name: s, provider: sequin, base_url: 'http://127.0.0.1:1', auth: {token: t},"
        " syncs: [a]}\n" + collector
    )
    return path


def test_config_check_says_which_families_are_exposed(tmp_path: Path) -> None:
    path = offline_config(tmp_path)
    result = run_exporter("--config.file", str(path), "--config.check")
    assert result.returncode == 0, result.stderr
    assert "exposing all " in result.stdout
    result = run_exporter(
        "--config.file", str(path), "--config.check", "--metric-allowlist", "sync_up,sync_sta.*,x"
    )
    assert result.returncode == 0, result.stderr
    line = result.stdout.splitlines()[-1]
    assert re.fullmatch(
        r"exposing 4 of 22 per-sync families: sync_up, sync_state, "
        r"sync_status_read_timestamp_seconds, sync_stale_threshold_seconds "
        r"\(matching no family: x\)",
        line,
    ), line


@pytest.mark.parametrize(
    ("arguments", "collector", "code", "message"),
    [
        (
            ["--metric-allowlist", "a", "--metric-denylist", "b"],
            "",
            2,
            "--metric-allowlist and --metric-denylist cannot be used together",
        ),
        (
            [],
            "collector: {metric_allowlist: [sync_up], metric_denylist: [sync_state]}\n",
            1,
            "config.yml: collector.metric_denylist: cannot be combined with metric_allowlist",
        ),
        (
            ["--metric-denylist", "sync_state"],
            "collector: {metric_allowlist: sync_up}\n",
            1,
            "flag --metric-denylist: cannot be combined with metric_allowlist",
        ),
        (
            ["--metric-allowlist", "sync_(up"],
            "",
            1,
            "flag --metric-allowlist: not a valid regular expression 'sync_(up': missing )",
        ),
        (
            [],
            "collector: {metric_denylist: ['sync_up', '*info']}\n",
            1,
            "config.yml: collector.metric_denylist: not a valid regular expression '*info': "
            "nothing to repeat",
        ),
        (
            ["--once", "--once.fail-on-down", "--metric-denylist", "sync_u."],
            "",
            2,
            "--once.fail-on-down reads sync_up, which the metric allowlist/denylist drops",
        ),
    ],
)
def test_bad_selections_are_refused_with_the_flag_or_field_named(
    tmp_path: Path, arguments: list[str], collector: str, code: int, message: str
) -> None:
    path = offline_config(tmp_path, collector)
    result = run_exporter("--config.file", str(path), "--config.check", *arguments)
    assert result.returncode == code, result.stdout + result.stderr
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


# --- the renderer --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "selection",
    [
        Selection(allow=("sync_up", "sync_health")),
        Selection(deny=("sync_(state|info)", r"sync_records_.*")),
        Selection(allow=("sync_exporter_.*",)),
    ],
)
def test_a_selection_writes_exactly_prometheus_clients_bytes_for_the_kept_families(
    selection: Selection,
) -> None:
    pairs = results()
    registry = CollectorRegistry(auto_describe=False)

    class Kept(ReferenceCollector):
        def collect(self) -> Iterator[Any]:
            return (f for f in super().collect() if selection.keeps(f.name))

    reference = Kept(pairs)
    registry.register(reference)
    expected = reference.in_order(generate_latest(registry).decode("utf-8"))
    assert render_syncs(pairs, NOW, POLICY, ADAPTERS, selection) == expected


def test_dropped_families_are_never_built() -> None:
    """A status that has only a progress ratio: writing any other family would read more."""

    class OnlyProgress:
        progress_ratio = 0.5

        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"a dropped family read {name}")

    target = Target("s", "a", 'source="s",sync_id="a"', (), None)
    renderer = Renderer(POLICY, ADAPTERS, Selection(allow=("sync_up", "sync_progress_ratio")))
    renderer.add(target, cast(SyncStatus, OnlyProgress()), NOW)
    body = gunzip(gzip_join(renderer.pieces())).decode()
    assert families_in(body) == {"sync_up", "sync_progress_ratio"}
    assert 'sync_up{source="s",sync_id="a"} 1.0' in body
    assert 'sync_progress_ratio{source="s",sync_id="a"} 0.5' in body


def test_self_metrics_are_never_selected_away() -> None:
    selection = Selection(allow=("nothing",))
    assert selection.keeps("sync_exporter_errors_total")
    assert not selection.keeps("sync_up")
    assert Selection(deny=(".*",)).keeps("sync_exporter_build_info")
    assert Selection(allow=("sync_up",)).keeps("sync_up")
    assert not Selection(allow=("sync_u",)).keeps("sync_up"), "anchored at both ends"


# --- the docs page and the alerts' minimal set ---------------------------------------------------


def test_the_families_page_is_generated_from_the_code() -> None:
    from dashboards.families import page

    assert (ROOT / "docs" / "families.md").read_text() == page(), (
        "run `python -m dashboards.families > docs/families.md`"
    )
    assert "](docs/families.md)" in (ROOT / "README.md").read_text()


def rules_test_with_only(families: set[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The alerts' promtool unit tests with every other per-sync family's input series removed."""
    from dashboards.families import PER_SYNC

    source = ROOT / "alerts" / "tests" / "sync-status-exporter.test.yml"
    document = yaml.safe_load(source.read_text())
    document["rule_files"] = [str(ROOT / "alerts" / "sync-status-exporter.rules.yml")]
    for case in document["tests"]:
        case["input_series"] = [
            series
            for series in case["input_series"]
            if series["series"].split("{", 1)[0] in families
            or series["series"].split("{", 1)[0] not in PER_SYNC
        ]
    path = tmp_path / "minimal.test.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    promtool = require("promtool")
    result = subprocess.run(
        [promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=120
    )
    return result


def test_the_alerts_pass_their_unit_tests_with_the_documented_minimal_set(tmp_path: Path) -> None:
    from dashboards.families import minimal_for_alerts

    minimal = set(minimal_for_alerts())
    assert (
        f"--metric-allowlist={','.join(minimal_for_alerts())}"
        in (ROOT / "docs" / "families.md").read_text()
    )
    result = rules_test_with_only(minimal, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    # Without sync_state most sync alerts cannot fire: the check is not vacuous.
    result = rules_test_with_only(minimal - {"sync_state"}, tmp_path)
    assert result.returncode != 0 and "SyncErrored" in result.stdout + result.stderr


def test_a_real_prometheus_fires_an_alert_from_the_minimal_set(sim: Sim, tmp_path: Path) -> None:
    """The exporter serving only the documented minimal set, Prometheus evaluating the
    shipped rules (with a 1 s `for:`): SyncErrored fires, and its annotation still finds the
    provider's reason in sync_error_info."""
    from alerts.generate import render
    from alerts.settings import Settings
    from dashboards.families import minimal_for_alerts

    reason = "token revoked by the user"
    sim.create("paragon", "fam-errored", {"status": "ERRORED", "summary": {}, "reason": reason})
    config = tmp_path / "config.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "sources": [
                    {
                        "name": "minimal",
                        "provider": "paragon",
                        "base_url": f"{sim.base}/paragon",
                        "auth": {"token": sim.paragon_token("sim-user")},
                        "syncs": ["fam-errored"],
                    }
                ]
            }
        )
    )
    rules = tmp_path / "rules.yml"
    rules.write_text(render(Settings(errored_for="1s")))
    prometheus_config = tmp_path / "prometheus.yml"
    port, exporter_port = free_port(), free_port()
    prometheus_config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(rules)],
                "scrape_configs": [
                    {
                        "job_name": "sync-status-exporter",
                        "scrape_timeout": "1s",
                        "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}],
                    }
                ],
            }
        )
    )
    allowlist = ",".join(minimal_for_alerts())
    exporter = exporter_command(config, exporter_port, f"--metric-allowlist={allowlist}")
    url = f"http://127.0.0.1:{port}"
    prometheus = [
        require("prometheus"),
        f"--config.file={prometheus_config}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    exporter_url = f"http://127.0.0.1:{exporter_port}"
    with (
        running(exporter, f"{exporter_url}/-/ready", log=tmp_path / "exporter.log"),
        running(prometheus, f"{url}/-/ready", log=tmp_path / "prometheus.log"),
    ):
        served = families_in(httpx.get(f"{exporter_url}/metrics", timeout=30).text)
        assert per_sync(served) <= set(minimal_for_alerts())
        assert "sync_records_synced" not in served
        deadline = time.monotonic() + 60
        firing: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not firing:
            alerts = httpx.get(f"{url}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
            firing = [
                alert
                for alert in alerts
                if alert["labels"]["alertname"] == "SyncErrored" and alert["state"] == "firing"
            ]
            time.sleep(0.5)
    assert firing, "SyncErrored never fired"
    assert firing[0]["labels"]["sync_id"] == "fam-errored"
    assert firing[0]["annotations"]["description"].endswith(f"Reason: {reason}")


def test_once_prints_only_the_selected_families(tmp_path: Path) -> None:
    path = offline_config(tmp_path)
    result = run_exporter(
        "--config.file", str(path), "--once", "--once.fail-on-down", "--metric-allowlist=sync_up"
    )
    assert result.returncode == 3, result.stderr
    assert per_sync(families_in(result.stdout)) == {"sync_up"}
    assert 'sync_up{provider="sequin",source="s",sync_id="a"} 0.0' in result.stdout
    assert "1 of 1 syncs down: s/a" in result.stderr
