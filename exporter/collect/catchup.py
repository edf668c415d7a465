"""Reads a request budget put off, in the background between scrapes: with
`max_requests_per_second`, a source's syncs are read continuously, not only within the
scrapes' deadlines."""

from __future__ import annotations

import asyncio
import time

from exporter.collect.runs import RunBook
from exporter.exposition.selfmetrics import SelfMetrics
from exporter.exposition.targets import Failure, Reading, Target
from exporter.model import normalise
from exporter.providers.base import UpstreamError
from exporter.sources.source import Source

# How long a background catch-up read may wait for the request budget.
CATCH_UP_WAIT = 60.0


class CatchUp:
    """At most one catch-up per source, until it is done or the source's next collection
    takes over."""

    def __init__(self, metrics: SelfMetrics, runs: RunBook) -> None:
        self._metrics = metrics
        self._runs = runs
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, source: Source, targets: list[Target]) -> asyncio.Task[None]:
        """Read `targets` in the background as the source's budget allows."""
        self.stop(source.name)
        task = asyncio.get_running_loop().create_task(self._read(source, targets))
        self._tasks[source.name] = task
        return task

    def stop(self, name: str) -> None:
        """Stop the source's catch-up: a collection reads it now."""
        task = self._tasks.pop(name, None)
        if task is not None:
            task.cancel()

    async def _read(self, source: Source, targets: list[Target]) -> None:
        pending = iter(targets)
        adapter = source.adapter
        upstream = source.upstream
        errors = self._metrics.errors

        async def worker() -> None:
            for target in pending:
                http = upstream.within(time.monotonic() + CATCH_UP_WAIT)
                try:
                    status = normalise(await adapter.read(target, http))
                except UpstreamError as exc:
                    if exc.sent:
                        errors.labels(source.name, exc.reason).inc()
                        target.failure = Failure(exc.reason, exc.detail, time.time())
                    elif exc.reason == "rate_limited":
                        return
                except Exception as exc:
                    errors.labels(source.name, "bad_response").inc()
                    target.failure = Failure("bad_response", type(exc).__name__, time.time())
                else:
                    at = time.time()
                    events = source.config.webhook is not None
                    runs = self._runs.get(source.name, target.sync_id)
                    runs.reading(status, at, events=events)
                    target.reading = Reading(status, at)
                    target.failure = None

        budget = source.policy.budget
        width = min(upstream.concurrency, 1 if budget is None else budget.capacity)
        await asyncio.gather(*(worker() for _ in range(width)))
