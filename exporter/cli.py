"""Command line: serve, --once, --config.check, and the self-contained demo."""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import re
import signal
import ssl
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from aiohttp import web

from exporter import __version__, gctrace, logs, values
from exporter.client import tls_context
from exporter.collection import Collector
from exporter.config import (
    DEFAULT_PORT,
    Config,
    ConfigError,
    Overrides,
    load_config,
    parse_listen_address,
)
from exporter.metrics import RUN_FAMILIES, SYNC_FAMILIES
from exporter.providers import PROVIDER_FAMILIES, PROVIDERS
from exporter.render import provider_families
from exporter.serving import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_READ_HEADER_TIMEOUT,
    DEFAULT_SHUTDOWN_TIMEOUT,
    Listener,
    raise_open_file_limit,
    secured,
)
from exporter.web import Exporter, make_app
from exporter.webconfig import WebSecurityConfig, load_web_config, ssl_context

log = logging.getLogger("exporter")

DEFAULT_CONFIG = "sync-status-exporter.yml"
# promtool's convention: 1 when the input is invalid, 3 when it is valid but a check failed.
EXIT_DOWN = 3
MAX_NAMED_DOWN = 10
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
_ESCAPE = re.compile(r"\\(.)")


def _duration(text: str) -> float:
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


def _period(text: str) -> float:
    from exporter.simulator.cli import parse_period

    try:
        return parse_period(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a positive whole number: {text!r}")
    return int(text)


def _index(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"not a whole number from 0: {text!r}")
    return int(text)


def _address(text: str) -> str:
    try:
        parse_listen_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sync-status-exporter",
        description="Prometheus exporter for managed data-sync APIs. "
        "Run `sync-status-exporter demo` for a self-contained demo.",
    )
    parser.add_argument(
        "--config.file",
        dest="config_file",
        default=DEFAULT_CONFIG,
        metavar="PATH",
        help=f"YAML config file (default: {DEFAULT_CONFIG})",
    )
    parser.add_argument(
        "--config.check",
        dest="config_check",
        action="store_true",
        help="validate the config file, then exit 0 if it is valid, 1 if not",
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="collect once, print the exposition to stdout and exit 0",
    )
    parser.add_argument(
        "--once.fail-on-down",
        dest="fail_on_down",
        action="store_true",
        help=f"with --once: exit {EXIT_DOWN} if any sync could not be read (sync_up 0) or a "
        "listing failed, naming them on stderr; a smoke check for scripts",
    )
    _common(parser)
    parser.add_argument(
        "--collector.request-timeout",
        dest="request_timeout",
        type=_duration,
        metavar="DURATION",
        help="timeout of one request to a provider (config: collector.request_timeout, 5s)",
    )
    parser.add_argument(
        "--collector.max-concurrency",
        dest="max_concurrency",
        type=_positive,
        metavar="N",
        help="concurrent requests per source (config: collector.max_concurrency, 20)",
    )
    parser.add_argument(
        "--collector.timeout-offset",
        dest="timeout_offset",
        type=_duration,
        metavar="DURATION",
        help="subtracted from Prometheus's scrape timeout (config: collector.timeout_offset, 0.5s)",
    )
    parser.add_argument(
        "--collector.shard",
        dest="shard",
        type=_index,
        metavar="N",
        help="this replica's shard, from 0 (config: collector.shard; see README, Performance)",
    )
    parser.add_argument(
        "--collector.total-shards",
        dest="total_shards",
        type=_positive,
        metavar="N",
        help="number of replicas sharing the syncs (config: collector.total_shards, 1)",
    )
    parser.add_argument(
        "--metric-allowlist",
        dest="metric_allowlist",
        metavar="REGEX,...",
        help="expose only the per-sync families whose names match one of these (anchored) "
        "regular expressions; sync_exporter_* always (config: collector.metric_allowlist)",
    )
    parser.add_argument(
        "--metric-denylist",
        dest="metric_denylist",
        metavar="REGEX,...",
        help="drop the per-sync families whose names match one of these; not with "
        "--metric-allowlist (config: collector.metric_denylist)",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--web.listen-address",
        dest="listen_address",
        type=_address,
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
        type=_duration,
        default=DEFAULT_READ_HEADER_TIMEOUT,
        metavar="DURATION",
        help="time a client has to send a request's headers, TLS handshake included "
        f"(default {DEFAULT_READ_HEADER_TIMEOUT:g}s)",
    )
    parser.add_argument(
        "--web.max-connections",
        dest="max_connections",
        type=_positive,
        default=DEFAULT_MAX_CONNECTIONS,
        metavar="N",
        help=f"open client connections at most; more wait (default {DEFAULT_MAX_CONNECTIONS})",
    )
    parser.add_argument(
        "--web.shutdown-timeout",
        dest="shutdown_timeout",
        type=_duration,
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


def _demo_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sync-status-exporter demo",
        description="Start the built-in provider simulator and the exporter against it.",
    )
    _common(parser)
    parser.add_argument(
        "--period",
        type=_period,
        default=120.0,
        metavar="DURATION",
        help="length of one simulated sync lifecycle, at least 1s (default 2m)",
    )
    return parser


