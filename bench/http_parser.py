"""Does llhttp framing cost more CPU than the hand-written parser it replaced? Measured.

Loads `exporter/transport/http1.py` as it is on `main` (or another revision: `--baseline`) into a
module of its own, starts the simulator in its own process, then fetches and JSON-decodes
the same Paragon sync URLs with the baseline's client and with today's, alternating the two
in each round, and prints the client CPU per request (median of the rounds) and the ratio.

    python -m bench.http_parser [--requests 3000] [--concurrency 50] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson

from bench.http_transport import USER, _drive, user_token
from bench.simulator_process import simulator_process
from exporter.simulator import bulk_id
from exporter.transport import http1
from exporter.transport.client import USER_AGENT, tls_context

ROOT = Path(__file__).resolve().parent.parent


def baseline_module(revision: str, directory: Path) -> ModuleType:
    """`exporter/transport/http1.py` at `revision` (`exporter/http1.py` before the packages),
    imported under a name of its own."""
    for where in ("exporter/transport/http1.py", "exporter/http1.py"):
        shown = subprocess.run(
            ["git", "show", f"{revision}:{where}"], cwd=ROOT, capture_output=True, check=False
        )
        if shown.returncode == 0:
            break
    shown.check_returncode()
    source = shown.stdout
    path = directory / "http1_baseline.py"
    path.write_bytes(source)
    spec = importlib.util.spec_from_file_location("http1_baseline", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def _measure(
    module: Any, urls: Sequence[str], concurrency: int, headers: dict[str, str]
) -> float:
    """Client CPU seconds for one pass over `urls`, after a warm-up that opens connections."""
    client = module.Client(tls_context(), USER_AGENT)

    async def fetch(url: str) -> object:
        return orjson.loads((await client.get(url, headers, limit=1 << 22, timeout=30)).body)

    try:
        await _drive(fetch, urls[:concurrency], concurrency)
        cpu = time.process_time()
        await _drive(fetch, urls, concurrency)
        return time.process_time() - cpu
    finally:
        await client.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Print one table: client, median CPU µs per request, its spread, ratio to the baseline."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--baseline", default="main", help="git revision of the old parser")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as directory:
        clients = {
            f"{args.baseline}:exporter/transport/http1.py": baseline_module(
                args.baseline, Path(directory)
            )
        }
        clients["this tree"] = http1
        cpu: dict[str, list[float]] = {name: [] for name in clients}
        one_user = ["--paragon-syncs-per-user", str(max(args.requests, 1))]
        with simulator_process(syncs=args.requests * 3, extra=one_user) as base:
            headers = {"Authorization": f"Bearer {user_token(base)}"}
            urls = [
                f"{base}/paragon/api/syncs/{bulk_id('paragon', i + 1)}"
                for i in range(args.requests)
            ]
            for round_index in range(args.rounds):
                # Alternate which goes first, so neither always runs on a warmer machine.
                order = list(clients) if round_index % 2 == 0 else list(reversed(clients))
                for name in order:
                    spent = asyncio.run(_measure(clients[name], urls, args.concurrency, headers))
                    cpu[name].append(spent / args.requests * 1e6)
    names = list(clients)
    baseline = statistics.median(cpu[names[0]])
    print(
        f"requests={args.requests} concurrency={args.concurrency} rounds={args.rounds} user={USER}"
    )
    print(f"| {'client':<26} | {'CPU µs/request':>14} | {'min-max':>11} | {'x baseline':>10} |")
    print(f"|{'-' * 28}|{'-' * 16}|{'-' * 13}|{'-' * 12}|")
    for name in names:
        median = statistics.median(cpu[name])
        spread = f"{min(cpu[name]):.0f}-{max(cpu[name]):.0f}"
        print(f"| {name:<26} | {median:>14.0f} | {spread:>11} | {median / baseline:>10.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
