"""Memory and GC of one replica at fleet scale: RSS after each of four scrapes, and GC pauses.

For every N the simulator serves a bulk world in its own process and the real exporter CLI
serves N Paragon syncs of it (one source, `--concurrency` requests in flight, every sync
listed), as `python -m bench.scrape --layout single` sets it up. The exporter runs with
SYNC_EXPORTER_GC_TRACE (exporter/gctrace.py), so it writes every full (gen-2) collector
pass and its duration to a file; a pass counts for a scrape when it starts inside the
scrape's window (CLOCK_MONOTONIC, shared by both processes). Four scrapes in a row; VmRSS
is read after each. Scrape seconds are the median of scrapes 2-4 (the first one opens the
connections); "growth 2→4" is RSS after scrape 4 over RSS after scrape 2.

    python -m bench.fleet [--syncs 40000,50000,100000] [--concurrency 100] [--scrapes 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp
import yaml

from bench.scrape import exporter_config, exporter_process, scrape
from bench.simulator_process import simulator
from bench.soak import rss_mib
from exporter.gctrace import ENV, read

COLUMNS: tuple[str, ...] = (
    "syncs",
    "ready s",
    "RSS ready MiB",
    "RSS 1",
    "RSS 2",
    "RSS 3",
    "RSS 4",
    "growth 2→4",
    "scrape 1 s",
    "scrape s",
    "gen-2 max ms",
    "gen-2 passes",
    "any-gen max ms",
)


async def _ready(session: aiohttp.ClientSession, base: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with session.get(f"{base}/-/ready") as response:
            if response.status == 200:
                return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"the exporter was not ready within {timeout:g} s")


async def run_case(syncs: int, concurrency: int, scrapes: int, timeout: float) -> dict[str, float]:
    """Start the simulator and the exporter for N syncs; scrape `scrapes` times; the figures."""
    with (
        simulator(syncs * 3) as (_, sim_base),
        tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp,
    ):
        config = exporter_config(sim_base, syncs, concurrency, "single", timeout)
        config_file = Path(tmp) / "exporter.yml"
        config_file.write_text(yaml.safe_dump(config, sort_keys=False))
        trace = Path(tmp) / "gc.trace"
        os.environ[ENV] = str(trace)
        started = time.monotonic()
        try:
            with exporter_process(config_file, Path(tmp) / "exporter.log") as (pid, base):
                client = aiohttp.ClientTimeout(total=timeout + 30)
                async with aiohttp.ClientSession(timeout=client, auto_decompress=False) as session:
                    await _ready(session, base, timeout)
                    ready = time.monotonic() - started
                    rss = [rss_mib(pid)]
                    windows, seconds = [], []
                    for _ in range(scrapes):
                        begin = time.monotonic()
                        result = await scrape(session, f"{base}/metrics", timeout)
                        windows.append((begin, time.monotonic()))
                        seconds.append(result.seconds)
                        rss.append(rss_mib(pid))
        finally:
            del os.environ[ENV]
        passes = read(str(trace)) if trace.exists() else []
    inside = [p for p in passes if any(a <= p[0] <= b for a, b in windows)]
    full = [p[2] for p in inside if p[1] == 2]
    row: dict[str, float] = {
        "syncs": syncs,
        "ready s": ready,
        "RSS ready MiB": rss[0],
        "growth 2→4": rss[4] / rss[2] - 1 if scrapes >= 4 else float("nan"),
        "scrape 1 s": seconds[0],
        "scrape s": statistics.median(seconds[1:]) if scrapes > 1 else seconds[0],
        "gen-2 max ms": max(full, default=0.0) * 1000,
        "gen-2 passes": len(full),
        "any-gen max ms": max((p[2] for p in inside), default=0.0) * 1000,
    }
    for number in range(1, 5):
        row[f"RSS {number}"] = rss[number] if number < len(rss) else float("nan")
    return row


def _cell(column: str, value: float) -> str:
    if value != value:
        return "-"
    if column in ("syncs", "gen-2 passes"):
        return f"{value:,.0f}"
    if column == "growth 2→4":
        return f"{value * 100:+.1f}%"
    if column.startswith("RSS") or column.endswith("ms"):
        return f"{value:,.0f}"
    return f"{value:.2f}"


def table(rows: Sequence[dict[str, float]]) -> str:
    """The results as one Markdown table, a row per N."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---:" for _ in COLUMNS) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_cell(c, row[c]) for c in COLUMNS) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run every N and print the table."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.fleet",
        description="RSS over four scrapes and GC pauses of one exporter at fleet scale.",
    )
    parser.add_argument("--syncs", default="40000,50000,100000", metavar="N,…")
    parser.add_argument("--concurrency", type=int, default=100, metavar="C")
    parser.add_argument("--scrapes", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=120.0, metavar="SECONDS")
    args = parser.parse_args(argv)
    try:
        counts = [int(part) for part in args.syncs.split(",") if part.strip()]
    except ValueError:
        parser.error(f"--syncs: expected comma-separated numbers: {args.syncs!r}")
    if not counts or min(*counts, args.concurrency) < 1 or args.scrapes < 1:
        parser.error("--syncs, --concurrency and --scrapes must be at least 1")
    rows = []
    for syncs in counts:
        rows.append(asyncio.run(run_case(syncs, args.concurrency, args.scrapes, args.timeout)))
        print(f"done: N={syncs}", file=sys.stderr, flush=True)
    print(f"scrapes={args.scrapes} cpus={os.cpu_count()} python={sys.version.split()[0]}")
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
