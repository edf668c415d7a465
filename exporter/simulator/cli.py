"""Command line of the standalone simulator (`python -m exporter.simulator`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import signal
import sys
from collections.abc import Sequence
from typing import Any

from exporter.simulator.app import Simulator, url_host
from exporter.simulator.clock import duration
from exporter.simulator.config import config_yaml, demo_config
from exporter.simulator.providers import PROVIDERS
from exporter.simulator.webhooks import Sender
from exporter.simulator.world import DEFAULT_PERIOD, World

DEFAULT_LISTEN = "127.0.0.1:9870"
MIN_PERIOD = 1.0


def parse_listen(value: str) -> tuple[str, int]:
    """`host:port` (IPv6 hosts in brackets) as a pair; ValueError if it is not one."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    return host or "127.0.0.1", int(port)


def _listen(value: str) -> tuple[str, int]:
    try:
        return parse_listen(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _count(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value!r}")
    return int(value)


def _seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not number >= 0 or number == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {value!r}")
    return number


def parse_period(text: str) -> float:
    """A lifecycle period in seconds, from `30`, `30s` or `2m`; ValueError says what is wrong.

    Under a second, states would change faster than any scrape could see them.
    """
    seconds = duration(text)
    if seconds is None:
        try:
            seconds = float(text)
        except ValueError:
            seconds = math.nan
    if not math.isfinite(seconds):
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 2m, or seconds)")
    if seconds <= 0:
        raise ValueError(f"must be positive: {text!r}")
    if seconds < MIN_PERIOD:
        raise ValueError(
            f"must be at least 1s: {text!r} (states would change faster than a scrape sees them)"
        )
    return seconds


def _period(text: str) -> float:
    try:
        return parse_period(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _webhook_url(text: str) -> tuple[str, str]:
    name, sep, url = text.partition("=")
    if not sep or not url.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"expected PROVIDER=http(s)://..., got {text!r}")
    return name, url


def build_parser() -> argparse.ArgumentParser:
    """The simulator's flags."""
    parser = argparse.ArgumentParser(
        prog="python -m exporter.simulator",
        description="Fake sync-status APIs (Paragon, Terminal, Sequin, and what the generic "
        "provider reads) for demos, tests and load.",
    )
    parser.add_argument(
        "--listen",
        type=_listen,
        default=DEFAULT_LISTEN,
        metavar="HOST:PORT",
        help=f"address to serve on; port 0 picks a free one (default {DEFAULT_LISTEN})",
    )
    parser.add_argument(
        "--syncs",
        type=_count,
        default=0,
        metavar="N",
        help="serve N bulk syncs (bulk-<provider>-NNNNNN, split over the providers; Terminal's "
        "are connections) instead of the demo world; 0 (default) serves the demo world",
    )
    parser.add_argument(
        "--latency-ms",
        type=_seconds,
        default=0.0,
        metavar="L",
        help="milliseconds added to every provider response (default 0)",
    )
    parser.add_argument(
        "--rate-limit",
        type=_count,
        default=0,
        metavar="N",
        help="answer 429 (Retry-After: 1) to a provider's requests beyond N within one second, "
        "as a provider's own rate limit would (default 0: no limit)",
    )
    parser.add_argument(
        "--period",
        type=_period,
        default=DEFAULT_PERIOD,
        metavar="DURATION",
        help="length of one full lifecycle cycle, at least 1s: seconds or a duration such as "
        f"2m (default {DEFAULT_PERIOD:g})",
    )
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="print an exporter YAML config for this simulator at --listen, and exit "
        "(with --paragon-key, a server started with the same file accepts its tokens)",
    )
    parser.add_argument(
        "--static-config",
        action="store_true",
        help="with --print-config: list every sync instead of letting the exporter discover "
        "them (Terminal is always discovered)",
    )
    parser.add_argument(
        "--webhook-url",
        action="append",
        default=[],
        type=_webhook_url,
        metavar="PROVIDER=URL",
        help="send PROVIDER's webhooks (signed as it signs them) to URL when its runs end, "
        "e.g. nango=http://127.0.0.1:9869/webhooks/demo-nango (repeatable; nango, paragon, "
        "terminal, fivetran, merge; give paragon's and terminal's URL its ?token=)",
    )
    for provider in PROVIDERS.values():
        provider.add_arguments(parser)
    return parser


def _world(args: argparse.Namespace) -> World:
    options: dict[str, Any] = {}
    for provider in PROVIDERS.values():
        options.update(provider.options_from(args))
    if args.syncs:
        return World.bulk(args.syncs, args.period, **options)
    return World.demo(args.period, **options)


async def _serve(sim: Simulator, host: str, port: int, hooks: dict[str, str]) -> None:
    url = await sim.start(host, port)
    print(f"simulator listening on {url}", flush=True)
    sender = Sender(sim.world, hooks) if hooks else None
    if sender is not None:
        sender.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        if sender is not None:
            await sender.stop()
        await sim.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulator in the foreground until SIGINT/SIGTERM, or print a config."""
    parser = build_parser()
    args = parser.parse_args(argv)
    host, port = args.listen
    try:
        world = _world(args)
        Sender(world, dict(args.webhook_url))
    except (OSError, ValueError) as exc:
        parser.error(str(exc))
    if args.print_config:
        if port == 0:
            parser.error("--print-config needs a fixed port in --listen")
        base_url = f"http://{url_host(host)}:{port}"
        config = demo_config(base_url, world, discover=not args.static_config)
        sys.stdout.write(config_yaml(config))
        return 0
    with contextlib.suppress(KeyboardInterrupt):
        simulator = Simulator(world, args.latency_ms / 1000, rate_limit=args.rate_limit or None)
        asyncio.run(_serve(simulator, host, port, dict(args.webhook_url)))
    return 0
