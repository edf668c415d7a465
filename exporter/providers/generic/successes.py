"""Each sync's last success remembered across readings, for providers that do not always say.

Nango leaves the end of the last run out while a sync runs, and a paused sync's time may be
a failed run's: a reading without a trustworthy success must not make the last success (and
the staleness budget with it) disappear, nor move it backwards.
"""

from __future__ import annotations

from collections import OrderedDict

from exporter.model import State, SyncStatus

# A success this far ahead of the exporter's clock is a provider's bug, not a time to keep.
FUTURE_SLACK = 3600.0
# Syncs remembered per source; the longest unseen is forgotten first.
MAX_REMEMBERED = 100_000


class Successes:
    """The latest success seen of each sync of one source."""

    def __init__(self, initial_until_success: bool = False) -> None:
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._initial_until_success = initial_until_success

    def settle(self, sync_id: str, status: SyncStatus, now: float) -> SyncStatus:
        """`status` with the latest success known: this reading's when it is newer and not in
        the future, else the remembered one; with `initial_until_success`, a sync that has had
        a success is no longer initializing but active."""
        given = status.last_synced_timestamp
        known = self._seen.get(sync_id)
        if given is not None and (given > now + FUTURE_SLACK or given != given):
            given = None
        latest = known if given is None or (known is not None and known >= given) else given
        status.last_synced_timestamp = latest
        if latest is not None:
            self._seen[sync_id] = latest
            self._seen.move_to_end(sync_id)
            while len(self._seen) > MAX_REMEMBERED:
                self._seen.popitem(last=False)
            if self._initial_until_success and status.state is State.INITIALIZING:
                status.state = State.ACTIVE
        return status
