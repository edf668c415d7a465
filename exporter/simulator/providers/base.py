"""What each simulated provider is made of; the shared simulator depends on this, never on one
provider's module."""

from __future__ import annotations

import argparse
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any, ClassVar, TypeVar

from aiohttp import web

from exporter.simulator.host import Host, WorldView
from exporter.simulator.serving import json_response
from exporter.simulator.state import JSON as JSON
from exporter.simulator.state import ControlError as ControlError
from exporter.simulator.state import ProviderState as ProviderState
from exporter.simulator.state import merge as merge

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


State = TypeVar("State", bound=ProviderState)


def state_of(world: WorldView, name: str, kind: type[State]) -> State:
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


def preset_source(
    name: str,
    world: WorldView,
    base_url: str,
    auth: Mapping[str, Any],
    state: ProviderState,
    ids: Iterable[str],
    *,
    discover: bool,
) -> dict[str, Any]:
    """The exporter's source for a fake behind a preset: the preset named `name`, its auth,
    and the syncs `config_syncs` lists."""
    source: dict[str, Any] = {
        "name": f"{world.name}-{name}",
        "provider": "generic",
        "preset": name,
        "base_url": base_url,
        "auth": dict(auth),
    }
    if discover:
        source["discover"] = True
    syncs = config_syncs(state, ids, discover=discover)
    if syncs:
        source["syncs"] = syncs
    return source


class SimProvider(ABC):
    """One simulated provider: its catalogues, routes, auth, error bodies, control endpoints
    and exporter config. A module (or package) of `exporter.simulator.providers` exposes one as
    `PROVIDER`."""

    name: ClassVar[str]
    prefix: ClassVar[str]
    list_path: ClassVar[str]
    rank: ClassVar[int] = 100
    options: ClassVar[frozenset[str]] = frozenset()

    @abstractmethod
    def demo(self, options: Mapping[str, Any]) -> ProviderState:
        """The demo catalogue: a few syncs that between them show every case."""

    def bulk(self, count: int, options: Mapping[str, Any]) -> ProviderState:
        """`count` generated syncs, states spread out, for load; a provider that makes none (the
        preset services' fakes) is left out of bulk worlds."""
        raise NotImplementedError(f"{self.name} makes no bulk syncs")

    @property
    def in_bulk(self) -> bool:
        """Whether bulk worlds (benchmarks, load tests) spread syncs over this provider: those
        that make bulk syncs do."""
        return type(self).bulk is not SimProvider.bulk

    @abstractmethod
    def routes(self, sim: Host) -> list[web.RouteDef]:
        """The provider API, under `prefix`."""

    # The secret the simulator signs this provider's webhooks with (None: sends none).
    webhook_secret: ClassVar[str | None] = None

    def webhook_events(self, sync_id: str, before: JSON | None, after: JSON) -> list[JSON]:
        """The webhooks the provider sends as a sync's body changes from `before` to `after`."""
        return []

    def webhook_events_in(
        self, world: WorldView, sync_id: str, before: JSON | None, after: JSON, now: float
    ) -> list[JSON]:
        """`webhook_events` for providers whose events name more than the sync's body holds
        (its user, its connection), read from `world`."""
        return self.webhook_events(sync_id, before, after)

    def webhook_subjects(self, world: WorldView, now: float) -> list[tuple[str, JSON]]:
        """What else the sender watches for changes besides the syncs' bodies, by a key of its
        own (Terminal: its connections, whose status has events too)."""
        return []

    def webhook_headers(self, body: bytes) -> dict[str, str]:
        """How the provider authenticates one delivery of `body`."""
        return {}

    def control_routes(self, sim: Host) -> list[web.RouteDef]:
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
    def source(self, base_url: str, world: WorldView, *, discover: bool) -> dict[str, Any] | None:
        """The exporter's `sources:` entry for this provider of `world` served at `base_url`
        (the provider's prefix included); None if the world has none of its syncs. Without
        `discover` every sync is listed, so a benchmark controls exactly what is read."""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:  # noqa: B027
        """The provider's own flags of the simulator's command line (none by default)."""

    def options_from(self, args: argparse.Namespace) -> dict[str, Any]:
        """World options (names in `options`) from the parsed command line."""
        return {}