# (section, key) of the config that each flag sets, by the flag's dest and name.
_FLAG_FIELDS = (
    ("request_timeout", "--collector.request-timeout", "collector", "request_timeout"),
    ("max_concurrency", "--collector.max-concurrency", "collector", "max_concurrency"),
    ("timeout_offset", "--collector.timeout-offset", "collector", "timeout_offset"),
    ("shard", "--collector.shard", "collector", "shard"),
    ("total_shards", "--collector.total-shards", "collector", "total_shards"),
    ("metric_allowlist", "--metric-allowlist", "collector", "metric_allowlist"),
    ("metric_denylist", "--metric-denylist", "collector", "metric_denylist"),
    ("listen_address", "--web.listen-address", "web", "listen_address"),
    ("log_level", "--log.level", "log", "level"),
    ("log_format", "--log.format", "log", "format"),
)


def _overrides(args: argparse.Namespace) -> Overrides:
    """Flags win over the file: their values are checked with the file's, in one pass."""
    given: dict[tuple[str, str], tuple[str, Any]] = {}
    for dest, flag, section, key in _FLAG_FIELDS:
        value = getattr(args, dest, None)
        if value is not None:
            given[section, key] = (flag, value)
    return given


Serving = tuple[WebSecurityConfig | None, ssl.SSLContext | None]


def _web_security(path: str | None) -> Serving:
    """The web config file, checked before anything starts: auth users and a TLS context."""
    if not path:
        return None, None
    security = load_web_config(path)
    tls = security.tls_server_config
    return security, ssl_context(tls, path) if tls else None


