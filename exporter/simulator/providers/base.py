"""What each simulated provider is made of; the shared simulator depends on this, never on one
provider's module."""

from __future__ import annotations

import argparse
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from aiohttp import web

from exporter.simulator.clock import Moment
from exporter.simulator.serving import json_response

if TYPE_CHECKING:
    from exporter.simulator.app import Simulator
    from exporter.simulator.world import World

JSON = dict[str, Any]

_NAMESPACE = uuid.UUID("267cd510-86bc-4be1-9d4e-ea828c343db5")


def derived_uuid(*parts: str) -> str:
    """A UUID that is a stable function of `parts` (credential, stream ids...)."""
    return str(uuid.uuid5(_NAMESPACE, ":".join(parts)))


def bulk_id(provider: str, number: int) -> str:
    """Id of the `number`-th (1-based) bulk sync of `provider`, e.g. `bulk-paragon-000001`."""
    return f"bulk-{provider}-{number:06d}"


def spread(number: int) -> float:
    """A phase in 0..1 for the `number`-th bulk sync; golden-ratio steps keep neighbours apart."""
    return (number * 0.6180339887) % 1.0


def phrase(status: int) -> str:
    """The reason phrase of an HTTP status ("Error" for an unregistered one)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def snake(text: str) -> str:
    """`Too Many Requests` as `too_many_requests`."""
    return text.lower().replace(" ", "_").replace("-", "_")


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


State = TypeVar("State", bound=ProviderState)


def state_of(world: World, name: str, kind: type[State]) -> State:
    """The provider's part of `world`, checked to be a `kind` so each provider reads it typed."""
    state = world.state(name)
    if not isinstance(state, kind):
        raise TypeError(f"the world's {name} state is a {type(state).__name__}")
    return state


def config_syncs(state: ProviderState, ids: Iterable[str], *, discover: bool) -> list[Any]:
    """The exporter config's `syncs:` for `ids`: labelled ones always (a listing gives no
    labels), the others only when nothing is discovered."""
    syncs: list[Any] = []
    for sync_id in ids:
        labels = dict(state.labels(sync_id))
        if labels:
            syncs.append({"id": sync_id, "labels": labels})
        elif not discover:
            syncs.append(sync_id)
    return syncs


class SimProvider(ABC):
    """One simulated provider: its catalogues, routes, auth, error bodies, control endpoints
    and exporter config. A module of `exporter.simulator.providers` exposes one as `PROVIDER`."""

    name: ClassVar[str]
    prefix: ClassVar[str]
    list_path: ClassVar[str]
    rank: ClassVar[int] = 100
    options: ClassVar[frozenset[str]] = frozenset()
    # Whether bulk worlds (benchmarks, load tests) spread syncs over this provider too.
    in_bulk: ClassVar[bool] = True

    @abstractmethod
    def demo(self, options: Mapping[str, Any]) -> ProviderState:
        """The demo catalogue: a few syncs that between them show every case."""

    @abstractmethod
    def bulk(self, count: int, options: Mapping[str, Any]) -> ProviderState:
        """`count` generated syncs, states spread out, for load."""

    @abstractmethod
    def routes(self, sim: Simulator) -> list[web.RouteDef]:
        """The provider API, under `prefix`."""

    # The secret the simulator signs this provider's webhooks with (None: sends none).
    webhook_secret: ClassVar[str | None] = None

    def webhook_events(self, sync_id: str, before: JSON | None, after: JSON) -> list[JSON]:
        """The webhooks the provider sends as a sync's body changes from `before` to `after`."""
        return []

    def webhook_headers(self, body: bytes) -> dict[str, str]:
        """How the provider authenticates one delivery of `body`."""
        return {}

    def control_routes(self, sim: Simulator) -> list[web.RouteDef]:
        """The provider's own `/_sim/` endpoints, if it needs any."""
        return []

    @abstractmethod
    def error_body(self, status: int, detail: str, retry_after: str | None = None) -> JSON:
        """The provider's error JSON for `status`."""

    def error_response(
        self,
        status: int,
        detail: str,
        retry_after: str | None = None,
        *,
        retry_after_header: bool = True,
    ) -> web.Response:
        """An error answer in the provider's style, with Retry-After when given and wanted."""
        headers = None
        if retry_after is not None and retry_after_header:
            headers = {"Retry-After": retry_after}
        return json_response(self.error_body(status, detail, retry_after), status, headers)

    @abstractmethod
    def source(self, base_url: str, world: World, *, discover: bool) -> dict[str, Any] | None:
        """The exporter's `sources:` entry for this provider of `world` served at `base_url`
        (the provider's prefix included); None if the world has none of its syncs. Without
        `discover` every sync is listed, so a benchmark controls exactly what is read."""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:  # noqa: B027
        """The provider's own flags of the simulator's command line (none by default)."""

    def options_from(self, args: argparse.Namespace) -> dict[str, Any]:
        """World options (names in `options`) from the parsed command line."""
        return {}
