"""One provider's part of a simulated world, and the errors of the control API: the leaf that
every other simulator module (world, host, providers, control) builds on."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from exporter.simulator.clock import Moment

JSON = dict[str, Any]


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


class ControlError(Exception):
    """A control request that cannot be carried out; its message goes back to the caller."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ProviderState(ABC):
    """One provider's part of a world: its fake syncs, the syncs tests add, and the overrides
    tests lay over bodies. Pure and time-driven: every read takes the moment to render."""

    def __init__(self) -> None:
        self._overrides: dict[str, JSON] = {}

    @abstractmethod
    def ids(self, m: Moment) -> list[str]:
        """Ids of every sync tests can address at `m`, in catalogue order."""

    @abstractmethod
    def render(self, sync_id: str, m: Moment, *, expand: bool = False) -> JSON | None:
        """The sync's own body at `m` (no override), or None if there is no such sync."""

    @abstractmethod
    def add_static(self, sync_id: str, body: JSON, m: Moment, extra: Mapping[str, Any]) -> bool:
        """Create (or replace) a sync answering exactly `body`; True if it is new. `extra` holds
        the provider's other fields of the control request; ControlError if they are wrong."""

    @abstractmethod
    def remove_static(self, sync_id: str, m: Moment) -> bool:
        """Remove a sync created with `add_static` (a catalogue sync it replaced answers again);
        False if `sync_id` is not such a sync."""

    @abstractmethod
    def _forget(self) -> None:
        """Drop what tests added, back to the catalogue."""

    def has(self, sync_id: str, m: Moment) -> bool:
        """Whether there is a sync `sync_id` at `m`."""
        return self.render(sync_id, m) is not None

    def has_target(self, target: str, m: Moment) -> bool:
        """Whether a fault can be aimed at `target`: a sync, or what else the provider allows."""
        return self.has(target, m)

    def labels(self, sync_id: str) -> Mapping[str, str]:
        """Exporter labels the catalogue gives the sync."""
        return {}

    def overlay(self, sync_id: str, body: JSON) -> JSON:
        """`body` with the sync's override, if any, laid over it."""
        fields = self._overrides.get(sync_id)
        return body if fields is None else merge(body, fields)

    def body(self, sync_id: str, m: Moment, *, expand: bool = False) -> JSON | None:
        """The body the provider API answers for the sync at `m`, or None if it is unknown."""
        raw = self.render(sync_id, m, expand=expand)
        return None if raw is None else self.overlay(sync_id, raw)

    def override(self, sync_id: str, fields: JSON, m: Moment) -> bool:
        """Lay `fields` over the sync's body from now on (replacing an earlier override);
        False if there is no such sync."""
        if not self.has(sync_id, m):
            return False
        self._overrides[sync_id] = dict(fields)
        return True

    def clear_override(self, sync_id: str, m: Moment) -> bool:
        """Back to the lifecycle; False if there is no such sync."""
        if not self.has(sync_id, m):
            return False
        self._overrides.pop(sync_id, None)
        return True

    def drop_override(self, sync_id: str) -> None:
        """Forget the sync's override (a replaced ad-hoc sync starts clean)."""
        self._overrides.pop(sync_id, None)

    def reset(self) -> None:
        """Forget overrides and everything tests added."""
        self._overrides.clear()
        self._forget()
