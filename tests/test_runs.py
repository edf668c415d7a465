"""Run counting from readings alone: the transitions each provider's polling shows.

Pure logic on canonical SyncStatus values (the HTTP path is in tests/test_webhooks.py).
"""

from __future__ import annotations

from exporter.collect.runs import MAX_IDENTITIES, MAX_UNPAIRED, PAIRING, Runs
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


def test_delivery_ids_past_the_bound_forget_the_oldest_first() -> None:
    runs = Runs()
    for n in range(MAX_IDENTITIES + 1):
        assert runs.event("succeeded", f"run:{n}", float(n))
    assert not runs.event("succeeded", f"run:{MAX_IDENTITIES}", 1000.0), "the newest is known"
    assert not runs.event("succeeded", "run:1", 1000.0), "still within the bound"
    assert runs.event("succeeded", "run:0", 1000.0), "the oldest was forgotten"
    assert runs.counts["succeeded"] == MAX_IDENTITIES + 2


def test_unpaired_runs_past_the_bound_drop_the_oldest() -> None:
    runs = Runs()
    runs.reading(status(State.IDLE, 100.0), 0.0)
    for n in range(MAX_UNPAIRED + 1):
        runs.event("failed", f"run:{n}", 1.0 + n)
    assert runs.counts["failed"] == MAX_UNPAIRED + 1
    for n in range(MAX_UNPAIRED + 1):
        runs.reading(status(State.ERRORED, 100.0, f"job:{n}"), 100.0 + n)
    assert runs.counts["failed"] == MAX_UNPAIRED + 2, "only the kept events pair with polling"


def test_without_events_polled_runs_are_counted_and_keep_no_pairing_entries() -> None:
    runs = Runs()
    runs.reading(status(State.IDLE, 100.0), 0.0, events=False)
    for n in range(MAX_UNPAIRED + 4):
        runs.reading(status(State.IDLE, 200.0 + n), 10.0 + n, events=False)
    assert runs.counts["succeeded"] == MAX_UNPAIRED + 4
    assert runs._unpaired is None
    # An event counted before the webhook went away still pairs with the reading of its run.
    assert runs.event("failed", "run:1", 50.0)
    runs.reading(status(State.ERRORED, 219.0, "j1"), 60.0, events=False)
    assert runs.counts["failed"] == 1
    assert runs._unpaired == []
