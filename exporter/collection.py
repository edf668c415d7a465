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
import zlib
from collections.abc import Coroutine
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from exporter.client import make_client, tls_context
from exporter.config import Config
from exporter.failures import FailureReport
from exporter.http1 import Client
from exporter.inflight import Reads, SharedFailure
from exporter.model import SyncStatus, normalise
from exporter.probing import ProbeRenderer, probe_families
from exporter.providers.base import BadResponse, UpstreamError
from exporter.readpolicy import read_first
from exporter.render import Renderer, StalePolicy
from exporter.runs import RunBook
from exporter.selfmetrics import SelfMetrics
from exporter.snapshot import Snapshot
from exporter.sourcemetrics import SourcesCollector
from exporter.sources import Budgets, Source, build_source, carry_over
from exporter.targets import Failure, Reading, Target
from exporter.upstream import SourceHttp

log = logging.getLogger("exporter.collection")


@dataclass(slots=True)
class _Running:
    """A collection in flight: scrapes whose deadline and budget fit may share it."""

    task: asyncio.Task[Snapshot]
    deadline: float
    budget: float


# A scrape shares a running collection only if that collection was given at least this
# share of the scrape's own budget: a client asking for a 1 s timeout must not cut short
# the answer to Prometheus's 10 s scrape.
SHARE_MIN_BUDGET = 0.9
# Syncs rendered to measure the cost of finishing a collection before the first one.
CALIBRATION_SAMPLE = 256
# The whole end of a collection of 40,000 unread syncs measured 4 to 5 times what rendering
# and compressing them alone costs (cancelling the reads, marking each one failed).
FINISH_MARKUP = 5.0
# How long a background catch-up read may wait for the request budget.
CATCH_UP_WAIT = 60.0
# Collections in flight at once; a scrape beyond them shares the latest.
MAX_COLLECTIONS = 4
# How fast the measured cost of finishing a collection forgets a slow one, per collection.
FINISH_DECAY = 0.9
# The most of a scrape's deadline kept back for finishing: on a busy host, finishing tens of
# thousands of syncs can cost more than half of it, and an answer on time beats more reads.
MAX_RESERVE_SHARE = 0.75


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
    deferred: dict[str, list[Target]] = field(default_factory=dict)


