"""What provider plug-ins and the control API may use of the running simulator: the clock, the
world, the fault book, the request log and the serving settings, so none needs `Simulator`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from aiohttp import web

from exporter.simulator.clock import Moment
from exporter.simulator.faults import FaultBook
from exporter.simulator.requestlog import RequestLog
from exporter.simulator.state import ProviderState


class WorldView(Protocol):
    """The world as routes and control handlers read and steer it (`World` is the one)."""

    name: str
    period: float
    started_at: float

    @property
    def providers(self) -> tuple[str, ...]:
        """Names of the providers in the world, in provider order."""

    def state(self, provider: str) -> ProviderState:
        """The provider's part of the world; KeyError if the world has none."""

    def find(self, provider: str) -> ProviderState | None:
        """The provider's part of the world, or None."""

    def moment(self, now: float) -> Moment:
        """The clock reading `now` as seen by the lifecycles."""

    def ids(self, provider: str, now: float | None = None) -> list[str]:
        """Ids of the provider's syncs at `now`."""

    def restart(self, now: float, elapsed: float = 0.0) -> None:
        """Move the start so that `elapsed` seconds have passed at `now`."""

    def reset(self) -> None:
        """Forget all overrides and everything created at run time."""


class Host(Protocol):
    """The running simulator as its plug-ins see it (`Simulator` is the one)."""

    @property
    def world(self) -> WorldView:
        """The simulated world."""

    @property
    def clock(self) -> Callable[[], float]:
        """Read for every body."""

    @property
    def latency(self) -> float:
        """Seconds added to every provider response."""

    @property
    def rate_limit(self) -> int | None:
        """Requests per provider per second beyond which the answer is 429."""

    @property
    def faults(self) -> FaultBook:
        """Faults tests set, taken by the next matching request."""

    @property
    def requests(self) -> RequestLog:
        """Counts of the requests served."""

    @property
    def base_url(self) -> str:
        """`http://host:port` of the running server."""

    def exporter_config(self, *, discover: bool = True) -> dict[str, Any]:
        """An exporter config (`sources:`) for this running simulator."""


class Replier(Protocol):
    """What the shared route helpers need of a provider: its name and its error answers."""

    @property
    def name(self) -> str:
        """The provider's name (the key of its faults and request counts)."""

    def error_response(
        self,
        status: int,
        detail: str,
        retry_after: str | None = None,
        *,
        retry_after_header: bool = True,
    ) -> web.Response:
        """An error answer in the provider's style."""
