"""End to end: a failure delivered by webhook fires alerts in a real Prometheus, although the
exporter's `min_interval` (10m) is far longer than the alerts' `for`.

Simulator (Nango, posting its signed webhooks), exporter and Prometheus each run in their
own process on 127.0.0.1. Prometheus scrapes and evaluates every second and loads rules from
the same generator as alerts/sync-status-exporter.rules.yml, with durations and windows
shortened so the test takes seconds.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from alerts.generate import render
from alerts.settings import Settings
from exporter.simulator.providers import nango
from tests.exposition import Exposition
from tests.procs import exporter_command, free_port, running
from tests.tools import require

JOB = "sync-status-exporter"
SETTINGS = Settings(
    errored_for="3s",
    read_gap="5s",
    keep_firing_for="0s",
    run_failure_long_window="1m",
    run_failure_short_window="20s",
    run_failure_min_runs=1.0,
    run_failure_for="1s",
)


def firing(prometheus: str) -> list[dict[str, Any]]:
    alerts: list[dict[str, Any]] = httpx.get(f"{prometheus}/api/v1/alerts", timeout=5).json()[
        "data"
    ]["alerts"]
    return [alert for alert in alerts if alert["state"] == "firing"]


def test_a_webhook_failure_fires_the_alerts_before_min_interval_would(tmp_path: Path) -> None:
    prometheus_bin = require("prometheus")
    ports = {name: free_port() for name in ("sim", "exporter", "prometheus")}
    sim = f"http://127.0.0.1:{ports['sim']}"
    exporter = f"http://127.0.0.1:{ports['exporter']}"
    prometheus = f"http://127.0.0.1:{ports['prometheus']}"
    source = {
        "name": "ng",
        "provider": "generic",
        "preset": "nango",
        "base_url": f"{sim}/nango",
        "auth": {"token": nango.SECRET},
        "discover": True,
        "generic": {"list": {"params": {"provider_config_key": nango.INTEGRATION}}},
        "min_interval": "10m",
        "webhook": {"secret": nango.WEBHOOK_SECRET},
    }
    config = tmp_path / "exporter.yml"
    config.write_text(yaml.safe_dump({"sources": [source]}))
    rules = tmp_path / "rules.yml"
    rules.write_text(render(SETTINGS))
    scrape = {"job_name": JOB, "static_configs": [{"targets": [f"127.0.0.1:{ports['exporter']}"]}]}
    prometheus_config = tmp_path / "prometheus.yml"
    prometheus_config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(rules)],
                "scrape_configs": [scrape],
            }
        )
    )
    simulator = [
        sys.executable, "-m", "exporter.simulator", "--listen", f"127.0.0.1:{ports['sim']}",
        "--period", "24h", "--webhook-url", f"nango={exporter}/webhooks/ng",
    ]  # fmt: skip
    prometheus_command = [
        prometheus_bin, f"--config.file={prometheus_config}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{ports['prometheus']}",
    ]  # fmt: skip
    with (
        running(simulator, f"{sim}/_sim/requests", log=tmp_path / "sim.log"),
        running(exporter_command(config, ports["exporter"]), f"{exporter}/-/ready",
                log=tmp_path / "exporter.log"),
        running(prometheus_command, f"{prometheus}/-/ready", log=tmp_path / "prometheus.log"),
    ):  # fmt: skip
        m = Exposition(httpx.get(f"{exporter}/metrics", timeout=10).text)
        sync_id = next(labels["sync_id"] for labels, v in m.find("sync_state", state="idle") if v)
        # Prometheus must have the zero run counters first: increase() cannot see a counter
        # whose first sample is already 1.
        query = f'sync_runs_total{{sync_id="{sync_id}", outcome="failed"}}'
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": query}).json()
            if [r for r in answer["data"]["result"] if r["value"][1] == "0"]:
                break
            time.sleep(0.5)
        time.sleep(2)
        assert not [a for a in firing(prometheus) if a["labels"].get("sync_id") == sync_id]
        failed_at = time.monotonic()
        response = httpx.put(f"{sim}/_sim/syncs/nango/{sync_id}", json={"status": "ERROR"})
        assert response.status_code == 200, response.text
        wanted = {"SyncErrored", "SyncRunFailureRateHigh"}
        seen: set[str] = set()
        while time.monotonic() - failed_at < 40 and seen != wanted:
            for alert in firing(prometheus):
                if alert["labels"].get("sync_id") == sync_id:
                    seen.add(alert["labels"]["alertname"])
            time.sleep(0.5)
        assert seen == wanted, seen
        assert time.monotonic() - failed_at < 600, "well before min_interval"
