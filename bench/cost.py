"""What the exporter costs the providers, counted on the provider's side, in one run.

The simulator (its own process, bulk world) counts every request it receives per provider
and per second (`GET /_sim/requests`), and can answer 429 beyond a rate limit as a real
provider would; the exporter is the real command line in its own process, scraped like
Prometheus. Each figure of issue 10 becomes one row, with its goal:

- Sequin with discovery, 1,000 syncs: requests per sync per scrape.
- Paragon, 50 users x 20 syncs: requests per sync per scrape, without and with a
  `min_interval` of ten scrape intervals.
- An HA pair scraping at different offsets with `min_interval` = the scrape interval, against
  one Prometheus alone.
- `max_requests_per_second: 20` over 2,000 Paragon syncs scraped every 15 s (the simulator
  answering 429 beyond 20 a second): the most requests the simulator saw in any one second,
  the most scrapes any sync waited between two reads, and the 429s it sent.
- The exporter's CPU per sync read, marginal from N=200 to N=5,000, against a bare aiohttp
  fetch-and-decode loop over the same requests, measured in the same run.

    python -m bench.cost [--minutes 5] [--interval 15] [--only NAME,...] [--rounds 3] [--scale 1]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml

from bench.scrape import Read, bare_pass, cpu_seconds, free_port, scrape, sync_urls
from bench.simulator_process import simulator

SCRAPE_TIMEOUT = 10.0
_READ_AT = re.compile(rb'^sync_status_read_timestamp_seconds\{.*sync_id="([^"]+)".*\} (\S+)$', re.M)


@dataclass(frozen=True, slots=True)
class Row:
    """One figure: what was measured, its goal, and whether the goal was met."""

    figure: str
    goal: str
    measured: str
    met: bool


def sim_json(base: str, path: str) -> Any:
    """A control-API answer of the simulator."""
    with urllib.request.urlopen(f"{base}{path}", timeout=30) as answer:
        return orjson.loads(answer.read())


def reset_counts(base: str) -> None:
    """Start counting the simulator's requests from zero."""
    request = urllib.request.Request(f"{base}/_sim/requests", method="DELETE")
    with urllib.request.urlopen(request, timeout=30):
        pass


