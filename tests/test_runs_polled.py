"""Runs seen by polling alone, for the Airbyte and Fivetran presets: a polled job or sync going
from running to succeeded or failed moves sync_runs_total as an event would. A new failed job
(Airbyte's `jobId`) or a newer `failed_at` (Fivetran) while already errored is another failed
run (the presets' `fields.run`); the first reading counts nothing.

The exporter runs as users run it against the simulator's fakes, on 127.0.0.1.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from exporter.simulator.providers import airbyte, fivetran
from tests.conftest import Sim
from tests.exposition import Exposition
from tests.procs import exporter_command, free_port, running
from tests.test_presets import airbyte_job, create, fivetran_connection


def _airbyte_step(sim: Sim, step: int) -> None:
    """Job 1 succeeded; job 2 failed; job 3 failed; job 4 succeeded (each newest first)."""
    outcomes = {1: "succeeded", 2: "failed", 3: "failed", 4: "succeeded"}
    jobs = [
        airbyte_job(
            "ab_runs",
            outcomes[n],
            jobId=n,
            startTime=f"2026-04-01T0{n}:00:00Z",
            lastUpdatedAt=f"2026-04-01T0{n}:10:00Z",
        )
        for n in range(step, 0, -1)
    ]
    create(sim, "airbyte", "ab_runs", jobs[0], jobs=jobs[1:], name="Runs")


def _fivetran_step(sim: Sim, step: int) -> None:
    """A success at 10:00; a failure at 11:00; another at 12:00; a success at 13:00."""
    times = {1: ("10", None), 2: ("10", "11"), 3: ("10", "12"), 4: ("13", "12")}
    succeeded, failed = times[step]
    body = fivetran_connection(
        "ft_runs",
        succeeded_at=f"2026-01-01T{succeeded}:00:00.000Z",
        failed_at=None if failed is None else f"2026-01-01T{failed}:00:00.000Z",
    )
    if body["failed_at"] is None:
        del body["failed_at"]
    create(sim, "fivetran", "ft_runs", body)


CASES: dict[str, tuple[str, Callable[[Sim, int], None], dict[str, Any]]] = {
    "airbyte": (
        "ab_runs",
        _airbyte_step,
        {
            "base_url": "{base}/airbyte/v1",
            "auth": {"username": airbyte.USER, "password": airbyte.PASSWORD},
        },
    ),
    "fivetran": (
        "ft_runs",
        _fivetran_step,
        {
            "base_url": "{base}/fivetran",
            "auth": {"username": fivetran.API_KEY, "password": fivetran.API_SECRET},
        },
    ),
}
# After each step: (state, succeeded, failed).
EXPECTED = {
    1: ("idle", 0, 0),
    2: ("errored", 0, 1),
    3: ("errored", 0, 2),
    4: ("idle", 1, 2),
}


@pytest.mark.parametrize("preset", sorted(CASES))
def test_polled_transitions_count_runs(preset: str, sim: Sim, tmp_path: Path) -> None:
    sync_id, step, options = CASES[preset]
    step(sim, 1)
    source = {
        "name": preset,
        "provider": "generic",
        "preset": preset,
        "discover": True,
        **options,
        "base_url": options["base_url"].format(base=sim.base),
    }
    config = tmp_path / "exporter.yml"
    config.write_text(yaml.safe_dump({"sources": [source]}))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    labels = {"source": preset, "sync_id": sync_id}
    with running(exporter_command(config, port), f"{url}/-/ready", log=tmp_path / "exp.log"):
        for number in sorted(EXPECTED):
            if number > 1:
                step(sim, number)
            wanted = EXPECTED[number]
            deadline = time.monotonic() + 20
            while True:
                m = Exposition(httpx.get(f"{url}/metrics", timeout=10).text)
                seen: tuple[str, float, float] = ("", -1, -1)
                if m.has("sync_state", **labels):
                    seen = (
                        m.state(**labels),
                        m.value("sync_runs_total", **labels, outcome="succeeded"),
                        m.value("sync_runs_total", **labels, outcome="failed"),
                    )
                if seen == wanted or time.monotonic() > deadline:
                    break
                time.sleep(0.3)
            assert seen == wanted, (number, seen)
            # Read again: nothing new happened, nothing more is counted.
            time.sleep(1)
            m = Exposition(httpx.get(f"{url}/metrics", timeout=10).text)
            again = m.value("sync_runs_total", **labels, outcome="failed")
            assert again == wanted[2], (number, again)