class Collector:
    """Owns the sources, the HTTP client and the collections in flight."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.metrics = SelfMetrics(SourcesCollector(lambda: self.sources))
        self._tls = tls_context()
        self._client: Client | None = None
        self.sources: list[Source] = self.prepare(config)
        self.metrics.track_sources([s.name for s in self.sources])
        self._running: list[_Running] = []
        self._background: set[asyncio.Task[None]] = set()
        self._failing: dict[tuple[str, str], str] = {}
        self._reads = Reads()
        self.runs = RunBook()
        self._budgets = Budgets()
        self._budgets.attach(self.sources)
        self._started = False
        self._finish_per_sync = 0.0
        self._catching_up: dict[str, asyncio.Task[None]] = {}
        self._probes: dict[tuple[str, str | None], list[_Running]] = {}
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

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
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
        for running in self._running:
            if running.deadline <= deadline and running.budget >= SHARE_MIN_BUDGET * timeout:
                return await asyncio.shield(running.task)
        if len(self._running) >= MAX_COLLECTIONS:
            return await asyncio.shield(self._running[-1].task)
        task = asyncio.get_running_loop().create_task(self._collect(timeout, openmetrics))
        self._running.append(_Running(task, deadline, timeout))
        return await asyncio.shield(task)

    async def _collect(self, timeout: float, openmetrics: bool = False) -> Snapshot:
        started = time.perf_counter()
        wall = time.time()
        # Each source's target list as of now: discovery replaces a source's list (never
        # mutates it), so this collection's indexes stay valid.
        plan = [(source, source.targets) for source in self.sources if not source.config.probe_only]
        targets = [(source, target) for source, listed in plan for target in listed]
        done = [False] * len(targets)
        begun = [False] * len(targets)
        policy = self.config.collector
        stale = StalePolicy(policy.stale_after, policy.stale_intervals, policy.stale_slack)
        renderer = Renderer(stale, [source.adapter for source in self.sources], policy.families)
        report = FailureReport()
        # Keep back what the end of the collection costs (marking unread syncs, rendering,
        # compressing), measured per sync on earlier collections (and on a sample before the
        # first), so the answer is on time.
        if not self._finish_per_sync and targets:
            self._finish_per_sync = self._calibrate([target for _, target in targets])
        reserve = min(self._finish_per_sync * len(targets), timeout * MAX_RESERVE_SHARE)
        reads_for = max(timeout - reserve, 0.001)
        deadline = time.monotonic() + reads_for
        work = _Work(renderer, report, stale, wall, deadline, done, begun)
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
        finishing = min(time.monotonic(), deadline)
        for i, (source, target) in enumerate(targets):
            if done[i]:
                continue
            if begun[i]:
                self.metrics.errors.labels(source.name, "timeout").inc()
            else:
                self.metrics.not_started.labels(source.name).inc()
            self._failed(work, source, target, "timeout", "collection deadline")
        report.log()
        duration = time.perf_counter() - started
        self.metrics.collection_duration.set(duration)
        chunks = renderer.chunks()
        self.metrics.render_duration.set(renderer.seconds)
        selection = self.config.collector.families
        labelled = [(t.source, t.sync_id, t.labels) for _, t in targets]
        chunks.append(self.runs.render(labelled, selection))
        chunks.append(self.metrics.render())
        render_self, render_runs = self.metrics.render, self.runs.render

        def in_openmetrics() -> list[bytes | bytearray]:
            runs = render_runs(labelled, selection, openmetrics=True)
            return [*renderer.chunks(openmetrics=True), runs, render_self(openmetrics=True)]

        snapshot = Snapshot(chunks, time.time(), duration, in_openmetrics)
        # Compressed ahead in the format of the scrape that started the collection.
        if openmetrics:
            snapshot.openmetrics(gzipped=True)
        else:
            snapshot.gzipped()
        for source, _ in plan:
            later = work.deferred.get(source.name)
            if later and source.policy.budget is not None:
                self._catch_up_later(source, later)
        self._forget_gone()
        spent = (time.monotonic() - finishing) / max(len(targets), 1)
        self._finish_per_sync = max(spent, self._finish_per_sync * FINISH_DECAY)
        self.last_collection = wall
        return snapshot

    def _calibrate(self, targets: list[Target]) -> float:
        """Seconds per sync of finishing a collection whose syncs all went unread, measured on a
        sample before the first collection: rendering and compressing it, times FINISH_MARKUP
        for cancelling the unread reads and marking them failed besides."""
        sample = targets[:CALIBRATION_SAMPLE]
        started = time.perf_counter()
        adapters = [s.adapter for s in self.sources]
        families = self.config.collector.families
        renderer = Renderer(StalePolicy(1.0, 1.0, 0.0), adapters, families)
        for target in sample:
            renderer.add(target, None, 0.0)
        compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
        for chunk in renderer.chunks():
            compressor.compress(chunk)
        compressor.flush()
        return FINISH_MARKUP * (time.perf_counter() - started) / len(sample)

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
        running = [r for r in self._probes.get(key, []) if not r.task.done()]
        self._probes = {
            k: v for k, v in self._probes.items() if k != key and any(not r.task.done() for r in v)
        }
        for probe in running:
            if probe.deadline <= deadline and probe.budget >= SHARE_MIN_BUDGET * timeout:
                self._probes[key] = running
                return await asyncio.shield(probe.task)
        if len(running) >= MAX_COLLECTIONS:
            self._probes[key] = running
            return await asyncio.shield(running[-1].task)
        task = asyncio.get_running_loop().create_task(self._probe(name, sync_id, timeout))
        self._probes[key] = [*running, _Running(task, deadline, timeout)]
        return await asyncio.shield(task)

    async def _probe(self, name: str, sync_id: str | None, timeout: float) -> Snapshot:
        started = time.perf_counter()
        wall = time.time()
        source = self.source_named(name)
        listed = (
            [] if source is None else [t for t in source.targets if sync_id in (None, t.sync_id)]
        )
        policy = self.config.collector
        stale = StalePolicy(policy.stale_after, policy.stale_intervals, policy.stale_slack)
        renderer = ProbeRenderer(stale, [] if source is None else [source.adapter], policy.families)
        reserve = min(self._finish_per_sync * len(listed), timeout * MAX_RESERVE_SHARE)
        reads_for = max(timeout - reserve, 0.001)
        done = [False] * len(listed)
        begun = [False] * len(listed)
        deadline = time.monotonic() + reads_for
        work = _Work(renderer, FailureReport(), stale, wall, deadline, done, begun)
        if source is not None and listed:
            try:
                async with asyncio.timeout(reads_for):
                    await self._read_source(source, listed, 0, work)
            except TimeoutError:
                pass
            for i, target in enumerate(listed):
                if done[i]:
                    continue
                if begun[i]:
                    self.metrics.errors.labels(source.name, "timeout").inc()
                else:
                    self.metrics.not_started.labels(source.name).inc()
                self._failed(work, source, target, "timeout", "probe deadline")
            later = work.deferred.get(source.name)
            if later and source.policy.budget is not None:
                self._catch_up_later(source, later)
        work.report.log()
        chunks = renderer.chunks()
        read = [renderer.outcomes.get(target.sync_id, False) for target in listed]
        success = bool(read) and all(read)
        duration = time.perf_counter() - started
        chunks.append(probe_families(success, duration))

        def openmetrics() -> list[bytes | bytearray]:
            return [*renderer.chunks(openmetrics=True), probe_families(success, duration, True)]

        return Snapshot(chunks, time.time(), duration, openmetrics)

    async def _read_source(
        self, source: Source, listed: list[Target], offset: int, work: _Work
    ) -> None:
        """Serve fresh readings again, read what the budget allows (oldest first), defer rest."""
        self._stop_catching_up(source.name)
        adapter = source.adapter
        policy = source.policy
        due: list[tuple[int, Target]] = []
        for i, target in enumerate(listed, start=offset):
            reading = policy.reusable(target, work.wall, work.stale) if policy.fresh_for else None
            if reading is not None:
                self.metrics.reused.labels(source.name).inc()
                self._serve(work, i, target, reading)
            else:
                due.append((i, target))
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
            for i, target in due[affordable:]:
                self.metrics.deferred.labels(source.name).inc()
                self._defer(work, source, i, target)
            due = due[:affordable]
        if bulk and due:
            due = await self._read_in_bulk(source, due, http, work)
        pending = iter(due)

        async def read(target: Target) -> SyncStatus:
            return normalise(await adapter.read(target, http))

        async def worker() -> None:
            for i, target in pending:
                work.begun[i] = True
                key = (source.name, target.sync_id)
                share = policy.shares_within(target)
                try:
                    status, shared_at = await self._reads.read(
                        key, work.wall, share, work.deadline, partial(read, target)
                    )
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
            reason = exc.reason if isinstance(exc, UpstreamError) else "bad_response"
            self.metrics.errors.labels(source.name, reason).inc()
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
        if self._failing.pop((source.name, target.sync_id), None) is not None:
            work.report.recovered(source.name, target.sync_id)
        self.runs.get(source.name, target.sync_id).reading(status, work.wall)
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
        counter = None
        if isinstance(exc, UpstreamError):
            reason, detail = exc.reason, exc.detail
            if exc.sent:
                counter = self.metrics.errors.labels(source.name, reason)
            elif reason == "rate_limited":
                counter = self.metrics.skipped.labels(source.name)
            elif reason == "budget":
                if not counted:
                    self.metrics.deferred.labels(source.name).inc()
                self._defer(work, source, i, target)
                return
            else:
                counter = self.metrics.not_started.labels(source.name)
        elif isinstance(exc, BadResponse):
            reason, detail = "bad_response", str(exc)
            counter = self.metrics.errors.labels(source.name, reason)
        else:
            reason, detail = "bad_response", f"unreadable status ({type(exc).__name__})"
            counter = self.metrics.errors.labels(source.name, reason)
        if not counted:
            counter.inc()
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
        work.deferred.setdefault(source.name, []).append(target)
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

    def _catch_up_later(self, source: Source, targets: list[Target]) -> None:
        """Read what the budget put off in the background, as the budget allows, until done
        or until the source's next collection takes over: a budget then reads continuously
        between scrapes, not only within their deadlines."""
        self._stop_catching_up(source.name)
        task = asyncio.get_running_loop().create_task(self._catch_up(source, targets))
        self._catching_up[source.name] = task
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _stop_catching_up(self, name: str) -> None:
        task = self._catching_up.pop(name, None)
        if task is not None:
            task.cancel()

    async def _catch_up(self, source: Source, targets: list[Target]) -> None:
        pending = iter(targets)
        adapter = source.adapter
        upstream = source.upstream

        async def worker() -> None:
            for target in pending:
                http = upstream.within(time.monotonic() + CATCH_UP_WAIT)
                try:
                    status = normalise(await adapter.read(target, http))
                except UpstreamError as exc:
                    if exc.sent:
                        self.metrics.errors.labels(source.name, exc.reason).inc()
                        target.failure = Failure(exc.reason, exc.detail, time.time())
                    elif exc.reason == "rate_limited":
                        return
                except Exception as exc:
                    self.metrics.errors.labels(source.name, "bad_response").inc()
                    target.failure = Failure("bad_response", type(exc).__name__, time.time())
                else:
                    at = time.time()
                    self.runs.get(source.name, target.sync_id).reading(status, at)
                    target.reading = Reading(status, at)
                    target.failure = None

        budget = source.policy.budget
        width = min(upstream.concurrency, 1 if budget is None else budget.capacity)
        await asyncio.gather(*(worker() for _ in range(width)))

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
