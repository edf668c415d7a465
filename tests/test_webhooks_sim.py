"""The simulator's signed Nango webhooks reach a real exporter and move its run counters.

Both programs run as users run them, on 127.0.0.1: the simulator with a short lifecycle
period and `--webhook-url`, the exporter with `min_interval` far longer than the test, so
only the webhooks can make it read the syncs again.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx
import yaml

from exporter.simulator.providers import nango
from tests.exposition import Exposition
from tests.procs import exporter_command, free_port, running


def test_simulated_run_endings_arrive_signed_and_count_runs(tmp_path: Path) -> None:
    sim_port, port = free_port(), free_port()
    sim = f"http://127.0.0.1:{sim_port}"
    url = f"http://127.0.0.1:{port}"
    source = {
        "name": "ng",
        "provider": "generic",
        "preset": "nango",
        "base_url": f"{sim}/nango",
        "auth": {"token": nango.SECRET},
        "discover": True,
        "generic": {"list": {"params": {"provider_config_key": nango.INTEGRATION}}},
        "min_interval": "1h",
        "webhook": {"secret": nango.WEBHOOK_SECRET},
    }
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump({"sources": [source]}))
    simulator = [
        sys.executable, "-m", "exporter.simulator", "--listen", f"127.0.0.1:{sim_port}",
        "--period", "4s", "--webhook-url", f"nango={url}/webhooks/ng",
    ]  # fmt: skip
    with (
        running(simulator, f"{sim}/_sim/requests", log=tmp_path / "sim.log"),
        running(exporter_command(config, port), f"{url}/-/ready", log=tmp_path / "exp.log"),
    ):
        deadline = time.monotonic() + 30
        runs = 0.0
        while time.monotonic() < deadline:
            m = Exposition(httpx.get(f"{url}/metrics", timeout=10).text)
            events = m.find("sync_exporter_webhook_events_total", source="ng", event="sync")
            runs = sum(v for _, v in m.find("sync_runs_total", source="ng"))
            if events and events[0][1] > 0 and runs > 0:
                break
            time.sleep(1)
        assert runs > 0, "no run counted from the simulator's webhooks"
        rejected = m.find("sync_exporter_webhook_rejected_total", source="ng")
        assert all(v == 0 for labels, v in rejected if labels["reason"] != "unmatched"), rejected