@contextmanager
def exporter(config: dict[str, Any], workdir: Path, name: str) -> Iterator[tuple[int, str]]:
    """The exporter on `config`, started as users start it; yields its pid and base URL once
    it is ready (every source's first listing done)."""
    path = workdir / f"{name}.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    command = [sys.executable, "-m", "exporter", "--config.file", str(path)]
    command += ["--web.listen-address", f"127.0.0.1:{port}", "--log.level", "error"]
    log = open(workdir / f"{name}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError((workdir / f"{name}.log").read_text()[-2000:])
            try:
                with urllib.request.urlopen(f"{base}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name}: the exporter was not ready within 120 s")
            time.sleep(0.1)
        yield process.pid, base
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def source(config: dict[str, Any], provider: str, **options: Any) -> dict[str, Any]:
    """One provider's source of the simulator's config, with options laid over it."""
    chosen = next(s for s in config["sources"] if s["provider"] == provider)
    return {"sources": [{**chosen, **options}], "collector": {"max_timeout": 60}}


async def scrapes(base: str, count: int, every: float, offset: float = 0.0) -> list[bytes]:
    """`count` scrapes `every` seconds apart after `offset`, like one Prometheus server."""
    bodies = []
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        await asyncio.sleep(offset)
        start = time.monotonic()
        for n in range(count):
            await asyncio.sleep(max(start + n * every - time.monotonic(), 0))
            bodies.append((await scrape(session, f"{base}/metrics", SCRAPE_TIMEOUT)).body())
    return bodies


def per_sync_per_scrape(sim: str, provider: str, syncs: int, scraped: int) -> float:
    """The simulator's count for `provider` divided by syncs and scrapes."""
    count: int = sim_json(sim, "/_sim/requests")["providers"][provider]
    return count / (syncs * scraped)


def sequin_bulk(sim: str, config: dict[str, Any], workdir: Path) -> list[Row]:
    """Sequin with discovery: one list page per scrape, whatever the number of syncs."""
    settings = source(config, "sequin", discover=True)
    settings["sources"][0].pop("syncs", None)
    with exporter(settings, workdir, "sequin") as (_, base):
        syncs = count_up(asyncio.run(scrapes(base, 1, 0))[0])
        reset_counts(sim)
        asyncio.run(scrapes(base, 10, 0.5))
    value = per_sync_per_scrape(sim, "sequin", syncs, 10)
    return [Row(f"Sequin, discovery, {syncs:,} syncs", "<= 0.01", f"{value:.4f}", value <= 0.01)]


def count_up(body: bytes) -> int:
    """How many syncs a body says were read (sync_up 1)."""
    return len(re.findall(rb"^sync_up\{.*\} 1\.0$", body, re.M))


def paragon_min_interval(sim: str, config: dict[str, Any], workdir: Path) -> list[Row]:
    """Paragon per sync, then with min_interval at ten scrape intervals."""
    rows = []
    every = 2.0
    users = len({sync["user"] for sync in source(config, "paragon")["sources"][0]["syncs"]})
    for label, options, goal, limit in (
        ("no min_interval", {}, "<= 1", 1.0),
        ("min_interval = 10 x scrape interval", {"min_interval": 10 * every}, "<= 0.1", 0.1),
    ):
        settings = source(config, "paragon", **options)
        syncs = len(settings["sources"][0]["syncs"])
        with exporter(settings, workdir, "paragon") as (_, base):
            asyncio.run(scrapes(base, 1, 0))
            reset_counts(sim)
            asyncio.run(scrapes(base, 30, every))
        value = per_sync_per_scrape(sim, "paragon", syncs, 30)
        figure = f"Paragon, {users} users x {syncs // users} syncs, {label}"
        rows.append(Row(figure, goal, f"{value:.3f}", value <= limit))
    return rows


def ha_pair(sim: str, config: dict[str, Any], workdir: Path) -> list[Row]:
    """Two Prometheus servers at different offsets cost what one does, with min_interval."""
    every, count = 4.0, 10
    settings = source(config, "paragon", min_interval=every)
    counted = []

    async def servers(base: str, many: int) -> None:
        await asyncio.gather(
            *(scrapes(base, count, every, offset=n * every / 2) for n in range(many))
        )

    for many in (1, 2):
        with exporter(settings, workdir, f"ha{many}") as (_, base):
            asyncio.run(scrapes(base, 1, 0))
            time.sleep(every)
            reset_counts(sim)
            asyncio.run(servers(base, many))
        counted.append(sim_json(sim, "/_sim/requests")["providers"]["paragon"])
    ratio = counted[1] / counted[0]
    measured = f"{counted[1]:,} vs {counted[0]:,} requests ({ratio:.2f}x)"
    return [
        Row("HA pair, min_interval = scrape interval", "= one Prometheus", measured, ratio <= 1.05)
    ]


def budget(
    sim: str, config: dict[str, Any], workdir: Path, minutes: float, every: float
) -> list[Row]:
    """A request budget over more syncs than it can read in one scrape."""
    rate = 20
    settings = source(config, "paragon", max_requests_per_second=rate)
    syncs = len(settings["sources"][0]["syncs"])
    count = max(2, int(minutes * 60 / every))
    with exporter(settings, workdir, "budget") as (_, base):
        reset_counts(sim)
        bodies = asyncio.run(scrapes(base, count, every))
    log = sim_json(sim, "/_sim/requests")
    busiest = log["max_per_second"]["paragon"]
    limited = log["rate_limited"]["paragon"]
    waits = longest_wait(bodies)
    bound = math.ceil(syncs / (rate * every))
    return [
        Row(
            f"budget {rate}/s, {syncs:,} syncs, {count} scrapes every {every:g} s: busiest second",
            f"<= {rate} requests",
            f"{busiest}",
            busiest <= rate,
        ),
        Row(
            "... most scrapes a sync waited for a fresh read",
            f"<= {bound}",
            f"{waits}",
            waits <= bound,
        ),
        Row("... 429s the simulator sent", "0", f"{limited}", limited == 0),
    ]


def longest_wait(bodies: Sequence[bytes]) -> int:
    """The most consecutive scrapes any sync was served without being read again."""
    last: dict[bytes, bytes] = {}
    since: dict[bytes, int] = {}
    longest = 0
    for body in bodies:
        seen = dict(_READ_AT.findall(body))
        for sync, read_at in seen.items():
            since[sync] = 1 if last.get(sync) != read_at else since.get(sync, 0) + 1
            last[sync] = read_at
            longest = max(longest, since[sync])
    return longest


def cpu_per_read(sim: str, config: dict[str, Any], workdir: Path, rounds: int) -> list[Row]:
    """Marginal CPU per sync read, N=200 to 5,000, exporter against a bare aiohttp loop."""
    settings = source(config, "paragon", max_concurrency=100)
    every_sync = settings["sources"][0]["syncs"]
    figures: dict[int, tuple[float, float]] = {}
    for n in (200, 5000):
        chosen = {
            "sources": [{**settings["sources"][0], "syncs": every_sync[:n]}],
            "collector": settings["collector"],
        }
        urls = sync_urls(sim, chosen)
        with exporter(chosen, workdir, f"cpu{n}") as (pid, base):
            figures[n] = asyncio.run(cpu_round(pid, base, urls, rounds))
    exporter_marginal = (figures[5000][0] - figures[200][0]) / 4800 * 1e6
    bare_marginal = (figures[5000][1] - figures[200][1]) / 4800 * 1e6
    ratio = exporter_marginal / bare_marginal
    measured = f"{exporter_marginal:.0f} µs vs {bare_marginal:.0f} µs bare ({ratio:.2f}x)"
    return [
        Row("CPU per sync read, marginal N=200 -> 5,000", "<= 1.5x bare", measured, ratio <= 1.5)
    ]


async def cpu_round(pid: int, base: str, urls: list[Read], rounds: int) -> tuple[float, float]:
    """Median CPU seconds of one scrape of the exporter and of one bare pass, same round."""
    connector = aiohttp.TCPConnector(limit=100)
    async with (
        aiohttp.ClientSession(connector=connector) as bare,
        aiohttp.ClientSession(auto_decompress=False) as scraper,
    ):
        await bare_pass(bare, urls, 100)
        await scrape(scraper, f"{base}/metrics", SCRAPE_TIMEOUT)
        exporter_cpu, bare_cpu = [], []
        repeats = max(1, 5000 // len(urls))
        for _ in range(rounds):
            spent = 0.0
            for _ in range(repeats):
                spent += (await bare_pass(bare, urls, 100))[0]
            bare_cpu.append(spent / repeats)
            before = cpu_seconds(pid)
            for _ in range(repeats):
                await scrape(scraper, f"{base}/metrics", SCRAPE_TIMEOUT)
            exporter_cpu.append((cpu_seconds(pid) - before) / repeats)
    return statistics.median(exporter_cpu), statistics.median(bare_cpu)


SCENARIOS = ("sequin", "paragon", "ha", "budget", "cpu")


def run(
    names: Sequence[str], minutes: float, every: float, rounds: int, scale: float = 1.0
) -> list[Row]:
    """Every chosen scenario against simulators sized for them (times `scale`), in order."""
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-cost-") as tmp:
        workdir = Path(tmp)
        if {"sequin", "paragon", "ha"} & set(names):
            # 3,000 bulk syncs: 1,000 per provider, Paragon's 20 per user over 50 users.
            with simulator(max(30, int(3000 * scale))) as (_, sim):
                config = sim_json(sim, "/_sim/config?discover=false")
                if "sequin" in names:
                    rows += sequin_bulk(sim, config, workdir)
                if "paragon" in names:
                    rows += paragon_min_interval(sim, config, workdir)
                if "ha" in names:
                    rows += ha_pair(sim, config, workdir)
        if "budget" in names:
            with simulator(max(30, int(6000 * scale)), extra=["--rate-limit", "20"]) as (_, sim):
                config = sim_json(sim, "/_sim/config?discover=false")
                rows += budget(sim, config, workdir, minutes, every)
        if "cpu" in names:
            with simulator(15000) as (_, sim):
                config = sim_json(sim, "/_sim/config?discover=false")
                rows += cpu_per_read(sim, config, workdir, rounds)
    return rows


def table(rows: Sequence[Row]) -> str:
    """The rows as one Markdown table."""
    lines = ["| figure | goal | measured | met |", "|---|---|---|---|"]
    lines += [
        f"| {r.figure} | {r.goal} | {r.measured} | {'yes' if r.met else 'NO'} |" for r in rows
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the scenarios and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.cost", description=__doc__)
    parser.add_argument("--minutes", type=float, default=5.0, help="budget scenario length")
    parser.add_argument("--interval", type=float, default=15.0, help="budget scrape interval")
    parser.add_argument("--rounds", type=int, default=3, help="CPU rounds (median)")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply the simulated syncs (tests: 0.03)"
    )
    args = parser.parse_args(argv)
    names = [name for name in args.only.split(",") if name]
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(unknown)} (known: {', '.join(SCENARIOS)})")
    sys.stdout.write(table(run(names, args.minutes, args.interval, args.rounds, args.scale)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
