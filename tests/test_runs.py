"""Run counting from readings alone: the transitions each provider's polling shows.

Pure logic on canonical SyncStatus values (the HTTP path is in tests/test_webhooks.py).
"""

from __future__ import annotations

from exporter.collect.runs import PAIRING, Runs
from exporter.model import State, SyncStatus


def status(state: State, success: float | None = None, job: str = "") -> SyncStatus:
    return SyncStatus(state, "x", info={"job_id": job}, last_synced_timestamp=success)


def test_a_success_advancing_and_a_new_failed_job_are_runs_the_first_reading_is_not() -> None:
    runs = Runs()
    runs.reading(status(State.IDLE, 100.0, "j1"), 1000.0)
    assert runs.counts == {"succeeded": 0, "failed": 0}
    runs.reading(status(State.IDLE, 100.0, "j1"), 1010.0)
    runs.reading(status(State.IDLE, 200.0, "j2"), 1020.0)
    assert runs.counts == {"succeeded": 1, "failed": 0}
    runs.reading(status(State.ERRORED, 200.0, "j3"), 1030.0)
    runs.reading(status(State.ERRORED, 200.0, "j3"), 1040.0)
    runs.reading(status(State.ERRORED, 200.0, "j4"), 1050.0)  # another job failed
    assert runs.counts == {"succeeded": 1, "failed": 2}
    assert runs.last_failed == 1050.0
    # An older success (a listing served from a lagging replica) is no new run.
    runs.reading(status(State.IDLE, 150.0, "j4"), 1060.0)
    assert runs.counts["succeeded"] == 1


def test_an_event_and_a_reading_of_one_run_pair_only_within_the_window() -> None:
    runs = Runs()
    runs.reading(status(State.IDLE, 100.0), 0.0)
    assert runs.event("failed", "run:1", 10.0)
    runs.reading(status(State.ERRORED, 100.0), 20.0)
    assert runs.counts["failed"] == 1
    assert not runs.event("failed", "run:1", 30.0), "a redelivery"
    runs.reading(status(State.IDLE, 100.0), 40.0)
    runs.reading(status(State.ERRORED, 100.0), 50.0)
    assert runs.counts["failed"] == 2
    assert runs.event("failed", "run:2", 50.0 + PAIRING + 1), "too late to be the same run"
    assert runs.counts["failed"] == 3
