"""The simulator as a real HTTP server, started in-process, on a background thread, or alone."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from aiohttp import web

from exporter.simulator.config import demo_config
from exporter.simulator.control import ControlApi
from exporter.simulator.faults import FaultBook
from exporter.simulator.providers import PROVIDERS
from exporter.simulator.requestlog import RequestLog
from exporter.simulator.world import World


def create_app(sim: Simulator) -> web.Application:
    """The aiohttp application serving `sim`: each provider's API under its prefix, and the
    `/_sim/` control API."""
    app = web.Application()
    for name in sim.world.providers:
        app.add_routes(PROVIDERS[name].routes(sim))
    app.add_routes(ControlApi(sim).routes())
    return app


def url_host(host: str) -> str:
    """`host` as written in a URL; a wildcard bind address becomes loopback, which is reachable."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


class Simulator:
    """Fake Paragon, Terminal and Sequin APIs over HTTP, with faults, overrides and request counts.

    `latency` (seconds) is added to every provider response; `clock` is read for every body.
    """

    def __init__(
        self,
        world: World,
        latency: float = 0.0,
        *,
        clock: Callable[[], float] = time.time,
        rate_limit: int | None = None,
    ) -> None:
        self.world = world
        self.latency = latency
        # Like a provider's own rate limit: a request beyond this many per provider within
        # one second is answered 429 (counted in the request log's `rate_limited`).
        self.rate_limit = rate_limit
        self.clock = clock
        self.faults = FaultBook(world.providers)
        self.requests = RequestLog(world.providers)
        self.app = create_app(self)
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None

    @property
    def base_url(self) -> str:
        """`http://host:port` of the running server (provider prefixes are appended to it)."""
        if self._base_url is None:
            raise RuntimeError("the simulator is not running")
        return self._base_url

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on `host:port` (0 picks a free port) and return the base URL."""
        if self._runner is not None:
            raise RuntimeError("the simulator is already running")
        runner = web.AppRunner(
            self.app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port, backlog=1024).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._base_url = f"http://{url_host(host)}:{runner.addresses[0][1]}"
        return self._base_url

    async def stop(self) -> None:
        """Stop listening; pending requests get a second to finish."""
        runner, self._runner, self._base_url = self._runner, None, None
        if runner is not None:
            await runner.cleanup()

    def exporter_config(self, *, discover: bool = True) -> dict[str, Any]:
        """An exporter config (`sources:`) for this running simulator (see `demo_config`)."""
        return demo_config(self.base_url, self.world, discover=discover)

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


def _serve_in_thread(
    sim: Simulator, host: str, port: int, loop: asyncio.AbstractEventLoop, ready: Future[str]
) -> None:
    asyncio.set_event_loop(loop)
    try:
        try:
            url = loop.run_until_complete(sim.start(host, port))
        except BaseException as exc:
            ready.set_exception(exc)
            return
        ready.set_result(url)
        loop.run_forever()
        loop.run_until_complete(sim.stop())
    finally:
        loop.close()


@contextmanager
def run_simulator_in_thread(
    world: World | None = None, *, latency: float = 0.0, host: str = "127.0.0.1", port: int = 0
) -> Iterator[Simulator]:
    """Run a simulator on its own event loop in a background thread, for code that is not async.

    Yields the running simulator (use its `base_url`); steer it through the `/_sim/` endpoints,
    which are served on its own thread, rather than by touching its state directly.
    """
    sim = Simulator(World.demo() if world is None else world, latency)
    loop = asyncio.new_event_loop()
    ready: Future[str] = Future()
    thread = threading.Thread(
        target=_serve_in_thread, args=(sim, host, port, loop, ready), name="simulator", daemon=True
    )
    thread.start()
    ready.result(timeout=30)
    try:
        yield sim
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
