"""The simulated world: every fake sync, its runtime overrides, and the credentials it accepts.

Pure and time-driven: callers pass the clock reading, so the same world renders the same bodies.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from exporter.simulator.catalog import bulk_catalog, demo_catalog
from exporter.simulator.clock import Moment
from exporter.simulator.syncs import JSON, PROVIDERS, FakeSync, Provider, StaticSync

DEFAULT_PERIOD = 120.0


def parse_provider(name: str) -> Provider | None:
    """The provider called `name`, or None if there is no such provider."""
    for provider in PROVIDERS:
        if provider == name:
            return provider
    return None


def merge(body: JSON, fields: Mapping[str, Any]) -> JSON:
    """`fields` laid over `body`; an object merges shallowly into an object of the same key."""
    merged = dict(body)
    for key, value in fields.items():
        current = merged.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            merged[key] = {**current, **value}
        else:
            merged[key] = value
    return merged


class World:
    """All fake syncs of the three providers, with overrides and syncs added at run time."""

    def __init__(
        self,
        syncs: Mapping[Provider, Iterable[FakeSync]],
        *,
        period: float = DEFAULT_PERIOD,
        started_at: float | None = None,
        name: str = "demo",
    ) -> None:
        if period <= 0:
            raise ValueError("period must be positive")
        self.name = name
        self.period = period
        self.started_at = time.time() if started_at is None else started_at
        self.paragon_token = "sim-paragon-token"
        self.terminal_secret = "sim-terminal-secret"
        self.terminal_connection_token = "con_tkn_simulator"
        self.sequin_token = "sim-sequin-key"
        self._initial: dict[Provider, dict[str, FakeSync]] = {}
        for provider in PROVIDERS:
            by_id: dict[str, FakeSync] = {}
            for sync in syncs.get(provider, ()):
                if sync.id in by_id:
                    raise ValueError(f"duplicate {provider} sync id {sync.id!r}")
                by_id[sync.id] = sync
            self._initial[provider] = by_id
        self._syncs = {provider: dict(by_id) for provider, by_id in self._initial.items()}
        self._overrides: dict[Provider, dict[str, JSON]] = {p: {} for p in PROVIDERS}

    @classmethod
    def demo(cls, period: float = DEFAULT_PERIOD, started_at: float | None = None) -> World:
        """The default world, whose syncs between them show every canonical state."""
        return cls(demo_catalog(), period=period, started_at=started_at, name="demo")

    @classmethod
    def bulk(
        cls, count: int, period: float = DEFAULT_PERIOD, started_at: float | None = None
    ) -> World:
        """`count` syncs split across the providers (ids `bulk-<provider>-NNNNNN`), for load."""
        if count < 0:
            raise ValueError("count must not be negative")
        return cls(bulk_catalog(count), period=period, started_at=started_at, name="bulk")

    def moment(self, now: float) -> Moment:
        """The clock reading `now` as seen by the lifecycles."""
        return Moment(self.started_at, now, self.period)

    def restart(self, now: float, elapsed: float = 0.0) -> None:
        """Move the start so that `elapsed` seconds of the lifecycles have passed at `now`."""
        self.started_at = now - elapsed

    def ids(self, provider: Provider) -> list[str]:
        """Ids of all syncs of `provider`, in catalog order."""
        return list(self._syncs[provider])

    def sync(self, provider: Provider, sync_id: str) -> FakeSync | None:
        """The sync, or None if `provider` has no sync `sync_id`."""
        return self._syncs[provider].get(sync_id)

    def body(
        self, provider: Provider, sync_id: str, now: float, *, expand: bool = False
    ) -> JSON | None:
        """The sync's JSON body at `now` with any override applied, or None if unknown."""
        sync = self._syncs[provider].get(sync_id)
        if sync is None:
            return None
        return self._render(provider, sync, self.moment(now), expand)

    def listing(
        self,
        provider: Provider,
        now: float,
        *,
        expand: bool = False,
        offset: int = 0,
        limit: int | None = None,
        where: Callable[[JSON], bool] | None = None,
    ) -> tuple[list[JSON], bool]:
        """List-endpoint entries at `now` in catalog order, those matching `where` only, from
        `offset`, at most `limit`; the flag says whether more entries follow."""
        m = self.moment(now)
        syncs = self._syncs[provider].values()
        end = None if limit is None else offset + limit
        if where is None:
            chosen = itertools.islice(syncs, offset, end)
            items = [sync.list_item(m, self._render(provider, sync, m, expand)) for sync in chosen]
            return items, end is not None and end < len(syncs)
        entries = (sync.list_item(m, self._render(provider, sync, m, expand)) for sync in syncs)
        matching = [entry for entry in entries if where(entry)]
        return matching[offset:end], end is not None and end < len(matching)

    def _render(self, provider: Provider, sync: FakeSync, m: Moment, expand: bool) -> JSON:
        body = sync.render(m, expand=expand)
        fields = self._overrides[provider].get(sync.id)
        return body if fields is None else merge(body, fields)

    def override(self, provider: Provider, sync_id: str, fields: JSON) -> bool:
        """Lay `fields` over the sync's lifecycle body from now on (replacing an earlier
        override); False if the sync does not exist."""
        if sync_id not in self._syncs[provider]:
            return False
        self._overrides[provider][sync_id] = dict(fields)
        return True

    def clear_override(self, provider: Provider, sync_id: str) -> bool:
        """Drop the override, back to the lifecycle; False if the sync does not exist."""
        if sync_id not in self._syncs[provider]:
            return False
        self._overrides[provider].pop(sync_id, None)
        return True

    def add_static(self, provider: Provider, sync_id: str, body: JSON, now: float) -> bool:
        """Create (or replace) a sync that always answers exactly `body`; True if it is new."""
        created = sync_id not in self._syncs[provider]
        self._syncs[provider][sync_id] = StaticSync(sync_id, provider, dict(body), now)
        self._overrides[provider].pop(sync_id, None)
        return created

    def reset(self) -> None:
        """Forget all overrides and every sync created at run time."""
        self._syncs = {provider: dict(by_id) for provider, by_id in self._initial.items()}
        self._overrides = {p: {} for p in PROVIDERS}


def demo_world(period: float = DEFAULT_PERIOD, started_at: float | None = None) -> World:
    """The default world (same as `World.demo`)."""
    return World.demo(period, started_at)


def bulk_world(
    count: int, period: float = DEFAULT_PERIOD, started_at: float | None = None
) -> World:
    """`count` bulk syncs (same as `World.bulk`)."""
    return World.bulk(count, period, started_at)
