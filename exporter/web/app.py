"""The HTTP side: /metrics, /probe, the status page, health, readiness and reload."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import orjson
from aiohttp import web
from aiohttp.typedefs import Middleware

from exporter.collect.collector import Collector
from exporter.collect.events import deliverer
from exporter.collect.snapshot import Snapshot, scrape_timeout
from exporter.config import Config, ConfigError
from exporter.memory import freeze_long_lived
from exporter.sources.source import Source
from exporter.threads import gc_paused, in_thread
from exporter.web.serving import add_security_headers, track_requests
from exporter.web.statuspage import CONTENT_SECURITY_POLICY, page, status_rows
from exporter.web.webconfig import WebSecurityConfig, basic_auth
from exporter.web.webhooks import ROUTE, except_webhooks, receiver

log = logging.getLogger("exporter.web")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version={}; charset=utf-8"
TIMEOUT_HEADER = "X-Prometheus-Scrape-Timeout-Seconds"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")
LIFECYCLE_DISABLED = "Lifecycle API is not enabled.\n"
MAX_QUOTED = 100
MAX_LISTED = 20


class ReloadUnavailable(ConfigError):
    """Reload was asked of an exporter that has no config file (the demo)."""


class Exporter:
    """The running exporter: a collector, and how to reload its config.

    `load` reads and validates the config file; it runs in a thread, because a file with
    100,000 syncs takes seconds to parse. Only the swap (`Collector.apply`) and `applied`,
    the follow-up such as new log settings, run on the event loop.
    """

    def __init__(
        self,
        collector: Collector,
        load: Callable[[], Config] | None,
        applied: Callable[[Config], None] | None = None,
        *,
        demo: bool = False,
    ) -> None:
        self.collector = collector
        self.demo = demo
        self._load = load
        self._applied = applied
        self._reloading = asyncio.Lock()
        self._signalled: set[asyncio.Task[None]] = set()
        collector.metrics.reload_successful.set(1)
        collector.metrics.reload_timestamp.set(time.time())
        freeze_long_lived()

    def _build(self, config: Config) -> list[Source]:
        with gc_paused():
            return self.collector.prepare(config)

    async def reload(self) -> str:
        """Apply the config file again; a bad file is refused and the running config kept."""
        metrics = self.collector.metrics
        if self._load is None:
            raise ReloadUnavailable("this exporter was not started from a config file")
        async with self._reloading:
            try:
                config = await in_thread(self._load)
                built = await in_thread(lambda: self._build(config))
            except Exception as exc:
                error = (
                    exc
                    if isinstance(exc, ConfigError)
                    else ConfigError(f"cannot load the config ({type(exc).__name__})")
                )
                metrics.reload_successful.set(0)
                log.error(
                    "config reload failed, keeping the running config",
                    extra={"fields": {"error": str(error)}},
                )
                raise error from None
            with gc_paused():
                self.collector.apply(config, built)
            if self._applied is not None:
                self._applied(config)
            freeze_long_lived()
        metrics.reload_successful.set(1)
        metrics.reload_timestamp.set(time.time())
        count = sum(len(s.targets) for s in self.collector.sources)
        log.info(
            "config reloaded",
            extra={"fields": {"sources": len(config.sources), "syncs": count}},
        )
        return f"reloaded: {len(config.sources)} sources, {count} syncs\n"

    def reload_on_signal(self) -> None:
        """SIGHUP: reload in the background; the outcome is logged and in the metrics."""

        async def reload() -> None:
            with contextlib.suppress(ConfigError):
                await self.reload()

        task = asyncio.get_running_loop().create_task(reload())
        self._signalled.add(task)
        task.add_done_callback(self._signalled.discard)


def accepts_gzip(header: str) -> bool:
    """Whether an Accept-Encoding header allows gzip (`gzip;q=0` refuses it)."""
    for item in header.split(","):
        name, _, params = item.strip().partition(";")
        if name.strip().lower() not in ("gzip", "*"):
            continue
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        return quality > 0
    return False


def openmetrics_version(header: str) -> str | None:
    """The OpenMetrics version an Accept header asks for first, or None for the text format.

    As client_golang negotiates: `application/openmetrics-text` with version 1.0.0, 0.0.1 or
    none (1.0.0) wins if it is the most preferred type we serve; `q=0` refuses a type.
    """
    offers: list[tuple[float, int, str | None]] = []
    for position, item in enumerate(header.split(",")):
        media, *params = (part.strip() for part in item.split(";"))
        quality, version = 1.0, ""
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
            elif key.strip().lower() == "version":
                version = value.strip()
        media = media.lower()
        if quality <= 0:
            continue
        if media == "application/openmetrics-text" and version in ("", "1.0.0", "0.0.1"):
            offers.append((-quality, position, version or "1.0.0"))
        elif media in ("text/plain", "text/*", "*/*"):
            offers.append((-quality, position, None))
    return min(offers)[2] if offers else None


def exposition(request: web.Request, snapshot: Snapshot) -> web.Response:
    """The snapshot in the format the scrape asks for, gzipped if it accepts that."""
    gzipped = accepts_gzip(request.headers.get("Accept-Encoding", ""))
    version = openmetrics_version(request.headers.get("Accept", ""))
    headers = {"Vary": "Accept, Accept-Encoding"}
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    if version is not None:
        headers["Content-Type"] = OPENMETRICS_CONTENT_TYPE.format(version)
        return web.Response(body=snapshot.openmetrics(gzipped), headers=headers)
    headers["Content-Type"] = CONTENT_TYPE
    return web.Response(body=snapshot.gzipped() if gzipped else snapshot.body, headers=headers)


async def answer(request: web.Request, collecting: Coroutine[Any, Any, Snapshot]) -> web.Response:
    """A scrape's or a probe's answer: its collection's exposition, or 503 when the exporter
    shutting down cancelled the collection itself (a cancelled request still ends)."""
    try:
        snapshot = await collecting
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        return web.Response(status=503, text="shutting down\n")
    return exposition(request, snapshot)


def _quoted(text: str) -> str:
    """Request input as a message may quote it: cut short, escapes visible."""
    return repr(text if len(text) <= MAX_QUOTED else text[:MAX_QUOTED] + "...")


def probe_problem(request: web.Request, collector: Collector) -> str | None:
    """Why a /probe request cannot be served (a 400), or None.

    Only configured sources and the syncs they read can be probed: nothing in the request
    is ever turned into a URL.
    """
    unknown = sorted(set(request.query) - {"source", "sync"})
    if unknown:
        return f"unknown parameter {_quoted(unknown[0])}: /probe takes source and sync\n"
    if any(len(request.query.getall(key)) > 1 for key in request.query):
        return "source and sync may each be given once\n"
    name = request.query.get("source", "")
    if not name:
        return "the source parameter is required: /probe?source=NAME[&sync=ID]\n"
    source = collector.source_named(name)
    if source is None:
        known = [s.name for s in collector.sources]
        listed = ", ".join(known[:MAX_LISTED]) + (", ..." if len(known) > MAX_LISTED else "")
        return f"unknown source {_quoted(name)} (configured: {listed})\n"
    sync = request.query.get("sync")
    if sync is not None and all(target.sync_id != sync for target in source.targets):
        return (
            f"source {_quoted(name)} has no sync {_quoted(sync)} (neither configured nor "
            "listed by the provider, or read by another shard)\n"
        )
    return None


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """The headers on every answer the app makes, refusals and 404s included."""
    add_security_headers(response.headers)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """An unexpected error is logged in one line and answered 500, never with a traceback."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception as exc:
        log.error(
            "request failed",
            extra={"fields": {"path": request.path, "error": f"{type(exc).__name__}: {exc}"}},
        )
        return web.Response(status=500, text="internal error, see the exporter's log\n")