async def _serve(
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


def exposed_families(config: Config) -> str:
    """Which per-sync families the config's providers have and its selection keeps."""
    adapters = [PROVIDERS[source.provider] for source in config.sources]
    families = [*SYNC_FAMILIES, *RUN_FAMILIES, *provider_families(adapters)]
    selection = config.collector.families
    line = selection.describe(families)
    unmatched = selection.unmatched([*SYNC_FAMILIES, *RUN_FAMILIES, *PROVIDER_FAMILIES])
    if unmatched:
        line += f" (matching no family: {', '.join(unmatched)})"
    return line


def _listening(url: str) -> None:
    log.info("listening", extra={"fields": {"address": url, "version": __version__}})


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `sync-status-exporter` console script."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["demo"]:
        return _demo(_demo_parser().parse_args(arguments[1:]))
    parser = _parser()
    args = parser.parse_args(arguments)
    if args.fail_on_down and not args.once:
        parser.error("--once.fail-on-down needs --once")
    if args.metric_allowlist is not None and args.metric_denylist is not None:
        parser.error("--metric-allowlist and --metric-denylist cannot be used together")
    overrides = _overrides(args)

    def load() -> Config:
        return load_config(args.config_file, overrides)

    try:
        config = load()
        serving = _web_security(args.web_config_file)
        tls_context()
    except ConfigError as exc:
        print(f"sync-status-exporter: invalid configuration\n{exc}", file=sys.stderr)
        return 1
    if args.fail_on_down and not config.collector.families.keeps("sync_up"):
        parser.error("--once.fail-on-down reads sync_up, which the metric allowlist/denylist drops")
    if args.config_check:
        syncs = sum(len(source.syncs) for source in config.sources)
        print(f"{args.config_file}: valid, {len(config.sources)} sources, {syncs} syncs")
        print(f"exposing {exposed_families(config)}")
        return 0
    logs.setup(config.log.level, config.log.format)
    gctrace.install()
    if args.once:
        exposition = asyncio.run(_once(config))
        sys.stdout.write(exposition)
        sys.stdout.flush()
        if args.fail_on_down:
            problems = down_report(exposition)
            if problems:
                for line in problems:
                    print(f"sync-status-exporter: {line}", file=sys.stderr)
                return EXIT_DOWN
        return 0
    try:
        first = [config]
        del config
        asyncio.run(_run(first, load, serving, args))
    except ConfigError as exc:
        print(f"sync-status-exporter: {exc}", file=sys.stderr)
        return 1
    return 0


async def _once(config: Config) -> str:
    collector = Collector(config)
    try:
        collector.start()
        await collector.wait_ready(config.collector.default_timeout)
        snapshot = await collector.scrape(config.collector.default_timeout)
    finally:
        await collector.close()
    return snapshot.body.decode("utf-8")


def _samples(exposition: str, name: str) -> Iterator[tuple[dict[str, str], float]]:
    """The labels and value of each sample of one family in a text exposition."""
    # At \n only: splitlines() also ends lines at U+2028, U+2029 and others a label may hold.
    for line in exposition.split("\n"):
        match = _SAMPLE.match(line)
        if match and match.group(1) == name:
            labels = {
                key: _ESCAPE.sub(lambda m: "\n" if m.group(1) == "n" else m.group(1), value)
                for key, value in _LABEL.findall(match.group(2))
            }
            yield labels, float(match.group(3))


def down_report(exposition: str) -> list[str]:
    """What --once.fail-on-down fails on: syncs not read, and sources whose listing failed.

    Read from the exposition itself, so the verdict is exactly what a scrape would have
    shown: `sync_up 0`, and failed requests of a source none of whose syncs is down.
    """
    up = list(_samples(exposition, "sync_up"))
    down = [f"{labels['source']}/{labels['sync_id']}" for labels, value in up if value == 0]
    lines = []
    if down:
        named = ", ".join(down[:MAX_NAMED_DOWN])
        more = f" and {len(down) - MAX_NAMED_DOWN} more" if len(down) > MAX_NAMED_DOWN else ""
        lines.append(f"{len(down)} of {len(up)} syncs down: {named}{more}")
    sources_down = {name.split("/", 1)[0] for name in down}
    failed: dict[str, list[str]] = {}
    for labels, value in _samples(exposition, "sync_exporter_errors_total"):
        if value > 0 and labels["source"] not in sources_down:
            failed.setdefault(labels["source"], []).append(labels["reason"])
    for source, reasons in sorted(failed.items()):
        lines.append(f"source {source}: listing failed ({', '.join(sorted(reasons))})")
    return lines


async def _run(
    first: list[Config], load: Callable[[], Config], serving: Serving, args: argparse.Namespace
) -> None:
    """Serve the config `first` holds, taking it out so that no frame keeps it (all its
    syncs) alive once a reload has replaced it."""
    config = first.pop()
    selection = [config.collector.families]
    listening = config.web.listen_address
    exposed = exposed_families(config)

    def applied(fresh: Config) -> None:
        logs.setup(fresh.log.level, fresh.log.format)
        if fresh.collector.families != selection[0]:
            selection[0] = fresh.collector.families
            exposed = exposed_families(fresh)
            log.info("per-sync families changed", extra={"fields": {"exposed": exposed}})
        if fresh.web.listen_address != listening:
            log.warning(
                "web.listen_address changed; restart the exporter to apply it",
                extra={"fields": {"listening": listening}},
            )

    exporter = Exporter(Collector(config), load, applied)
    del config

    def started(url: str) -> None:
        _listening(url)
        log.info("per-sync families", extra={"fields": {"exposed": exposed}})

    await _serve(exporter, listening, started, serving, args)


def _demo(args: argparse.Namespace) -> int:
    from exporter.simulator import Sender, Simulator, World, demo_config

    try:
        serving = _web_security(args.web_config_file)
    except ConfigError as exc:
        print(f"sync-status-exporter: invalid configuration\n{exc}", file=sys.stderr)
        return 1

    async def run() -> None:
        world = World.demo(period=args.period)
        simulator = Simulator(world)
        base_url = await simulator.start()
        raw = demo_config(base_url, world)
        raw["web"] = {"listen_address": args.listen_address or f"127.0.0.1:{DEFAULT_PORT}"}
        raw["log"] = {"level": args.log_level or "info", "format": args.log_format or "logfmt"}
        config = Config.model_validate(raw)
        logs.setup(config.log.level, config.log.format)
        log.info("simulator started", extra={"fields": {"address": base_url}})

        # The simulator's Nango sends its signed webhooks to the exporter, moving sync_runs_total.
        hooks: list[Sender] = []

        def started(url: str) -> None:
            _listening(url)
            sender = Sender(world, {"nango": f"{url}/webhooks/{world.name}-nango"})
            sender.start()
            hooks.append(sender)
            print(f"\nDemo running: open {url}/ or run  curl -s {url}/metrics\n", flush=True)

        try:
            exporter = Exporter(Collector(config), None, demo=True)
            await _serve(exporter, config.web.listen_address, started, serving, args)
        finally:
            for sender in hooks:
                await sender.stop()
            await simulator.stop()

    try:
        asyncio.run(run())
    except ConfigError as exc:
        print(f"sync-status-exporter: {exc}", file=sys.stderr)
        return 1
    return 0
