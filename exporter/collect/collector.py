"""One scrape's work: read every sync concurrently within a deadline, rendering as they arrive.

Scrapes that arrive while a collection runs share it, so two Prometheus replicas do not
double the load on a provider. What to read is each source's discovery's business, and how
to reach a provider its upstream's (limits, 429 back-off): the collector only schedules.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from exporter.collect.catchup import CatchUp
from exporter.collect.deadline import FinishCost, Running, joinable
from exporter.collect.failures import FailureReport, classify
from exporter.collect.inflight import Reads, SharedFailure
from exporter.collect.probing import ProbeRenderer, probe_families
from exporter.collect.readpolicy import read_first
from exporter.collect.runs import RunBook
from exporter.collect.snapshot import Snapshot
from exporter.config import Config
from exporter.exposition.deflate import Deflated, deflated
from exporter.exposition.render import Renderer, StalePolicy
from exporter.exposition.selfmetrics import SelfMetrics
from exporter.exposition.targets import Failure, Reading, Target
from exporter.memory import release_free_memory
from exporter.model import SyncStatus, normalise
from exporter.sources.source import Budgets, Source, build_source, carry_over
from exporter.sources.sourcemetrics import SourcesCollector
from exporter.sources.upstream import SourceHttp
from exporter.transport.client import make_client, tls_context
from exporter.transport.http1 import Client

log = logging.getLogger("exporter.collection")


def _release(_: asyncio.Task[Snapshot]) -> None:
    """After a collection, what it freed goes back to the system (exporter/memory.py)."""
    release_free_memory()


@dataclass(slots=True)
class _Work:
    """One collection's shared state, as its sources' reads fill it in."""

    renderer: Renderer
    report: FailureReport
    stale: StalePolicy
    wall: float
    deadline: float
    done: list[bool]
    begun: list[bool]
    deferred: dict[str, tuple[Source, list[Target]]] = field(default_factory=dict)


class Collector:
    """Owns the sources, the HTTP client and the collections in flight."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.metrics = SelfMetrics(SourcesCollector(lambda: self.sources))
        self._tls = tls_context()
        self._client: Client | None = None
        self.sources: list[Source] = self.prepare(config)
        self.metrics.track_sources([s.name for s in self.sources])
        self._running: list[Running] = []
        self._background: set[asyncio.Task[None]] = set()
        self._failing: dict[tuple[str, str], str] = {}
        self._reads = Reads()
        self.runs = RunBook()
        self._budgets = Budgets()
        self._budgets.attach(self.sources)
        self._started = False
        self._finish = FinishCost()
        self._catch_up = CatchUp(self.metrics, self.runs)
        self._probes: dict[tuple[str, str | None], list[Running]] = {}
        self.last_collection: float | None = None

    def start(self) -> None:
        """Begin listing in the background (sources with discovery, or that list for names)."""
        self._started = True
        for source in self.sources:
            source.discovery.start()

    @property
    def ready(self) -> bool:
        """Whether every source has finished its first listing (if it lists at all)."""
        return all(source.discovery.ready.is_set() for source in self.sources)

    async def wait_ready(self, timeout: float) -> None:
        """Wait, at most `timeout` seconds, for every source's first listing."""
        waits = [s.discovery.ready.wait() for s in self.sources if not s.discovery.ready.is_set()]
        if waits:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await asyncio.gather(*waits)

    def prepare(self, config: Config) -> list[Source]:
        """A config's sources with their targets built: the costly part of a reload (1.4 s or
        more for 100,000 syncs), touching nothing running, so it can run in a worker thread."""
        return [
            build_source(source, config.collector, self._http, self.metrics)
            for source in config.sources
        ]

    def apply(self, config: Config, built: list[Source] | None = None) -> None:
        """Switch to a new config (its sources as `prepare` built them), keeping each source
        that did not change as it runs.

        Collections already running finish with the sources they started with; scrapes from
        now on read the new ones.
        """
        previous = {source.name: source for source in self.sources}
        self.config = config
        sources = []
        for fresh in self.prepare(config) if built is None else built:
            old = previous.pop(fresh.name, None)
            sources.append(fresh if old is None else carry_over(old, fresh))
        for old in self.sources:
            if all(old is not kept for kept in sources):
                self._in_background(old.discovery.stop())
        self._budgets.attach(sources)
        self.sources = sources
        if self._started:
            self.start()
        kept = {(s.name, t.sync_id) for s in sources for t in s.targets}
        self._failing = {key: why for key, why in self._failing.items() if key in kept}
        self.metrics.track_sources([s.name for s in sources])

    def _in_background(self, work: Coroutine[Any, Any, None] | asyncio.Task[None]) -> None:
        task = work if isinstance(work, asyncio.Task) else asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _http(self) -> Client:
        """One client for the exporter's life; the sources' own limits bound its connections."""
        if self._client is None:
            self._client = make_client(self._tls)
        return self._client

    async def close(self) -> None:
        """Stop listing and close the HTTP client's connections."""
        await asyncio.gather(*(source.discovery.stop() for source in self.sources))
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def shutdown(self) -> None:
        """Cancel the collections in flight and close the client: a hung provider must not
        hold up the exit."""
        probes = [r.task for running in self._probes.values() for r in running]
        tasks = [r.task for r in self._running] + probes + list(self._background)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.close()

    async def scrape(self, timeout: float, openmetrics: bool = False) -> Snapshot:
        """Share a running collection that suits this scrape's deadline, or start one
        (compressed ahead in OpenMetrics if `openmetrics`).

        A collection suits if it ends within this scrape's deadline and was given nearly
        as much time: Prometheus replicas with the same timeout share one collection. At
        most MAX_COLLECTIONS run at once: beyond that a scrape shares the latest one, so a
        client sending ever new timeouts cannot multiply the load on the providers.
        """
        deadline = time.monotonic() + timeout
        self._running = [r for r in self._running if not r.task.done()]
        shared = joinable(self._running, deadline, timeout)
        if shared is None:
            task = asyncio.get_running_loop().create_task(self._collect(timeout, openmetrics))
            task.add_done_callback(_release)
            shared = Running(task, deadline, timeout)
            self._running.append(shared)
        return await asyncio.shield(shared.task)

    async def _collect(self, timeout: float, openmetrics: bool = False) -> Snapshot:
        started = time.perf_counter()
        wall = time.time()
        # Each source's target list as of now: discovery replaces a source's list (never
        # mutates it), so this collection's indexes stay valid.
        plan = [(source, source.targets) for source in self.sources if not source.config.probe_only]
        targets = [(source, target) for source, listed in plan for target in listed]
        # Keep back what the end of the collection costs (marking unread syncs, rendering,
        # compressing), measured per sync on earlier collections (and on a sample before the
        # first), so the answer is on time.
        adapters = [source.adapter for source in self.sources]
        self._finish.calibrate([t for _, t in targets], adapters, self.config.collector.families)
        work, reads_for = self._begin(Renderer, self.sources, len(targets), wall, timeout)
        renderer = work.renderer
        reads = []
        offset = 0
        for source, listed in plan:
            reads.append(self._read_source(source, listed, offset, work))
            offset += len(listed)
        try:
            async with asyncio.timeout(reads_for):
                await asyncio.gather(*reads)
        except TimeoutError:
            pass
        # From the reads' deadline when they were cut: cancelling thousands of them is part of
        # what the end of the collection costs.
        finishing = min(time.monotonic(), work.deadline)
        self._end_reads(work, targets, "collection deadline")
        duration = time.perf_counter() - started
        self.metrics.collection_duration.set(duration)
        pieces = renderer.pieces()
        self.metrics.render_duration.set(renderer.seconds)
        selection = self.config.collector.families
        labelled = [(t.source, t.sync_id, t.labels) for _, t in targets]
        pieces.append(deflated(self.runs.render(labelled, selection)))
        pieces.append(deflated(self.metrics.render()))
        render_self, render_runs = self.metrics.render, self.runs.render

        def in_openmetrics() -> list[Deflated]:
            runs = deflated(render_runs(labelled, selection, openmetrics=True))
            own = deflated(render_self(openmetrics=True))
            return [*renderer.pieces(openmetrics=True), runs, own]

        snapshot = Snapshot(pieces, time.time(), duration, in_openmetrics)
        # Compressed ahead in the format of the scrape that started the collection.
        if openmetrics:
            snapshot.openmetrics(gzipped=True)
        else:
            snapshot.gzipped()
        self._forget_gone()
        self._finish.measured(time.monotonic() - finishing, len(targets))
        self.last_collection = wall
        return snapshot

    def _begin(
        self,
        renderer: Callable[[StalePolicy, list[Any], Any], Renderer],
        sources: list[Source],
        count: int,
        wall: float,
        timeout: float,
    ) -> tuple[_Work, float]:
        """A scrape's or a probe's shared state for `count` syncs, and how long its reads may
        take: the timeout less what finishing that many syncs is expected to cost."""
        policy = self.config.collector
        stale = StalePolicy(policy.stale_after, policy.stale_intervals, policy.stale_slack)
        adapters = [source.adapter for source in sources]
        reads_for = self._finish.reads_for(count, timeout)
        deadline = time.monotonic() + reads_for
        work = _Work(
            renderer(stale, adapters, policy.families),
            FailureReport(),
            stale,
            wall,
            deadline,
            [False] * count,
            [False] * count,
        )
        return work, reads_for

    def _end_reads(
        self, work: _Work, targets: Iterable[tuple[Source, Target]], detail: str
    ) -> None:
        """What a scrape and a probe alike do when their reads end: each sync not read is
        `sync_up 0` with reason timeout (counted as one if its read had begun, else as not
        started), what the budget put off is read in the background, the failures logged."""
        for i, (source, target) in enumerate(targets):
            if work.done[i]:
                continue
            if work.begun[i]:
                self.metrics.errors.labels(source.name, "timeout").inc()
            else:
                self.metrics.not_started.labels(source.name).inc()
            self._failed(work, source, target, "timeout", detail)
        for source, later in work.deferred.values():
            if source.policy.budget is not None:
                self._in_background(self._catch_up.start(source, later))
        work.report.log()

    def source_named(self, name: str) -> Source | None:
        """The configured source called `name`, if any."""
        return next((source for source in self.sources if source.name == name), None)

    async def probe(self, name: str, sync_id: str | None, timeout: float) -> Snapshot:
        """Collect one source (or one sync of it) for /probe, as blackbox_exporter probes a target.

        Probes of the same source and sync share a running one as scrapes share collections
        (and at most MAX_COLLECTIONS run per source and sync); they never share a full
        collection, whose deadline belongs to another scrape job.
        """
        key = (name, sync_id)
        deadline = time.monotonic() + timeout
        alive = ((k, [r for r in v if not r.task.done()]) for k, v in self._probes.items())
        self._probes = {k: v for k, v in alive if v}
        running = self._probes.setdefault(key, [])
        shared = joinable(running, deadline, timeout)
        if shared is None:
            task = asyncio.get_running_loop().create_task(self._probe(name, sync_id, timeout))
            shared = Running(task, deadline, timeout)
            running.append(shared)
        return await asyncio.shield(shared.task)

    async def _probe(self, name: str, sync_id: str | None, timeout: float) -> Snapshot:
        started = time.perf_counter()
        wall = time.time()
        source = self.source_named(name)
        listed = (
            [] if source is None else [t for t in source.targets if sync_id in (None, t.sync_id)]
        )
        sources = [] if source is None else [source]
        work, reads_for = self._begin(ProbeRenderer, sources, len(listed), wall, timeout)
        renderer = work.renderer
        assert isinstance(renderer, ProbeRenderer)
        if source is not None and listed:
            try:
                async with asyncio.timeout(reads_for):
                    await self._read_source(source, listed, 0, work)
            except TimeoutError:
                pass
        self._end_reads(work, [(s, target) for s in sources for target in listed], "probe deadline")
        pieces = renderer.pieces()
        read = [renderer.outcomes.get(target.sync_id, False) for target in listed]
        success = bool(read) and all(read)
        duration = time.perf_counter() - started
        pieces.append(deflated(probe_families(success, duration)))

        def openmetrics() -> list[Deflated]:
            own = deflated(probe_families(success, duration, True))
            return [*renderer.pieces(openmetrics=True), own]

        return Snapshot(pieces, time.time(), duration, openmetrics)

    async def _read_source(
        self, source: Source, listed: list[Target], offset: int, work: _Work
    ) -> None:
        """Serve fresh readings again, read what the budget allows (oldest first), defer rest."""
        self._catch_up.stop(source.name)
        adapter = source.adapter
        policy = source.policy
        due: list[tuple[int, Target]] = []
        reused = 0
        for i, target in enumerate(listed, start=offset):
            reading = policy.reusable(target, work.wall, work.stale) if policy.fresh_for else None
            if reading is not None:
                reused += 1
                self._serve(work, i, target, reading)
            else:
                due.append((i, target))
        if reused:  # counted once per source, not a labels() lookup per sync
            self.metrics.reused.labels(source.name).inc(reused)
        if not due:
            return
        http = source.upstream.within(work.deadline)
        budget = policy.budget
        bulk = adapter.reads_in_bulk()
        if budget is not None:
            due.sort(key=lambda item: read_first(item[1]))
            affordable = budget.affordable(time.monotonic(), work.deadline)
            if bulk:
                affordable = len(due) if affordable >= 1 else 0
            if len(due) > affordable:
                self.metrics.deferred.labels(source.name).inc(len(due) - affordable)
            for i, target in due[affordable:]:
                self._defer(work, source, i, target)
            due = due[:affordable]
        if bulk and due:
            due = await self._read_in_bulk(source, due, http, work)
        pending = iter(due)

        async def read(target: Target) -> SyncStatus:
            return normalise(await adapter.read(target, http))

        name = source.name

        async def worker() -> None:
            for i, target in pending:
                work.begun[i] = True
                share = policy.shares_within(target)
                try:
                    if share > 0:
                        status, shared_at = await self._reads.read(
                            (name, target.sync_id),
                            work.wall,
                            share,
                            work.deadline,
                            partial(read, target),
                        )
                    else:  # nothing to share: no key, partial or two more coroutines per read
                        status, shared_at = normalise(await adapter.read(target, http)), None
                except SharedFailure as failure:  # counted by the collection that read
                    self._failure(work, source, i, target, failure.error, counted=True)
                except Exception as exc:  # an answer no adapter foresaw costs one sync
                    self._failure(work, source, i, target, exc)
                else:
                    if shared_at is None:
                        self._succeeded(work, source, i, target, status)
                    else:
                        self.metrics.reused.labels(source.name).inc()
                        self._serve(work, i, target, Reading(status, shared_at))

        width = min(source.upstream.concurrency, len(due))
        await asyncio.gather(*(worker() for _ in range(width)))

    async def _read_in_bulk(
        self, source: Source, due: list[tuple[int, Target]], http: SourceHttp, work: _Work
    ) -> list[tuple[int, Target]]:
        """One listing answers every sync it carries; the others are left to read one by one."""
        for i, _ in due:
            work.begun[i] = True
        try:
            statuses = await source.adapter.read_many([target for _, target in due], http)
        except Exception as exc:
            if not source.adapter.reads_alone_after(exc):
                for i, target in due:
                    self._failure(work, source, i, target, exc)
                return []
            self.metrics.errors.labels(source.name, classify(exc)[0]).inc()
            statuses = {}
        rest = []
        for i, target in due:
            status = statuses.get(target.sync_id)
            if status is None:
                work.begun[i] = False
                rest.append((i, target))
                continue
            try:
                self._succeeded(work, source, i, target, normalise(status))
            except Exception as exc:
                self._failure(work, source, i, target, exc)
        return rest

    def _succeeded(
        self, work: _Work, source: Source, i: int, target: Target, status: SyncStatus
    ) -> None:
        name = source.name
        if self._failing.pop((name, target.sync_id), None) is not None:
            work.report.recovered(name, target.sync_id)
        events = source.config.webhook is not None
        self.runs.get(name, target.sync_id).reading(status, work.wall, events=events)
        target.reading = Reading(status, work.wall)
        target.failure = None
        self._serve(work, i, target, target.reading)

    def _failure(
        self,
        work: _Work,
        source: Source,
        i: int,
        target: Target,
        exc: Exception,
        *,
        counted: bool = False,
    ) -> None:
        """Count and note one failed read; every failure is data, never a crash.

        `counted`: the failure of another collection's read, already counted there.
        """
        reason, detail, kind = classify(exc)
        if not counted:
            if kind == "errors":
                self.metrics.errors.labels(source.name, reason).inc()
            else:
                getattr(self.metrics, kind).labels(source.name).inc()
        if kind == "deferred":
            self._defer(work, source, i, target)
        else:
            self._failed(work, source, target, reason, detail, i)

    def _failed(
        self,
        work: _Work,
        source: Source,
        target: Target,
        reason: str,
        detail: str,
        i: int | None = None,
    ) -> None:
        """A sync not read in this collection: sync_up 0, its reason remembered and reported."""
        self._note(work.report, source, target, reason, detail)
        target.failure = Failure(reason, detail, work.wall)
        work.renderer.add(target, None, work.wall)
        if i is not None:
            work.done[i] = True

    def _defer(self, work: _Work, source: Source, i: int, target: Target) -> None:
        """A read the budget put off: its last reading, unless that is older than its budget."""
        work.deferred.setdefault(source.name, (source, []))[1].append(target)
        reading = source.policy.reusable(target, work.wall, work.stale, despite_event=True)
        if reading is not None:
            self._serve(work, i, target, reading)
            return
        self._failed(
            work,
            source,
            target,
            "deferred",
            "max_requests_per_second reached; no recent reading",
            i,
        )

    @staticmethod
    def _serve(work: _Work, i: int, target: Target, reading: Reading) -> None:
        work.renderer.add(target, reading.status, work.wall, reading.at)
        work.done[i] = True

    def _note(
        self, report: FailureReport, source: Source, target: Target, reason: str, detail: str
    ) -> None:
        """Remember why a sync fails; report it when it starts failing or changes reason."""
        key = (source.name, target.sync_id)
        if self._failing.get(key) != reason:
            self._failing[key] = reason
            report.failed(source.name, target.sync_id, reason, detail)

    def _forget_gone(self) -> None:
        """Drop failure notes and run counters of syncs no longer read (listings come and go)."""
        if len(self._failing) > sum(len(source.targets) for source in self.sources):
            current = {(s.name, t.sync_id) for s in self.sources for t in s.targets}
            self._failing = {k: v for k, v in self._failing.items() if k in current}
        if len(self.runs) > sum(len(source.targets) for source in self.sources):
            self.runs.keep((s.name, t.sync_id) for s in self.sources for t in s.targets)
