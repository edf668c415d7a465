"""Counting a sync's runs from what events say and what polling sees change.

A run is counted once: a webhook delivered twice has one identity (its run id, or its body),
and a run both an event and a reading report is paired (the second channel to report an
outcome within PAIRING seconds of the first does not count it again). A sync's first
reading sets the baseline: its past runs are not counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from exporter.exposition.families import Selection
from exporter.exposition.metrics import SYNC_LAST_RUN_FAILED, SYNC_RUNS, Family
from exporter.exposition.render import format_value, header
from exporter.model import State, SyncStatus

OUTCOMES = ("succeeded", "failed")
# How long an outcome reported by one channel waits to be paired with the other's report.
PAIRING = 3600.0
MAX_IDENTITIES = 256
MAX_UNPAIRED = 16

RUNS = SYNC_RUNS.name
LAST_FAILED = SYNC_LAST_RUN_FAILED.name


def _header(family: Family, openmetrics: bool) -> str:
    """A run family's metadata; in OpenMetrics a counter's family is named without `_total`
    (its samples keep it)."""
    if not openmetrics or family.type != "counter":
        return header(family, openmetrics).decode()
    name = family.name.removesuffix("_total")
    help_text = family.help.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return f"# HELP {name} {help_text}\n# TYPE {name} counter\n"


# Each run family's metadata in each format, written once.
_HEADERS = {
    (family.name, openmetrics): _header(family, openmetrics)
    for family in (SYNC_RUNS, SYNC_LAST_RUN_FAILED)
    for openmetrics in (False, True)
}


@dataclass(slots=True)
class Runs:
    """One sync's run counters, and what the last reading showed.

    The delivery ids and unpaired runs are made on a sync's first run, not with its counters,
    and are a plain dict (insertion-ordered) and a short list: a deque is 760 bytes even with
    one entry, which every sync that ran kept (38 MB at 50,000 syncs).
    """

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    last_failed: float | None = None
    baseline: bool = False
    _last_success: float | None = None
    _errored: bool = False
    _job: str | None = None
    _seen: dict[str, None] | None = None
    _unpaired: list[tuple[str, str, float]] | None = None

    @property
    def known(self) -> bool:
        """Whether the counters mean something yet (a reading or an event came)."""
        return self.baseline or any(self.counts.values())

    def _count(self, outcome: str, channel: str, at: float, pairs: bool = True) -> None:
        unpaired = self._unpaired
        if unpaired is None:
            if not pairs:
                self._counted(outcome, at)
                return
            unpaired = self._unpaired = []
        expired = 0
        while expired < len(unpaired) and at - unpaired[expired][2] > PAIRING:
            expired += 1
        del unpaired[:expired]
        for index, entry in enumerate(unpaired):
            if entry[0] == outcome and entry[1] != channel:
                del unpaired[index]
                return
        if pairs:
            unpaired.append((outcome, channel, at))
            if len(unpaired) > MAX_UNPAIRED:
                del unpaired[0]
        self._counted(outcome, at)

    def _counted(self, outcome: str, at: float) -> None:
        self.counts[outcome] += 1
        if outcome == "failed":
            self.last_failed = at

    def event(self, outcome: str, identity: str, at: float) -> bool:
        """A webhook says a run ended; False when this delivery was already counted."""
        if self._seen is None:
            self._seen = {}
        seen = self._seen
        if identity in seen:
            return False
        seen[identity] = None
        if len(seen) > MAX_IDENTITIES:
            del seen[next(iter(seen))]
        self._count(outcome, "event", at)
        return True

    def reading(self, status: SyncStatus, at: float, *, events: bool = True) -> None:
        """A fresh reading: count the runs its changes since the last one show.

        Without `events` (a source with no webhook) no event can report these runs again, so
        they wait for no pairing: an unpaired entry per run would fill MAX_UNPAIRED per sync.
        """
        errored = status.state is State.ERRORED
        success = status.last_synced_timestamp
        job = status.info.get("job_id") or None
        if self.baseline:
            if success is not None and (self._last_success is None or success > self._last_success):
                self._count("succeeded", "poll", at, events)
            new_job = job is not None and job != self._job
            if errored and (not self._errored or new_job):
                self._count("failed", "poll", at, events)
        self.baseline = True
        if success is not None:
            self._last_success = max(success, self._last_success or success)
        self._errored = errored
        self._job = job


class RunBook:
    """Every sync's Runs by (source, sync id), kept while the sync is read."""

    def __init__(self) -> None:
        self._runs: dict[tuple[str, str], Runs] = {}

    def __len__(self) -> int:
        return len(self._runs)

    def get(self, source: str, sync_id: str) -> Runs:
        """The sync's counters, new ones the first time it is asked for."""
        key = (source, sync_id)
        runs = self._runs.get(key)
        if runs is None:
            runs = self._runs[key] = Runs()
        return runs

    def keep(self, keys: Iterable[tuple[str, str]]) -> None:
        """Forget the syncs no longer read."""
        wanted = set(keys)
        self._runs = {key: runs for key, runs in self._runs.items() if key in wanted}

    def render(
        self,
        targets: Iterable[tuple[str, str, str]],
        selection: Selection | None = None,
        openmetrics: bool = False,
    ) -> bytes:
        """Both families for each (source, sync id, labels) whose counters mean something;
        only those `selection` keeps, in the text format or OpenMetrics."""
        kept = [
            family
            for family in (SYNC_RUNS, SYNC_LAST_RUN_FAILED)
            if selection is None or selection.keeps(family.name)
        ]
        if not kept:
            return b""
        runs_out: list[str] = []
        failed_out: list[str] = []
        for source, sync_id, labels in targets:
            runs = self._runs.get((source, sync_id))
            if runs is None or not runs.known:
                continue
            for outcome in OUTCOMES:
                count = runs.counts[outcome]
                runs_out.append(f'{RUNS}{{{labels},outcome="{outcome}"}} {count}.0\n')
            if runs.last_failed is not None:
                failed_out.append(f"{LAST_FAILED}{{{labels}}} {format_value(runs.last_failed)}\n")
        text = ""
        for family in kept:
            lines = runs_out if family is SYNC_RUNS else failed_out
            text += _HEADERS[family.name, openmetrics] + "".join(lines)
        return text.encode()
