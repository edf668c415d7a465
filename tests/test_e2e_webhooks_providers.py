"""End to end, per provider: a failure the simulator pushes by webhook shows at the next scrape
although the exporter's `min_interval` (10m) would serve the cached reading, and the run
counters move (once: the event and the reading that follows it are one run).

Simulator and exporter run as users run them, each in its own process on 127.0.0.1. The
simulator signs (Fivetran, Merge) or sends to a URL carrying the secret (Paragon, Terminal)
as each provider documents; the exporter's config is the simulator's own `/_sim/config`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from exporter.simulator.providers import fivetran, merge
from exporter.simulator.providers.paragon import webhooks as paragon_hooks
from exporter.simulator.providers.terminal import webhooks as terminal_hooks
from tests.exposition import Exposition
from tests.procs import exporter_command, free_port, running

SECRETS = {
    "paragon": paragon_hooks.WEBHOOK_SECRET,
    "terminal": terminal_hooks.WEBHOOK_SECRET,
    "fivetran": fivetran.WEBHOOK_SECRET,
    "merge": merge.WEBHOOK_SECRET,
}
# Token providers get the secret in the URL they are given, as a user registers it.
TOKEN_IN_URL = {"paragon", "terminal"}


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _fail_paragon(sim: httpx.Client, sync_id: str) -> None:
    answer = sim.put(f"/_sim/syncs/paragon/{sync_id}", json={"status": "ERRORED", "reason": "x"})
    assert answer.status_code == 200, answer.text


def _fail_terminal(sim: httpx.Client, connection: str) -> None:
    job = {
        "id": "sync_webhook_failed",
        "status": "failed",
        "requestedAt": _now_iso(),
        "completedAt": _now_iso(),
        "failureReason": "Provider API returned 403",
        "progress": 10,
        "issues": [],
        "attempts": 1,
    }
    answer = sim.post(
        "/_sim/syncs/terminal", json={"id": job["id"], "body": job, "connection": connection}
    )
    assert answer.status_code in (200, 201), answer.text


def _fail_fivetran(sim: httpx.Client, sync_id: str) -> None:
    answer = sim.put(f"/_sim/syncs/fivetran/{sync_id}", json={"failed_at": _now_iso()})
    assert answer.status_code == 200, answer.text


def _fail_merge(sim: httpx.Client, sync_id: str) -> None:
    body = sim.get(f"/_sim/syncs/merge/{sync_id}").json()
    results = [dict(r) for r in body["results"]]
    results[-1].update(status="FAILED", last_sync_result="FAILED")
    answer = sim.put(f"/_sim/syncs/merge/{sync_id}", json={"results": results})
    assert answer.status_code == 200, answer.text


FAIL: dict[str, Callable[[httpx.Client, str], None]] = {
    "paragon": _fail_paragon,
    "terminal": _fail_terminal,
    "fivetran": _fail_fivetran,
    "merge": _fail_merge,
}


def _source(config: dict[str, Any], provider: str) -> dict[str, Any]:
    for source in config["sources"]:
        if source["name"].endswith(f"-{provider}"):
            return dict(source)
    raise AssertionError(f"no {provider} source in {config}")


@pytest.mark.parametrize("provider", sorted(FAIL))
def test_a_failure_pushed_by_webhook_shows_at_the_next_scrape(
    provider: str, tmp_path: Path
) -> None:
    sim_port, port = free_port(), free_port()
    sim = f"http://127.0.0.1:{sim_port}"
    url = f"http://127.0.0.1:{port}"
    name = f"demo-{provider}"
    hook = f"{url}/webhooks/{name}"
    if provider in TOKEN_IN_URL:
        hook += f"?token={SECRETS[provider]}"
    simulator = [
        sys.executable, "-m", "exporter.simulator", "--listen", f"127.0.0.1:{sim_port}",
        "--period", "24h", "--webhook-url", f"{provider}={hook}",
    ]  # fmt: skip
    with running(simulator, f"{sim}/_sim/requests", log=tmp_path / "sim.log"):
        client = httpx.Client(base_url=sim, timeout=10)
        source = _source(client.get("/_sim/config").json(), provider)
        assert source["name"] == name
        source["min_interval"] = "10m"
        source["webhook"] = {"secret": SECRETS[provider]}
        config = tmp_path / "exporter.yml"
        config.write_text(yaml.safe_dump({"sources": [source]}))
        with running(exporter_command(config, port), f"{url}/-/ready", log=tmp_path / "exp.log"):
            m = Exposition(httpx.get(f"{url}/metrics", timeout=10).text)
            idle = [labels["sync_id"] for labels, v in m.find("sync_state", state="idle") if v]
            assert idle, m.find("sync_state")
            sync_id = idle[0]
            runs = {"source": name, "sync_id": sync_id}
            assert m.value("sync_runs_total", **runs, outcome="failed") == 0
            FAIL[provider](client, sync_id)
            failed_at = time.monotonic()
            state, count = "idle", 0.0
            while time.monotonic() - failed_at < 30:
                m = Exposition(httpx.get(f"{url}/metrics", timeout=10).text)
                state = m.state(source=name, sync_id=sync_id)
                count = m.value("sync_runs_total", **runs, outcome="failed")
                if state == "errored" and count:
                    break
                time.sleep(0.5)
            assert state == "errored", "the webhook did not make the exporter read the sync"
            assert count == 1
            events = m.find("sync_exporter_webhook_events_total", source=name)
            assert sum(v for _, v in events) >= 1, events
            rejected = m.find("sync_exporter_webhook_rejected_total", source=name)
            assert all(v == 0 for _, v in rejected), rejected
            # The event and the reading it caused are one run, also a while later.
            time.sleep(2)
            m = Exposition(httpx.get(f"{url}/metrics", timeout=10).text)
            assert m.value("sync_runs_total", **runs, outcome="failed") == 1