def make_app(
    exporter: Exporter,
    security: WebSecurityConfig | None = None,
    *,
    lifecycle: bool = False,
) -> web.Application:
    """The aiohttp application serving the exporter's endpoints, behind basic auth if set
    (but for the webhooks, which their own secrets guard).

    `POST /-/reload` works only with `lifecycle` (--web.enable-lifecycle), as in Prometheus:
    otherwise anyone who reaches the port could make the exporter re-read its files.
    """
    collector = exporter.collector

    def timeout(request: web.Request) -> float:
        return scrape_timeout(request.headers.get(TIMEOUT_HEADER), collector.config.collector)

    async def metrics(request: web.Request) -> web.Response:
        wanted = openmetrics_version(request.headers.get("Accept", "")) is not None
        return await answer(request, collector.scrape(timeout(request), wanted))

    async def probe(request: web.Request) -> web.Response:
        problem = probe_problem(request, collector)
        if problem is not None:
            return web.Response(status=400, text=problem)
        source, sync = request.query["source"], request.query.get("sync")
        return await answer(request, collector.probe(source, sync, timeout(request)))

    async def index(request: web.Request) -> web.Response:
        return web.Response(
            text=page(collector, demo=exporter.demo),
            content_type="text/html",
            headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY},
        )

    async def status(request: web.Request) -> web.Response:
        return web.Response(
            body=orjson.dumps(status_rows(collector)), content_type="application/json"
        )

    async def healthy(request: web.Request) -> web.Response:
        return web.Response(text="Healthy\n")

    async def ready(request: web.Request) -> web.Response:
        if not collector.ready:
            return web.Response(status=503, text="Not ready: listing syncs for the first time\n")
        return web.Response(text="Ready\n")

    async def reload(request: web.Request) -> web.Response:
        if not lifecycle:
            return web.Response(status=403, text=LIFECYCLE_DISABLED)
        try:
            return web.Response(text=await exporter.reload())
        except ReloadUnavailable as exc:
            return web.Response(status=400, text=f"{exc}\n")
        except ConfigError as exc:
            return web.Response(status=500, text=f"config reload failed:\n{exc}\n")

    middlewares: list[Middleware] = [track_requests, _errors]
    if security is not None and security.basic_auth_users:
        middlewares.append(except_webhooks(basic_auth(security.basic_auth_users)))
    app = web.Application(middlewares=middlewares)
    app.on_response_prepare.append(_security_headers)
    app.router.add_get("/", index)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/probe", probe)
    app.router.add_get("/status.json", status)
    app.router.add_get("/-/healthy", healthy)
    app.router.add_get("/-/ready", ready)
    app.router.add_post("/-/reload", reload)
    app.router.add_put("/-/reload", reload)
    deliver = deliverer(collector.metrics, collector.runs)
    receive = receiver(collector.source_named, collector.metrics, deliver)
    app.router.add_post("/webhooks/{source}", receive, name=ROUTE)
    return app
