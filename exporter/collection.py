"""One scrape's work: read every sync concurrently within a deadline, rendering as they arrive.

Scrapes that arrive while a collection runs share it, so two Prometheus replicas do not
double the load on a provider; a source that answered 429 is not called again before its
Retry-After expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from dataclasses import dataclass, field

import aiohttp

from exporter.client import (
    Outcome,
    env_proxy,
    list_syncs,
    make_client,
    read_sync,
    tls_context,
)
from exporter.config import CollectorConfig, Config
from exporter.render import Renderer, StalePolicy
from exporter.selfmetrics import SelfMetrics
from exporter.targets import Source, Target, build_sources

log = logging.getLogger("exporter.collection")


@dataclass(slots=True)
class Snapshot:
    """A finished collection and its exposition, shared by every scrape that waited for it.

    The exposition is kept in per-family pieces: Prometheus asks for gzip, which is
    compressed from the pieces, so the whole uncompressed body is only joined for clients
    that want it (curl, --once).
    """

    chunks: list[bytes | bytearray]
    finished: float
    duration: float
    _body: bytes | None = field(default=None, repr=False)
    _gzipped: bytes | None = field(default=None, repr=False)

    @property
    def body(self) -> bytes:
        """The uncompressed exposition, joined once for all scrapes that ask for it."""
        if self._body is None:
            self._body = b"".join(self.chunks)
        return self._body

    def gzipped(self) -> bytes:
        """The body gzip-compressed, computed once for all scrapes that ask for it."""
        if self._gzipped is None:
            compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
            self._gzipped = b"".join([*map(compressor.compress, self.chunks), compressor.flush()])
        return self._gzipped


def scrape_timeout(header: str | None, settings: CollectorConfig) -> float:
    """The collection deadline: Prometheus's scrape timeout minus an offset, capped.

    Without the header (curl, --once) the configured default applies.
    """
    try:
        offered = float(header) if header else None
    except ValueError:
        offered = None
    if offered is None or not offered > 0:
        return min(settings.default_timeout, settings.max_timeout)
    if offered > settings.timeout_offset:
        offered -= settings.timeout_offset
    return min(offered, settings.max_timeout)


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


class Collector:
    """Owns the HTTP client, the sources and the collections in flight."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.sources: list[Source] = build_sources(config)
        self.metrics = SelfMetrics(lambda: self.sources)
        self.metrics.track_sources([s.name for s in self.sources])
        self._tls = tls_context()
        self._client: aiohttp.ClientSession | None = None
        self._running: list[_Running] = []
        self._limits = self._source_limits()
        self._background: set[asyncio.Task[None]] = set()
        self._failing: dict[tuple[str, str], str] = {}

    def _source_limits(self) -> dict[str, asyncio.Semaphore]:
        """Per-source request limits shared by every collection in flight."""
        return {s.name: asyncio.Semaphore(s.concurrency) for s in self.sources}

    def apply(self, config: Config) -> None:
        """Switch to a new config; a source keeps its 429 back-off across the reload.

        Collections already running finish with the old config and their HTTP client, which
        is closed afterwards; scrapes from now on start new collections.
        """
        sources = build_sources(config)
        blocked = {s.name: s.blocked_until for s in self.sources}
        for source in sources:
            source.blocked_until = blocked.get(source.name, 0.0)
        self.config = config
        self.sources = sources
        self._limits = self._source_limits()
        kept = {(s.name, t.sync_id) for s in sources for t in s.targets}
        self._failing = {key: why for key, why in self._failing.items() if key in kept}
        self.metrics.track_sources([s.name for s in sources])
        client, self._client = self._client, None
        running, self._running = [r.task for r in self._running], []
        task = asyncio.get_running_loop().create_task(self._retire(client, running))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _retire(
        self, client: aiohttp.ClientSession | None, running: list[asyncio.Task[Snapshot]]
    ) -> None:
        """After the old config's collections end: close their client, drop their series."""
        if running:
            await asyncio.wait(running)
        if client is not None:
            await client.close()
        # A late request of a removed source may have re-created its series.
        self.metrics.track_sources([s.name for s in self.sources])

    def _http(self) -> aiohttp.ClientSession:
        if self._client is None:
            size = sum(s.concurrency for s in self.sources) or 1
            self._client = make_client(size, self._tls)
        return self._client

    async def close(self) -> None:
        """Close the HTTP client's connections."""
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def shutdown(self) -> None:
        """Cancel the collections in flight and close the client: a hung provider must not
        hold up the exit."""
        tasks = [r.task for r in self._running] + list(self._background)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.close()

    async def scrape(self, timeout: float) -> Snapshot:
        """Share a running collection that suits this scrape's deadline, or start one.

        A collection suits if it ends within this scrape's deadline and was given nearly
        as much time: Prometheus replicas with the same timeout share one collection.
        """
        deadline = time.monotonic() + timeout
        self._running = [r for r in self._running if not r.task.done()]
        for running in self._running:
            if running.deadline <= deadline and running.budget >= SHARE_MIN_BUDGET * timeout:
                return await asyncio.shield(running.task)
        task = asyncio.get_running_loop().create_task(self._collect(timeout))
        self._running.append(_Running(task, deadline, timeout))
        return await asyncio.shield(task)

    async def _collect(self, timeout: float) -> Snapshot:
        started = time.perf_counter()
        due = [s for s in self.sources if s.discover_every and s.next_discovery <= time.monotonic()]
        client = self._http()
        if due:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout / 2):
                    await asyncio.gather(*(self._discover(client, s, timeout / 2) for s in due))
            timeout = max(timeout - (time.perf_counter() - started), 0.001)
        # Each source's target list as of now: discovery in a concurrent collection replaces
        # source.targets (never mutates it), so this collection's indexes stay valid.
        plan = [(source, source.targets) for source in self.sources]
        targets = [(source, target) for source, listed in plan for target in listed]
        done = [False] * len(targets)
        policy = self.config.collector
        stale = StalePolicy(policy.stale_after, policy.stale_intervals, policy.stale_slack)
        renderer = Renderer(stale)
        deadline = time.monotonic() + timeout
        reads = []
        offset = 0
        for source, listed in plan:
            reads.append(
                self._read_source(client, source, listed, offset, renderer, done, deadline)
            )
            offset += len(listed)
        try:
            async with asyncio.timeout(timeout):
                await asyncio.gather(*reads)
        except TimeoutError:
            for i, (source, target) in enumerate(targets):
                if not done[i]:
                    self._record_failure(source, target, "timeout", "collection deadline")
                    renderer.add(target, None, 0.0)
        duration = time.perf_counter() - started
        self.metrics.collection_duration.set(duration)
        chunks = renderer.chunks()
        self.metrics.render_duration.set(renderer.seconds)
        chunks.append(self.metrics.render())
        return Snapshot(chunks=chunks, finished=time.time(), duration=duration)

    async def _read_source(
        self,
        client: aiohttp.ClientSession,
        source: Source,
        listed: list[Target],
        offset: int,
        renderer: Renderer,
        done: list[bool],
        deadline: float,
    ) -> None:
        pending = iter(enumerate(listed, start=offset))
        requests = self.metrics.requests
        durations = self.metrics.request_duration.labels(source.name)
        proxy = env_proxy(source.base_url)
        limit = self._limits.get(source.name) or asyncio.Semaphore(source.concurrency)

        async def worker() -> None:
            for i, target in pending:
                async with limit:
                    now = time.monotonic()
                    if source.blocked_until > now:
                        outcome = None
                    else:
                        timeout = min(source.request_timeout, max(deadline - now, 0.001))
                        outcome = await read_sync(
                            client, source.provider, target.url, source.headers, timeout, proxy
                        )
                if outcome is None:
                    self.metrics.skipped.labels(source.name).inc()
                    self._note(source, target, "rate_limited", "source is backing off")
                    renderer.add(target, None, 0.0)
                    done[i] = True
                    continue
                requests.labels(source.name, outcome.code).inc()
                durations.observe(outcome.duration)
                if outcome.status is None:
                    self._handle_failure(source, target, outcome)
                else:
                    self._recovered(source, target)
                renderer.add(target, outcome.status, time.time())
                done[i] = True

        width = min(source.concurrency, len(listed))
        await asyncio.gather(*(worker() for _ in range(width)))

    async def _discover(self, client: aiohttp.ClientSession, source: Source, budget: float) -> None:
        """List the source's syncs and read those, plus the configured ones, from now on.

        A failed listing keeps the previous targets and is tried again in a minute.
        """
        assert source.discover_every is not None
        now = time.monotonic()
        if source.blocked_until > now:
            return
        ids, outcome = await list_syncs(
            client,
            source.provider,
            source.base_url,
            source.headers,
            min(source.request_timeout, budget),
            env_proxy(source.base_url),
        )
        self.metrics.requests.labels(source.name, outcome.code).inc()
        if ids is None:
            source.next_discovery = now + min(60.0, source.discover_every)
            if outcome.error == "rate_limited":
                self._back_off(source, outcome)
            self.metrics.errors.labels(source.name, outcome.error).inc()
            log.warning(
                "cannot list syncs, keeping the ones known",
                extra={
                    "fields": {
                        "source": source.name,
                        "reason": outcome.error,
                        "detail": outcome.detail,
                    }
                },
            )
            return
        known = {target.sync_id: target for target in source.targets}
        targets = list(source.configured)
        configured = {target.sync_id for target in targets}
        for sync_id in ids:
            if sync_id in configured:
                continue
            target = known.get(sync_id) or source.target_for(sync_id)
            if target is not None:
                targets.append(target)
        if len(targets) != len(source.targets):
            log.info(
                "syncs discovered",
                extra={"fields": {"source": source.name, "syncs": len(targets)}},
            )
        source.targets = targets
        source.next_discovery = now + source.discover_every

    def _back_off(self, source: Source, outcome: Outcome) -> float:
        """Stop calling a source that answered 429 until its Retry-After (capped) expires."""
        settings = self.config.collector
        wait = outcome.retry_after
        if wait is None:
            wait = settings.default_retry_after
        wait = min(wait, settings.max_retry_after)
        source.blocked_until = max(source.blocked_until, time.monotonic() + wait)
        return wait

    def _handle_failure(self, source: Source, target: Target, outcome: Outcome) -> None:
        if outcome.error == "rate_limited":
            wait = self._back_off(source, outcome)
            outcome.detail = f"HTTP 429, backing off {wait:.3g}s"
        self._record_failure(source, target, outcome.error, outcome.detail)

    def _record_failure(self, source: Source, target: Target, reason: str, detail: str) -> None:
        self.metrics.errors.labels(source.name, reason).inc()
        self._note(source, target, reason, detail)

    def _note(self, source: Source, target: Target, reason: str, detail: str) -> None:
        """Log a sync's failure once when it starts or changes, not on every scrape."""
        key = (source.name, target.sync_id)
        if self._failing.get(key) != reason:
            self._failing[key] = reason
            log.warning(
                "cannot read sync status",
                extra={
                    "fields": {
                        "source": source.name,
                        "sync_id": target.sync_id,
                        "reason": reason,
                        "detail": detail,
                    }
                },
            )

    def _recovered(self, source: Source, target: Target) -> None:
        if self._failing.pop((source.name, target.sync_id), None) is not None:
            log.info(
                "sync status readable again",
                extra={"fields": {"source": source.name, "sync_id": target.sync_id}},
            )
