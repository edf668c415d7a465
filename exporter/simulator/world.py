"""The simulated world: each provider's state, the clock the lifecycles read, and reset.

Pure and time-driven: callers pass the clock reading, so the same world renders the same bodies.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from exporter.simulator.clock import Moment
from exporter.simulator.providers import PROVIDERS
from exporter.simulator.state import JSON, ProviderState

DEFAULT_PERIOD = 120.0


def bulk_providers() -> list[str]:
    """The providers bulk worlds spread syncs over, in provider order."""
    return [name for name, provider in PROVIDERS.items() if provider.in_bulk]


def bulk_counts(count: int, parts: int | None = None) -> list[int]:
    """How `count` bulk syncs are split over the bulk providers, in their order (as evenly as
    possible, earlier providers taking the remainder)."""
    parts = len(bulk_providers()) if parts is None else parts
    base, extra = divmod(count, parts)
    return [base + (i < extra) for i in range(parts)]


def _check_options(options: Mapping[str, Any]) -> None:
    known = set().union(*(provider.options for provider in PROVIDERS.values()))
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"unknown world options: {', '.join(unknown)}")


class World:
    """Every provider's part of the simulation, keyed by provider name, in provider order."""

    def __init__(
        self,
        states: Mapping[str, ProviderState],
        *,
        period: float = DEFAULT_PERIOD,
        started_at: float | None = None,
        name: str = "demo",
    ) -> None:
        if period <= 0:
            raise ValueError("period must be positive")
        unknown = sorted(set(states) - set(PROVIDERS))
        if unknown:
            raise ValueError(f"unknown providers: {', '.join(unknown)}")
        self.name = name
        self.period = period
        self.started_at = time.time() if started_at is None else started_at
        self._states = {name: states[name] for name in PROVIDERS if name in states}

    @classmethod
    def demo(
        cls, period: float = DEFAULT_PERIOD, started_at: float | None = None, **options: Any
    ) -> World:
        """The default world, whose syncs between them show every case the exporter must get
        right. `options` are the providers' own (e.g. `paragon_signing_key`)."""
        _check_options(options)
        states = {name: provider.demo(options) for name, provider in PROVIDERS.items()}
        return cls(states, period=period, started_at=started_at, name="demo")

    @classmethod
    def bulk(
        cls,
        count: int,
        period: float = DEFAULT_PERIOD,
        started_at: float | None = None,
        **options: Any,
    ) -> World:
        """`count` syncs split across the bulk providers (ids `bulk-<provider>-NNNNNN`), for load.
        `options` are the providers' own (e.g. `paragon_syncs_per_user`)."""
        if count < 0:
            raise ValueError("count must not be negative")
        _check_options(options)
        split = zip(bulk_providers(), bulk_counts(count), strict=True)
        states = {name: PROVIDERS[name].bulk(n, options) for name, n in split}
        return cls(states, period=period, started_at=started_at, name="bulk")

    @property
    def providers(self) -> tuple[str, ...]:
        """Names of the providers in this world, in provider order."""
        return tuple(self._states)

    def state(self, provider: str) -> ProviderState:
        """The provider's part of the world; KeyError if the world has none."""
        return self._states[provider]

    def find(self, provider: str) -> ProviderState | None:
        """The provider's part of the world, or None."""
        return self._states.get(provider)

    def moment(self, now: float) -> Moment:
        """The clock reading `now` as seen by the lifecycles."""
        return Moment(self.started_at, now, self.period)

    def restart(self, now: float, elapsed: float = 0.0) -> None:
        """Move the start so that `elapsed` seconds of the lifecycles have passed at `now`."""
        self.started_at = now - elapsed

    def ids(self, provider: str, now: float | None = None) -> list[str]:
        """Ids of the provider's syncs (Terminal: jobs) at `now` (default: the wall clock)."""
        state = self._states.get(provider)
        if state is None:
            return []
        return state.ids(self.moment(time.time() if now is None else now))

    def body(self, provider: str, sync_id: str, now: float, *, expand: bool = False) -> JSON | None:
        """The sync's JSON body at `now` with any override applied, or None if unknown."""
        state = self._states.get(provider)
        return None if state is None else state.body(sync_id, self.moment(now), expand=expand)

    def override(self, provider: str, sync_id: str, fields: JSON, now: float) -> bool:
        """Lay `fields` over the sync's body from now on; False if the sync does not exist."""
        return self.state(provider).override(sync_id, fields, self.moment(now))

    def clear_override(self, provider: str, sync_id: str, now: float) -> bool:
        """Back to the lifecycle; False if the sync does not exist."""
        return self.state(provider).clear_override(sync_id, self.moment(now))

    def add_static(
        self,
        provider: str,
        sync_id: str,
        body: JSON,
        now: float,
        extra: Mapping[str, Any] | None = None,
    ) -> bool:
        """Create (or replace) a sync that always answers exactly `body`; True if it is new.
        `extra` holds the provider's own fields (Paragon `user`, Terminal `connection`)."""
        state = self.state(provider)
        return state.add_static(sync_id, body, self.moment(now), extra or {})

    def reset(self) -> None:
        """Forget all overrides and everything created at run time."""
        for state in self._states.values():
            state.reset()


def demo_world(
    period: float = DEFAULT_PERIOD, started_at: float | None = None, **options: Any
) -> World:
    """The default world (same as `World.demo`)."""
    return World.demo(period, started_at, **options)


def bulk_world(
    count: int, period: float = DEFAULT_PERIOD, started_at: float | None = None, **options: Any
) -> World:
    """`count` bulk syncs (same as `World.bulk`)."""
    return World.bulk(count, period, started_at, **options)
