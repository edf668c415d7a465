"""What the serving commands share (serve and the demo): their common flags and the serve loop.

Kept apart from `exporter.cli.main` so the demo, which alone reaches the simulator, can serve the
same way without the command line importing the simulator.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import signal
import ssl
from collections.abc import Callable

from aiohttp import web

from exporter import __version__, values
from exporter.config import DEFAULT_PORT, ConfigError, parse_listen_address
from exporter.web.app import Exporter, make_app
from exporter.web.serving import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_READ_HEADER_TIMEOUT,
    DEFAULT_SHUTDOWN_TIMEOUT,
    Listener,
    raise_open_file_limit,
    secured,
)
from exporter.web.webconfig import WebSecurityConfig, load_web_config, ssl_context

log = logging.getLogger("exporter")


def duration_arg(text: str) -> float:
    """A positive duration flag (`500ms`, `10s`, or plain seconds), refused with its text."""
    seconds = values.duration(text)
    if seconds is None:
        try:
            seconds = float(text)
        except ValueError:
            seconds = math.nan
    if not math.isfinite(seconds):
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (use e.g. 500ms, 10s, 5m)")
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return seconds


def positive_arg(text: str) -> int:
    """A whole number flag of at least 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a positive whole number: {text!r}")
    return int(text)


def address_arg(text: str) -> str:
    """A `[HOST]:PORT` flag, checked as the config checks `web.listen_address`."""
    try:
        parse_listen_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_common_flags(parser: argparse.ArgumentParser) -> None:
    """The web and log flags every serving command takes, so serve and demo cannot drift."""
    parser.add_argument(
        "--web.listen-address",
        dest="listen_address",
        type=address_arg,
        metavar="[HOST]:PORT",
        help=f"address to serve on (config: web.listen_address, default :{DEFAULT_PORT})",
    )
    parser.add_argument(
        "--web.config.file",
        dest="web_config_file",
        metavar="PATH",
        help="TLS and basic auth, in the Prometheus exporter-toolkit's web config format",
    )
    parser.add_argument(
        "--web.enable-lifecycle",
        dest="enable_lifecycle",
        action="store_true",
        help="allow POST/PUT /-/reload over HTTP (off by default; SIGHUP always reloads)",
    )
    parser.add_argument(
        "--web.read-header-timeout",
        dest="read_header_timeout",
        type=duration_arg,
        default=DEFAULT_READ_HEADER_TIMEOUT,
        metavar="DURATION",
        help="time a client has to send a request's headers, TLS handshake included "
        f"(default {DEFAULT_READ_HEADER_TIMEOUT:g}s)",
    )
    parser.add_argument(
        "--web.max-connections",
        dest="max_connections",
        type=positive_arg,
        default=DEFAULT_MAX_CONNECTIONS,
        metavar="N",
        help=f"open client connections at most; more wait (default {DEFAULT_MAX_CONNECTIONS})",
    )
    parser.add_argument(
        "--web.shutdown-timeout",
        dest="shutdown_timeout",
        type=duration_arg,
        default=DEFAULT_SHUTDOWN_TIMEOUT,
        metavar="DURATION",
        help="on SIGTERM, how long requests in flight may finish before provider reads are "
        f"cancelled (default {DEFAULT_SHUTDOWN_TIMEOUT:g}s)",
    )
    parser.add_argument(
        "--log.level",
        dest="log_level",
        choices=["debug", "info", "warn", "error"],
        help="log level (config: log.level, default info)",
    )
    parser.add_argument(
        "--log.format",
        dest="log_format",
        choices=["logfmt", "json"],
        help="log line format (config: log.format, default logfmt)",
    )


Serving = tuple[WebSecurityConfig | None, ssl.SSLContext | None]


def web_security(path: str | None) -> Serving:
    """The web config file, checked before anything starts: auth users and a TLS context."""
    if not path:
        return None, None
    security = load_web_config(path)
    tls = security.tls_server_config
    return security, ssl_context(tls, path) if tls else None


async def serve(
    exporter: Exporter,
    listen_address: str,
    on_start: Callable[[str], None],
    serving: Serving,
    args: argparse.Namespace,
) -> None:
    host, port = parse_listen_address(listen_address)
    security, context = serving
    files = raise_open_file_limit()
    if files < args.max_connections + 64:
        log.warning(
            "the limit of open files is low for --web.max-connections",
            extra={"fields": {"limit": files, "max_connections": args.max_connections}},
        )
    app = make_app(exporter, security, lifecycle=args.enable_lifecycle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    assert runner.server is not None
    listener = Listener(
        secured(runner.server),
        tls=context,
        max_connections=args.max_connections,
        header_timeout=args.read_header_timeout,
    )
    try:
        addresses = listener.bind(host, port)
    except OSError as exc:
        await runner.cleanup()
        reason = exc.strerror or str(exc)
        raise ConfigError(f"cannot listen on {listen_address}: {reason}") from None
    listener.start()
    bound = addresses[0] if addresses else (host, port)
    scheme = "https" if context else "http"
    url = f"{scheme}://{bound[0] if ':' not in str(bound[0]) else f'[{bound[0]}]'}:{bound[1]}"
    on_start(url)
    exporter.collector.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, exporter.reload_on_signal)
    try:
        await stop.wait()
    finally:
        # Stop accepting, give requests in flight the grace period, then cancel what is
        # still waiting for a provider: a hung provider must not outlast Kubernetes' 30 s.
        log.info("shutting down", extra={"fields": {"grace_seconds": args.shutdown_timeout}})
        await listener.stop()
        await listener.drain(args.shutdown_timeout)
        await exporter.collector.shutdown()
        await runner.cleanup()


def listening(url: str) -> None:
    """Log the address served, once it is bound."""
    log.info("listening", extra={"fields": {"address": url, "version": __version__}})
