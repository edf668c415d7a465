"""`sync-status-exporter demo`: simulator and exporter in one process, every state shows up."""

from __future__ import annotations

import sys
import time

import httpx

from tests.exposition import Exposition
from tests.procs import free_port, running

ALL_STATES = {"initializing", "active", "idle", "rate_limited", "disabled", "errored", "unknown"}


def test_demo_shows_all_seven_states_and_progress() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "exporter",
        "demo",
        "--web.listen-address",
        f"127.0.0.1:{port}",
        "--period",
        "6s",
    ]
    seen: set[str] = set()
    progress: dict[str, set[float]] = {}
    with running(command, f"{url}/-/ready"):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            m = Exposition(httpx.get(f"{url}/metrics", timeout=10).text)
            assert all(value == 1 for _, value in m.find("sync_up"))
            seen |= {labels["state"] for labels, value in m.find("sync_state") if value == 1}
            for labels, value in m.find("sync_progress_ratio", provider="terminal"):
                progress.setdefault(labels["sync_id"], set()).add(value)
            if seen == ALL_STATES and any(len(v) > 2 for v in progress.values()):
                break
            time.sleep(0.5)
        page = httpx.get(f"{url}/").text
        reload = httpx.post(f"{url}/-/reload")
    assert seen == ALL_STATES
    assert any(len(values) > 2 for values in progress.values()), progress
    assert reload.status_code == 403 and reload.text == "Lifecycle API is not enabled.\n"
    assert "demo-paragon" in page and "demo-terminal" in page and "demo-sequin" in page
    assert "Demo mode: these syncs come from the built-in simulator" in page


def test_demo_webhooks_move_the_run_counters() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "exporter", "demo", "--web.listen-address",
               f"127.0.0.1:{port}", "--period", "4s"]  # fmt: skip
    # The providers whose demo syncs end runs every period (Paragon's completes once).
    cycling = ("demo-nango", "demo-terminal", "demo-fivetran", "demo-merge")
    events: dict[str, float] = {}
    runs = 0.0
    with running(command, f"{url}/-/ready"):
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            m = Exposition(httpx.get(f"{url}/metrics", timeout=10).text)
            events = {
                source: sum(
                    v for _, v in m.find("sync_exporter_webhook_events_total", source=source)
                )
                for source in cycling
            }
            runs = sum(value for _, value in m.find("sync_runs_total", source="demo-nango"))
            if all(events.values()) and runs:
                break
            time.sleep(0.5)
        rejected = m.find("sync_exporter_webhook_rejected_total")
    assert all(events.values()) and runs > 0, events
    assert not [labels for labels, v in rejected if v and labels["reason"] != "unmatched"]
