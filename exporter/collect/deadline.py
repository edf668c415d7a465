"""How long a collection's reads may take within its scrape's timeout, and which running
collection a scrape may share: what scrape and probe alike decide before reading."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from exporter.collect.snapshot import Snapshot
from exporter.exposition.deflate import gzip_join
from exporter.exposition.families import Selection
from exporter.exposition.render import Renderer, StalePolicy
from exporter.exposition.targets import Target
from exporter.providers.base import Adapter

# A scrape shares a running collection only if that collection was given at least this
# share of the scrape's own budget: a client asking for a 1 s timeout must not cut short
# the answer to Prometheus's 10 s scrape.
SHARE_MIN_BUDGET = 0.9
# Collections in flight at once; a scrape beyond them shares the latest.
MAX_COLLECTIONS = 4
# Syncs rendered to measure the cost of finishing a collection before the first one.
CALIBRATION_SAMPLE = 256
# The whole end of a collection of 40,000 unread syncs measured 4 to 5 times what rendering
# and compressing them alone costs (cancelling the reads, marking each one failed).
FINISH_MARKUP = 5.0
# How fast the measured cost of finishing a collection forgets a slow one, per collection.
FINISH_DECAY = 0.9
# The most of a scrape's deadline kept back for finishing: on a busy host, finishing tens of
# thousands of syncs can cost more than half of it, and an answer on time beats more reads.
MAX_RESERVE_SHARE = 0.75


@dataclass(slots=True)
class Running:
    """A collection in flight: scrapes whose deadline and budget fit may share it."""

    task: asyncio.Task[Snapshot]
    deadline: float
    budget: float


def joinable(running: list[Running], deadline: float, timeout: float) -> Running | None:
    """The running collection a scrape (or probe) shares: one ending within its deadline and
    given nearly as much time, else the latest once MAX_COLLECTIONS run; None to start one."""
    for candidate in running:
        if candidate.deadline <= deadline and candidate.budget >= SHARE_MIN_BUDGET * timeout:
            return candidate
    return running[-1] if len(running) >= MAX_COLLECTIONS else None


class FinishCost:
    """What the end of a collection costs per sync (marking unread syncs, rendering,
    compressing), kept back from each timeout so the answer is on time."""

    def __init__(self) -> None:
        self.per_sync = 0.0

    def reads_for(self, count: int, timeout: float) -> float:
        """How long the reads of `count` syncs may take within `timeout`."""
        reserve = min(self.per_sync * count, timeout * MAX_RESERVE_SHARE)
        return max(timeout - reserve, 0.001)

    def measured(self, spent: float, count: int) -> None:
        """A collection of `count` syncs took `spent` seconds to finish."""
        self.per_sync = max(spent / max(count, 1), self.per_sync * FINISH_DECAY)

    def calibrate(
        self, targets: Sequence[Target], adapters: Sequence[Adapter[Any]], families: Selection
    ) -> None:
        """Before the first collection: render and compress a sample of unread syncs, times
        FINISH_MARKUP for cancelling the unread reads and marking them failed besides."""
        if self.per_sync or not targets:
            return
        sample = targets[:CALIBRATION_SAMPLE]
        started = time.perf_counter()
        renderer = Renderer(StalePolicy(1.0, 1.0, 0.0), adapters, families)
        for target in sample:
            renderer.add(target, None, 0.0)
        gzip_join(renderer.pieces())
        self.per_sync = FINISH_MARKUP * (time.perf_counter() - started) / len(sample)
