"""The simulator's Fivetran and Merge fakes move a connection's run times only when a run ends:
polling counts runs from those times (sync_runs_total), so a time that slid with the clock
made up a success on every poll."""

from __future__ import annotations

import pytest

from exporter.simulator.clock import DAY, Moment
from exporter.simulator.providers.fivetran import Connection
from exporter.simulator.providers.merge import Account

START = 1_780_000_000.0
PERIOD = DAY


def _at(fraction: float) -> Moment:
    return Moment(START, START + fraction * PERIOD, PERIOD)


@pytest.mark.parametrize("kind", ["rescheduled", "paused", "manual", "broken", "failing"])
def test_a_fivetran_connection_keeps_its_times_within_a_period(kind: str) -> None:
    connection = Connection("c1", "stripe", "stripe_billing", kind)
    early, late = connection.render(_at(0.55)), connection.render(_at(0.95))
    times = ("succeeded_at", "failed_at")
    assert [early[t] for t in times] == [late[t] for t in times], kind


def test_a_cycling_fivetran_connection_succeeds_again_in_the_next_period() -> None:
    connection = Connection("c1", "stripe", "stripe_billing", "rescheduled")
    assert (
        connection.render(_at(0.9))["succeeded_at"] != connection.render(_at(1.9))["succeeded_at"]
    )


@pytest.mark.parametrize("kind", ["steady", "failing", "partial", "paused", "paused_failing"])
def test_a_merge_account_keeps_its_finish_times_within_a_period(kind: str) -> None:
    account = Account("a1", kind)
    finished = [
        [model["last_sync_finished"] for model in account.render(_at(at))["results"]]
        for at in (0.55, 0.95)
    ]
    assert finished[0] == finished[1], kind
