"""Command line: serve, --once, --config.check, and the self-contained demo."""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from exporter import __version__, gctrace, logs
from exporter.cli.serve import (
    Serving,
    add_common_flags,
    duration_arg,
    listening,
    positive_arg,
    serve,
    web_security,
)
from exporter.collect.collector import Collector
from exporter.config import (
    Config,
    ConfigError,
    Overrides,
    load_config,
)
from exporter.exposition.metrics import RUN_FAMILIES, SYNC_FAMILIES
from exporter.exposition.render import provider_families
from exporter.providers import PROVIDER_FAMILIES, PROVIDERS
from exporter.transport.client import tls_context
from exporter.web.app import Exporter

log = logging.getLogger("exporter")

DEFAULT_CONFIG = "sync-status-exporter.yml"
# promtool's convention: 1 when the input is invalid, 3 when it is valid but a check failed.
EXIT_DOWN = 3
MAX_NAMED_DOWN = 10
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
_ESCAPE = re.compile(r"\\(.)")


def _index(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"not a whole number from 0: {text!r}")
    return int(text)


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
    add_common_flags(parser)
    parser.add_argument(
        "--collector.request-timeout",
        dest="request_timeout",
        type=duration_arg,
        metavar="DURATION",
        help="timeout of one request to a provider (config: collector.request_timeout, 5s)",
    )
    parser.add_argument(
        "--collector.max-concurrency",
        dest="max_concurrency",
        type=positive_arg,
        metavar="N",
        help="concurrent requests per source (config: collector.max_concurrency, 20)",
    )
    parser.add_argument(
        "--collector.timeout-offset",
        dest="timeout_offset",
        type=duration_arg,
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
        type=positive_arg,
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `sync-status-exporter` console script."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["demo"]:
        # Imported here: only the demo reaches the simulator, which serving never needs.
        from exporter.cli.demo import main as demo

        return demo(arguments[1:])
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
        serving = web_security(args.web_config_file)
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
    address = config.web.listen_address
    exposed = exposed_families(config)

    def applied(fresh: Config) -> None:
        logs.setup(fresh.log.level, fresh.log.format)
        if fresh.collector.families != selection[0]:
            selection[0] = fresh.collector.families
            exposed = exposed_families(fresh)
            log.info("per-sync families changed", extra={"fields": {"exposed": exposed}})
        if fresh.web.listen_address != address:
            log.warning(
                "web.listen_address changed; restart the exporter to apply it",
                extra={"fields": {"listening": address}},
            )

    exporter = Exporter(Collector(config), load, applied)
    del config

    def started(url: str) -> None:
        listening(url)
        log.info("per-sync families", extra={"fields": {"exposed": exposed}})

    await serve(exporter, address, started, serving, args)
