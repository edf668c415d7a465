"""`sync-status-exporter demo`: the built-in simulator and the exporter against it.

The one bridge between the exporter and the simulator: the exporter's serving code never
imports the simulator, and the simulator imports nothing of the exporter's internals.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from exporter import logs
from exporter.cli.serve import add_common_flags, listening, serve, web_security
from exporter.collect.collector import Collector
from exporter.config import DEFAULT_PORT, Config, ConfigError
from exporter.simulator import Sender, Simulator, World, demo_config
from exporter.simulator.cli import parse_period
from exporter.simulator.webhooks import hook_all
from exporter.web.app import Exporter

log = logging.getLogger("exporter")


def _period(text: str) -> float:
    try:
        return parse_period(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _demo_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sync-status-exporter demo",
        description="Start the built-in provider simulator and the exporter against it.",
    )
    add_common_flags(parser)
    parser.add_argument(
        "--period",
        type=_period,
        default=120.0,
        metavar="DURATION",
        help="length of one simulated sync lifecycle, at least 1s (default 2m)",
    )
    return parser


def _run(args: argparse.Namespace) -> int:
    try:
        serving = web_security(args.web_config_file)
    except ConfigError as exc:
        print(f"sync-status-exporter: invalid configuration\n{exc}", file=sys.stderr)
        return 1

    async def run() -> None:
        world = World.demo(period=args.period)
        simulator = Simulator(world)
        base_url = await simulator.start()
        raw = demo_config(base_url, world)
        webhook_urls = hook_all(raw, world)
        raw["web"] = {"listen_address": args.listen_address or f"127.0.0.1:{DEFAULT_PORT}"}
        raw["log"] = {"level": args.log_level or "info", "format": args.log_format or "logfmt"}
        config = Config.model_validate(raw)
        logs.setup(config.log.level, config.log.format)
        log.info("simulator started", extra={"fields": {"address": base_url}})

        # The simulator's providers send their webhooks to the exporter (signed, or to a URL
        # holding the token), moving sync_runs_total.
        hooks: list[Sender] = []

        def started(url: str) -> None:
            listening(url)
            sender = Sender(world, webhook_urls(url))
            sender.start()
            hooks.append(sender)
            print(f"\nDemo running: open {url}/ or run  curl -s {url}/metrics\n", flush=True)

        try:
            exporter = Exporter(Collector(config), None, demo=True)
            await serve(exporter, config.web.listen_address, started, serving, args)
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


def main(argv: Sequence[str]) -> int:
    """Run the demo with the arguments after `demo`."""
    return _run(_demo_parser().parse_args(argv))
