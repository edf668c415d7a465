"""One source's targets: the syncs its config names, plus what its provider lists.

Listing runs in the background on the source's `discover_interval` (and at start), never in a
scrape's deadline. A listing that fails, for the whole source or for one user, keeps the last
good list of that scope; what a listing returns is checked before it becomes a target: ids
that cannot be requested or exported safely are dropped, and at most `max_syncs` are kept, in
a stable order, so a provider cannot grow the exporter without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import time
from typing import Any

from exporter.exposition.selfmetrics import SelfMetrics
from exporter.exposition.targets import Found, Shard, Target, TargetMaker
from exporter.providers.base import Adapter, UpstreamError
from exporter.schema import check_sync_id
from exporter.selection import Capped
from exporter.sources.upstream import Upstream

log = logging.getLogger("exporter.discovery")

# One listing (every page, every user) gets this long; each request at most request_timeout.
LISTING_TIMEOUT = 60.0
RETRY_AFTER_FAILURE = 60.0
DROP_REASONS = ("invalid_id", "max_syncs", "unreadable_item")


class Discovery:
    """The targets of one source, replaced (never mutated) when a listing changes them."""

    def __init__(
        self,
        adapter: Adapter[Any],
        upstream: Upstream,
        make: TargetMaker,
        shard: Shard,
        metrics: SelfMetrics,
    ) -> None:
        config = adapter.config
        self.adapter = adapter
        self.source = config.name
        self.adds = bool(config.discover)
        self.lists = self.adds or adapter.lists_for_info
        self.interval = float(config.discover_interval)
        self.max_syncs = int(config.max_syncs)
        self.dropped = dict.fromkeys(DROP_REASONS, 0)
        self.ready = asyncio.Event()
        self._upstream = upstream
        self._make = make
        self._shard = shard
        self._metrics = metrics
        self._configured = [f for f in adapter.configured() if self._owns(f)]
        self._listed: dict[str, list[Found]] = {}
        self._failing: dict[str, str] = {}
        self._unreadable = 0
        self._task: asyncio.Task[None] | None = None
        webhook = getattr(config, "webhook", None)
        self.rediscover_every = 60.0 if webhook is None else float(webhook.rediscover_every)
        self._wake = asyncio.Event()
        self._due: float | None = None
        self._asked = -math.inf
        self._stale: set[str] = set()
        self.targets: list[Target] = []
        self._rebuild()
        if not self.lists:
            self.ready.set()

    def _owns(self, found: Found) -> bool:
        return self._shard.owns(self.source, found.shard_key or found.sync_id)

    def adopt(self, previous: Discovery) -> None:
        """Start from another discovery's lists (a reload that kept the source's credentials)."""
        self._listed = dict(previous._listed)
        self._failing = dict(previous._failing)
        self._unreadable = previous._unreadable
        self._rebuild({target.sync_id: target for target in previous.targets})
        if previous.ready.is_set():
            self.ready.set()

    def start(self) -> None:
        """List now and then every interval, in the background, if this source lists at all."""
        if self.lists and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop listing."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def rediscover(self, stale: Target | None = None) -> bool:
        """List soon: an event named a sync not listed yet, or changed what the listing says
        of `stale` (read again after that listing). At most one such listing per
        `rediscover_every` (one asked for inside the window runs at its end); True when this
        asked for one, False when one is pending or this source does not discover."""
        if not self.adds or self._task is None:
            return False
        if stale is not None:
            self._stale.add(stale.sync_id)
        if self._due is not None:
            return False
        self._due = max(time.monotonic(), self._asked + self.rediscover_every)
        self._wake.set()
        return True

    async def _wait(self, seconds: float) -> None:
        """Sleep `seconds`, or until a rediscovery asked for is due."""
        until = time.monotonic() + seconds
        while True:
            now = time.monotonic()
            due = until if self._due is None else min(until, self._due)
            if now >= due:
                break
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), due - now)
        if self._due is not None and time.monotonic() >= self._due:
            self._asked = time.monotonic()
            log.info("%s: listing again: an event named a sync not listed yet", self.source)
        self._due = None

    async def _run(self) -> None:
        while True:
            stale, self._stale = self._stale, set()
            complete = await self.refresh()
            at = time.time()
            for target in self.targets:
                if target.sync_id in stale:
                    target.event_at = at
            self.ready.set()
            await self._wait(self.interval if complete else min(RETRY_AFTER_FAILURE, self.interval))

    async def refresh(self) -> bool:
        """List once; True when every scope was listed."""
        http = self._upstream.within(time.monotonic() + LISTING_TIMEOUT)
        try:
            async with asyncio.timeout(LISTING_TIMEOUT):
                results = await self.adapter.discover(http)
        except TimeoutError:
            results = {"": UpstreamError("timeout", f"listing took over {LISTING_TIMEOUT:g}s")}
        except Exception as exc:  # an adapter bug costs this listing, never the exporter
            results = {"": UpstreamError("bad_response", f"cannot list ({type(exc).__name__})")}
        complete = True
        listed: dict[str, list[Found]] = {}
        for scope, result in results.items():
            if isinstance(result, UpstreamError):
                complete = False
                self._failed(scope, result)
                if scope in self._listed:
                    listed[scope] = self._listed[scope]
            else:
                self._recovered(scope)
                listed[scope] = result
        self._listed = listed
        self._unreadable = sum(http.dropped)
        known = len(self.targets)
        self._rebuild({target.sync_id: target for target in self.targets})
        if len(self.targets) != known or not self.ready.is_set():
            fields = {"source": self.source, "syncs": len(self.targets)}
            log.info("syncs discovered", extra={"fields": fields})
        return complete

    def _failed(self, scope: str, error: UpstreamError) -> None:
        if error.sent:
            self._metrics.errors.labels(self.source, error.reason).inc()
        if self._failing.get(scope) != error.reason:
            self._failing[scope] = error.reason
            fields = {"source": self.source, "reason": error.reason, "detail": error.detail}
            if scope:
                fields["scope"] = scope
            log.warning("cannot list syncs, keeping the ones known", extra={"fields": fields})

    def _recovered(self, scope: str) -> None:
        if self._failing.pop(scope, None) is not None:
            fields = {"source": self.source, **({"scope": scope} if scope else {})}
            log.info("listing syncs works again", extra={"fields": fields})

    def _rebuild(self, previous: dict[str, Target] | None = None) -> None:
        """Configured syncs first (described by the listing), then listed ones, checked."""
        previous = previous or {}
        listed: dict[str, Found] = {}
        dropped = dict.fromkeys(DROP_REASONS, 0)
        dropped["unreadable_item"] = self._unreadable
        beyond = 0
        for found_list in self._listed.values():
            if isinstance(found_list, Capped):
                beyond += found_list.beyond
            for found in found_list:
                if check_sync_id(found.sync_id) is not None:
                    dropped["invalid_id"] += 1
                elif found.sync_id not in listed:
                    listed[found.sync_id] = found
        chosen: list[Found] = []
        for found in self._configured:
            seen = listed.pop(found.sync_id, None)
            if seen is not None and seen.context is not None:
                found = dataclasses.replace(found, context=seen.context)
            chosen.append(found)
        if self.adds:
            extra = sorted(
                (found for found in listed.values() if self._owns(found)),
                key=lambda found: found.sync_id,
            )
            if len(extra) > self.max_syncs:
                dropped["max_syncs"] = len(extra) - self.max_syncs
                extra = extra[: self.max_syncs]
            dropped["max_syncs"] += beyond
            chosen.extend(extra)
        if dropped["max_syncs"] and not self.dropped["max_syncs"]:
            log.warning(
                "the provider lists more syncs than max_syncs; reading the first in id order",
                extra={
                    "fields": {
                        "source": self.source,
                        "max_syncs": self.max_syncs,
                        "dropped": dropped["max_syncs"],
                    }
                },
            )
        self.dropped = dropped
        self.targets = [self._make(found, previous.get(found.sync_id)) for found in chosen]
