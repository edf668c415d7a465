"""How often one source's syncs are read: built once with the source, so no scrape reads its
`min_interval` or `max_requests_per_second` from the config.

Three things decide whether a sync is read or served again: its reading's age against the
source's `min_interval`, the source's request budget, and webhook events, which make the
next scrape read the syncs they name whatever `min_interval` says.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from exporter.exposition.render import StalePolicy
from exporter.exposition.targets import Reading, Target
from exporter.schema import SourceConfig
from exporter.sources.upstream import Budget

# How much younger than min_interval a reading may be and still be read again: a tenth of
# it, at most a second. Readings are timed from their collection's start, so this only has
# to absorb jitter in scrape times; a fixed tenth made min_interval = 10 scrape intervals
# read every 9th scrape.
MIN_INTERVAL_SLACK = 0.1
MIN_INTERVAL_SLACK_MAX = 1.0


def fresh_for(min_interval: float) -> float:
    """How long a reading is served again instead of read, for a source's `min_interval`."""
    return min_interval - min(min_interval * MIN_INTERVAL_SLACK, MIN_INTERVAL_SLACK_MAX)


@dataclass(slots=True)
class ReadPolicy:
    """One source's read policy: how long a reading stays fresh, and its request budget.

    The budget is the same bucket the source's upstream spends from; a reload that rebuilds
    the source hands the new policy the old bucket (`exporter.sources.source.Budgets`).
    """

    fresh_for: float
    budget: Budget | None = None

    @classmethod
    def of(cls, config: SourceConfig[Any, Any]) -> ReadPolicy:
        """The policy a source's config sets."""
        rate = config.max_requests_per_second
        return cls(fresh_for(float(config.min_interval)), None if rate is None else Budget(rate))

    def shares_within(self, target: Target) -> float:
        """How old a read in flight may be and still answer for `target`: none once an event
        told it stale, since that read may predate the event."""
        return 0.0 if target.told_stale() else self.fresh_for

    def reusable(
        self, target: Target, now: float, stale: StalePolicy, *, despite_event: bool = False
    ) -> Reading | None:
        """The reading that may be served again at `now`: younger than the policy's freshness
        and with no webhook event since (or, `despite_event`, of any age: better than
        nothing), no failure since, and within the sync's staleness budget (an old answer is
        not `sync_up 1`)."""
        reading, failure = target.reading, target.failure
        if reading is None or (failure is not None and failure.at >= reading.at):
            return None
        if not despite_event and target.told_stale():
            return None
        age = now - reading.at
        if not despite_event and age >= self.fresh_for:
            return None
        limit = stale.threshold(target, reading.status) or stale.default
        return reading if age <= limit else None


def read_first(target: Target) -> tuple[bool, float]:
    """The order a budget reads in: syncs an event told stale first, then the least recently
    read."""
    reading = target.reading
    return (not target.told_stale(), -math.inf if reading is None else reading.at)
