"""An event about a sync a discovering source has not listed yet makes it list again, soon, but
at most once per `webhook.rediscover_every`: the new sync shows long before
`discover_interval` (1h here) would list it, and a burst of such events costs one listing.

Simulator (Terminal, sending its webhooks) and exporter run as users run them on 127.0.0.1.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from exporter.simulator.providers.terminal import webhooks as terminal_hooks
from tests.exposition import Exposition
from tests.procs import exporter_command, free_port, running

WINDOW = 4.0


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _new_failing_connection(sim: httpx.Client, connection: str) -> None:
    """A connection made at Terminal after the last listing, whose first job fails (the
    simulator then sends sync.failed for it)."""
    made = {"id": connection, "company": f"{connection} Freight", "provider": "samsara"}
    answer = sim.post("/_sim/terminal/connections", json=made)
    assert answer.status_code == 201, answer.text
    job = {
        "id": f"sync_{connection}",
        "status": "failed",
        "requestedAt": _now_iso(),
        "completedAt": _now_iso(),
        "failureReason": "Provider API returned 403",
        "progress": 0,
        "issues": [],
        "attempts": 1,
    }
    answer = sim.post(
        "/_sim/syncs/terminal", json={"id": job["id"], "body": job, "connection": connection}
    )
    assert answer.status_code == 201, answer.text


def _listings(sim: httpx.Client) -> int:
    paths: dict[str, int] = sim.get("/_sim/requests").json()["paths"]
    return sum(n for path, n in paths.items() if path.endswith("/connections"))


def _wait_for(url: str, connections: set[str], seconds: float) -> Exposition:
    deadline = time.monotonic() + seconds
    while True:
        m = Exposition(httpx.get(f"{url}/metrics", timeout=10).text)
        seen = {labels["sync_id"] for labels, _ in m.find("sync_state", state="errored")}
        errored = {
            labels["sync_id"] for labels, v in m.find("sync_state", state="errored") if v == 1
        }
        if connections <= errored or time.monotonic() > deadline:
            assert connections <= seen, (connections, seen)
            assert connections <= errored, "the syncs the events named were not read again"
            return m
        time.sleep(0.3)


def test_an_event_about_an_unlisted_sync_lists_again_debounced(tmp_path: Path) -> None:
    sim_port, port = free_port(), free_port()
    sim = f"http://127.0.0.1:{sim_port}"
    url = f"http://127.0.0.1:{port}"
    name = "demo-terminal"
    hook = f"{url}/webhooks/{name}?token={terminal_hooks.WEBHOOK_SECRET}"
    simulator = [
        sys.executable, "-m", "exporter.simulator", "--listen", f"127.0.0.1:{sim_port}",
        "--period", "24h", "--webhook-url", f"terminal={hook}",
    ]  # fmt: skip
    with running(simulator, f"{sim}/_sim/requests", log=tmp_path / "sim.log"):
        client = httpx.Client(base_url=sim, timeout=10)
        config: dict[str, Any] = client.get("/_sim/config").json()
        source = next(s for s in config["sources"] if s["name"] == name)
        source.update(discover_interval="1h", min_interval="10m")
        source["webhook"] = {
            "secret": terminal_hooks.WEBHOOK_SECRET,
            "rediscover_every": f"{WINDOW:g}s",
        }
        path = tmp_path / "exporter.yml"
        path.write_text(yaml.safe_dump({"sources": [source]}))
        with running(exporter_command(path, port), f"{url}/-/ready", log=tmp_path / "exp.log"):
            httpx.get(f"{url}/metrics", timeout=10)
            before = _listings(client)
            started = time.monotonic()
            _new_failing_connection(client, "conn_new_one")
            m = _wait_for(url, {"conn_new_one"}, 15)
            assert time.monotonic() - started < WINDOW + 10, "listed on the next event, not in 1h"
            assert _listings(client) == before + 1
            unmatched = {"source": name, "reason": "unmatched"}
            assert m.value("sync_exporter_webhook_rejected_total", **unmatched) == 1
            # Two more inside the window: one listing, at the window's end, finds both.
            _new_failing_connection(client, "conn_new_two")
            _new_failing_connection(client, "conn_new_three")
            m = _wait_for(url, {"conn_new_two", "conn_new_three"}, WINDOW + 15)
            assert _listings(client) == before + 2
            assert m.value("sync_exporter_webhook_rejected_total", **unmatched) == 2 + 1
            # An event about a listed sync lists nothing.
            time.sleep(WINDOW + 1)
            job = {"id": "sync_again", "status": "failed", "requestedAt": _now_iso()}
            body = {"id": job["id"], "body": job, "connection": "conn_new_one"}
            assert client.post("/_sim/syncs/terminal", json=body).status_code == 201
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                m = Exposition(httpx.get(f"{url}/metrics", timeout=10).text)
                runs = {"source": name, "sync_id": "conn_new_one", "outcome": "failed"}
                if m.value("sync_runs_total", **runs) >= 1:
                    break
                time.sleep(0.3)
            assert m.value("sync_runs_total", **runs) == 1
            assert _listings(client) == before + 2
            assert m.value("sync_exporter_webhook_rejected_total", **unmatched) == 3


def test_a_disconnected_connection_shows_at_once_though_its_status_comes_from_the_listing(
    tmp_path: Path,
) -> None:
    sim_port, port = free_port(), free_port()
    sim = f"http://127.0.0.1:{sim_port}"
    url = f"http://127.0.0.1:{port}"
    name = "demo-terminal"
    hook = f"{url}/webhooks/{name}?token={terminal_hooks.WEBHOOK_SECRET}"
    simulator = [
        sys.executable, "-m", "exporter.simulator", "--listen", f"127.0.0.1:{sim_port}",
        "--period", "24h", "--webhook-url", f"terminal={hook}",
    ]  # fmt: skip
    with running(simulator, f"{sim}/_sim/requests", log=tmp_path / "sim.log"):
        client = httpx.Client(base_url=sim, timeout=10)
        config: dict[str, Any] = client.get("/_sim/config").json()
        source = next(s for s in config["sources"] if s["name"] == name)
        source.update(discover_interval="1h", min_interval="10m")
        source["webhook"] = {"secret": terminal_hooks.WEBHOOK_SECRET}
        path = tmp_path / "exporter.yml"
        path.write_text(yaml.safe_dump({"sources": [source]}))
        with running(exporter_command(path, port), f"{url}/-/ready", log=tmp_path / "exp.log"):
            m = Exposition(httpx.get(f"{url}/metrics", timeout=10).text)
            idle = [labels["sync_id"] for labels, v in m.find("sync_state", state="idle") if v]
            assert idle
            connection = idle[0]
            before = _listings(client)
            patched = client.patch(
                f"/_sim/terminal/connections/{connection}", json={"status": "disconnected"}
            )
            assert patched.status_code == 200, patched.text
            m = _wait_for(url, {connection}, 15)
            assert _listings(client) == before + 1
            events = {"source": name, "event": "connection.disconnected"}
            assert m.value("sync_exporter_webhook_events_total", **events) == 1
            ((labels, _),) = m.find("sync_error_info", sync_id=connection)
            assert "link the account again" in labels["reason"]
