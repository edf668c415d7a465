"""The HTTP side: /metrics, the landing page, health, readiness and reload."""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Middleware

from exporter import __version__
from exporter.collection import Collector, scrape_timeout
from exporter.config import Config, ConfigError
from exporter.webconfig import WebSecurityConfig, basic_auth

log = logging.getLogger("exporter.web")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
TIMEOUT_HEADER = "X-Prometheus-Scrape-Timeout-Seconds"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ReloadUnavailable(ConfigError):
    """Reload was asked of an exporter that has no config file (the demo)."""


class Exporter:
    """The running exporter: a collector, and how to reload its config."""

    def __init__(self, collector: Collector, reload: Callable[[], Config] | None) -> None:
        self.collector = collector
        self._reload = reload
        collector.metrics.reload_successful.set(1)
        collector.metrics.reload_timestamp.set(time.time())

    def reload(self) -> str:
        """Apply the config file again; a bad file is refused and the running config kept."""
        metrics = self.collector.metrics
        if self._reload is None:
            raise ReloadUnavailable("this exporter was not started from a config file")
        try:
            config = self._reload()
        except ConfigError as exc:
            metrics.reload_successful.set(0)
            log.error(
                "config reload failed, keeping the running config",
                extra={"fields": {"error": str(exc)}},
            )
            raise
        self.collector.apply(config)
        metrics.reload_successful.set(1)
        metrics.reload_timestamp.set(time.time())
        count = sum(len(s.targets) for s in self.collector.sources)
        log.info(
            "config reloaded",
            extra={"fields": {"sources": len(config.sources), "syncs": count}},
        )
        return f"reloaded: {len(config.sources)} sources, {count} syncs\n"


def public_url(url: str) -> str:
    """A URL without any user:password part, for display."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Sync Status Exporter</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 60em; }}
table {{ border-collapse: collapse; }}
th, td {{ border: 1px solid #ccc; padding: .3em .8em; text-align: left; }}
</style></head>
<body>
<h1>Sync Status Exporter</h1>
<p>Version <span id="version">{version}</span>: Prometheus metrics for managed data syncs.</p>
<ul>
<li><a href="metrics">Metrics</a></li>
<li><a href="-/healthy">Health</a></li>
<li><a href="-/ready">Readiness</a></li>
</ul>
<h2>Configured sources</h2>
<table id="sources">
<thead><tr><th>source</th><th>provider</th><th>base URL</th><th>syncs</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
</body>
</html>
"""


def landing_page(collector: Collector) -> str:
    """Links, version and the configured sources (never their secrets)."""
    rows = "\n".join(
        f"<tr><td>{html.escape(s.name)}</td><td>{html.escape(s.provider)}</td>"
        f"<td>{html.escape(public_url(s.adapter.base_url))}</td><td>{len(s.targets)}</td></tr>"
        for s in collector.sources
    )
    return _PAGE.format(version=html.escape(__version__), rows=rows)


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


def make_app(exporter: Exporter, security: WebSecurityConfig | None = None) -> web.Application:
    """The aiohttp application serving the exporter's endpoints, behind basic auth if set."""
    collector = exporter.collector

    async def metrics(request: web.Request) -> web.Response:
        timeout = scrape_timeout(request.headers.get(TIMEOUT_HEADER), collector.config.collector)
        snapshot = await collector.scrape(timeout)
        headers = {"Content-Type": CONTENT_TYPE, "Vary": "Accept-Encoding"}
        if accepts_gzip(request.headers.get("Accept-Encoding", "")):
            headers["Content-Encoding"] = "gzip"
            return web.Response(body=snapshot.gzipped(), headers=headers)
        return web.Response(body=snapshot.body, headers=headers)

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=landing_page(collector), content_type="text/html")

    async def healthy(request: web.Request) -> web.Response:
        return web.Response(text="Healthy\n")

    async def ready(request: web.Request) -> web.Response:
        if not collector.ready:
            return web.Response(status=503, text="Not ready: listing syncs for the first time\n")
        return web.Response(text="Ready\n")

    async def reload(request: web.Request) -> web.Response:
        try:
            return web.Response(text=exporter.reload())
        except ReloadUnavailable as exc:
            return web.Response(status=400, text=f"{exc}\n")
        except ConfigError as exc:
            return web.Response(status=500, text=f"config reload failed:\n{exc}\n")

    middlewares: list[Middleware] = [_errors]
    if security is not None and security.basic_auth_users:
        middlewares.append(basic_auth(security.basic_auth_users))
    app = web.Application(middlewares=middlewares)
    app.router.add_get("/", index)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/-/healthy", healthy)
    app.router.add_get("/-/ready", ready)
    app.router.add_post("/-/reload", reload)
    app.router.add_put("/-/reload", reload)
    return app
