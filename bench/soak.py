"""A soak: the real exporter scraped like Prometheus for minutes while its providers churn and fail.

The simulator serves a bulk world (`--syncs`) in its own process; the exporter CLI runs in
another, discovering every source on a short interval. Meanwhile this script, as Prometheus
would, scrapes `/metrics` every `--scrape-interval` seconds (gzip, scrape-timeout header),
and through the simulator's control API creates ad-hoc syncs (Paragon and Sequin syncs,
Terminal connections) and deletes the oldest, and injects faults (5xx, 401, 429 with each
Retry-After form, hangs past the request timeout, truncated and wrongly shaped bodies) on
single syncs and whole providers. Every `--minutes` / `--rows` it prints a row: the
exporter's RSS, open descriptors, series and syncs in the last scrape, scrape latency
percentiles, failed scrapes (non-200 or no answer within the timeout) and CPU. A leak shows
as RSS, descriptors or series that keep growing while the syncs stay level.

    python -m bench.soak [--minutes 5] [--syncs 500] [--rows 10] [--scrape-interval 2]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import itertools
import math
import os
import sys
import tempfile
import time
import urllib.request
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml

from bench.scrape import cpu_seconds, exporter_process
from bench.simulator_process import simulator
from exporter.simulator.providers.base import bulk_id
from exporter.simulator.world import bulk_counts

# Column headings of the table, in order; tests/test_soak.py reads the table by them.
COLUMNS: tuple[str, ...] = (
    "min",
    "RSS MiB",
    "fds",
    "series",
    "syncs",
    "up",
    "scrapes",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "non-200",
    "CPU %",
    "ad-hoc",
    "faults",
)
PROVIDERS = ("paragon", "terminal", "sequin")
REQUEST_TIMEOUT = 2.0
# A 429 without a usable wait stops a whole source this long (30 s by default, too long here).
DEFAULT_RETRY_AFTER = 5.0
# Each fault's kind and whether it hits the whole provider (its listing included) or one sync.
FAULTS: tuple[tuple[dict[str, Any], bool], ...] = (
    ({"status": 500, "times": 3}, False),
    ({"status": 429, "retry_after": "1", "times": 1}, True),
    ({"delay": REQUEST_TIMEOUT + 1, "times": 2}, False),
    ({"malformed": True, "times": 3}, False),
    ({"status": 401, "times": 4}, True),
    ({"wrong_shape": "list", "times": 3}, False),
    ({"status": 429, "retry_after": "0.5", "retry_after_header": False, "times": 1}, True),
    ({"status": 503, "times": 2}, True),
    ({"wrong_shape": "missing_status", "times": 3}, False),
    ({"status": 429, "retry_after": "http-date", "times": 1}, True),
    ({"status": 429, "times": 1}, False),
)
PARAGON_BODIES: tuple[dict[str, Any], ...] = (
    {"status": "ACTIVE", "summary": {"totalRecords": 100, "syncedRecordsCount": 40}},
    {"status": "IDLE", "summary": {"lastSyncedAt": "2024-05-01T00:00:00Z"}},
    {"status": "ERRORED", "summary": {}},
    {"status": "RATE_LIMITED", "summary": {}, "rateLimitBackoffMs": 30000},
)


@dataclass(slots=True)
class Scrape:
    """One scrape as Prometheus saw it."""

    at: float
    seconds: float
    ok: bool
    series: int = 0
    syncs: int = 0
    up: int = 0


@dataclass(slots=True)
class Churn:
    """What the churn did so far: ad-hoc syncs alive per provider, and counts."""

    live: dict[str, deque[str]] = field(default_factory=lambda: {p: deque() for p in PROVIDERS})
    created: int = 0
    removed: int = 0
    faults: int = 0
    refused: int = 0

    @property
    def alive(self) -> int:
        """Ad-hoc syncs that exist now."""
        return sum(len(ids) for ids in self.live.values())


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (`share` in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(math.ceil(share / 100 * len(ordered)) - 1, 0)]


def rss_mib(pid: int) -> float:
    """VmRSS: the resident memory of the process now."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def open_fds(pid: int) -> int:
    """File descriptors the process holds open."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def exporter_config(sim_base: str, discover_interval: float) -> dict[str, Any]:
    """The simulator's own config for its world, every source discovering on a short interval."""
    config: dict[str, Any] = _get_json_sync(f"{sim_base}/_sim/config")
    for source in config["sources"]:
        source["discover"] = True
        source["discover_interval"] = f"{discover_interval:g}s"
    config["collector"] = {
        "request_timeout": f"{REQUEST_TIMEOUT:g}s",
        "default_retry_after": f"{DEFAULT_RETRY_AFTER:g}s",
    }
    return config


def _get_json_sync(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as answer:
        return orjson.loads(answer.read())


def count_series(body: bytes) -> tuple[int, int, int]:
    """Series, sync_up series and sync_up series at 1 in an exposition."""
    series = syncs = up = 0
    for line in body.splitlines():
        if not line or line.startswith(b"#"):
            continue
        series += 1
        if line.startswith(b"sync_up{"):
            syncs += 1
            up += line.endswith(b" 1.0")
    return series, syncs, up


async def scrape_once(session: aiohttp.ClientSession, url: str, timeout: float) -> Scrape:
    """GET /metrics as Prometheus does; a scrape that fails or outlasts its timeout is not ok."""
    headers = {
        "Accept-Encoding": "gzip",
        "Accept": "text/plain",
        "X-Prometheus-Scrape-Timeout-Seconds": f"{timeout:g}",
    }
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            async with session.get(url, headers=headers) as response:
                raw = await response.read()
                status = response.status
                encoding = response.headers.get("Content-Encoding", "")
    except (TimeoutError, aiohttp.ClientError):
        return Scrape(time.monotonic(), time.perf_counter() - started, ok=False)
    seconds = time.perf_counter() - started
    if status != 200:
        return Scrape(time.monotonic(), seconds, ok=False)
    body = gzip.decompress(raw) if encoding == "gzip" else raw
    return Scrape(time.monotonic(), seconds, True, *count_series(body))


async def scraper(
    session: aiohttp.ClientSession, url: str, interval: float, timeout: float, out: list[Scrape]
) -> None:
    """Scrape on a fixed schedule, like Prometheus: the next one starts on time, not after."""
    started = time.monotonic()
    for tick in itertools.count(1):
        out.append(await scrape_once(session, url, timeout))
        await asyncio.sleep(max(started + tick * interval - time.monotonic(), 0))


def ad_hoc(provider: str, number: int, first_user: str) -> tuple[str, str, dict[str, Any]]:
    """The control request that creates the `number`-th ad-hoc sync of `provider`."""
    if provider == "terminal":
        sync_id = f"conn_soak_{number:06d}"
        payload: dict[str, Any] = {"id": sync_id, "tags": ["soak"], "cadence": number % 2 == 0}
        return sync_id, "/_sim/terminal/connections", payload
    if provider == "paragon":
        sync_id = f"soak-paragon-{number:06d}"
        body = dict(PARAGON_BODIES[number % len(PARAGON_BODIES)])
        if body["status"] == "ERRORED":
            body["reason"] = f"Soak failure number {number}: credential revoked"
        payload = {"id": sync_id, "user": first_user, "body": body}
        return sync_id, "/_sim/syncs/paragon", payload
    sync_id = f"soak-sequin-{number:06d}"
    health = ("healthy", "warn", "error", f"status-{number % 7}")[number % 4]
    body = {
        "id": sync_id,
        "status": "disabled" if number % 5 == 0 else "active",
        "name": f"Soak sync {number}",
        "health": {"status": health, "credential": {"status": health, "notes": f"n{number}"}},
        "sync_frequency": "5m",
        "initial_backfill_completed_at": "2024-05-01 00:00:00",
    }
    return sync_id, "/_sim/syncs/sequin", {"id": sync_id, "body": body}


def removal(provider: str, sync_id: str) -> str:
    """The control path that deletes an ad-hoc sync."""
    if provider == "terminal":
        return f"/_sim/terminal/connections/{sync_id}"
    return f"/_sim/syncs/{provider}/{sync_id}?remove=true"


async def churner(
    session: aiohttp.ClientSession,
    sim: str,
    syncs: int,
    settings: Settings,
    churn: Churn,
) -> None:
    """Delete the oldest ad-hoc sync at the pool's size, create one each tick, inject faults.

    Deleting before creating keeps the live count within the pool even while a request is
    in flight, so a table row read at any moment never shows pool + 1.
    """
    counts = dict(zip(PROVIDERS, bulk_counts(syncs, len(PROVIDERS)), strict=True))
    project = await _json(session, "GET", f"{sim}/_sim/paragon")
    first_user = next(iter(project["users"]), "sim-user")
    faults = itertools.cycle(FAULTS)
    next_fault = time.monotonic() + settings.fault_every
    for number in itertools.count(1):
        provider = PROVIDERS[number % len(PROVIDERS)]
        while len(churn.live[provider]) >= settings.pool:
            if await _ok(session, "DELETE", sim + removal(provider, churn.live[provider][0])):
                churn.removed += 1
            churn.live[provider].popleft()
        sync_id, path, payload = ad_hoc(provider, number, first_user)
        if await _ok(session, "POST", sim + path, payload):
            churn.live[provider].append(sync_id)
            churn.created += 1
        if time.monotonic() >= next_fault:
            next_fault += settings.fault_every
            fault, whole = next(faults)
            target = PROVIDERS[churn.faults % len(PROVIDERS)]
            where = f"{sim}/_sim/faults/{target}"
            if not whole and counts[target]:
                where += "/" + bulk_id(target, 1 + churn.faults * 7 % counts[target])
            churn.faults += 1
            if fault.get("retry_after") == "http-date":
                fault = {**fault, "retry_after": formatdate(time.time() + 2, usegmt=True)}
            if not await _ok(session, "PUT", where, fault):
                churn.refused += 1
        await asyncio.sleep(settings.churn_every)


async def _json(session: aiohttp.ClientSession, method: str, url: str) -> Any:
    async with session.request(method, url) as response:
        response.raise_for_status()
        return orjson.loads(await response.read())


async def _ok(session: aiohttp.ClientSession, method: str, url: str, payload: Any = None) -> bool:
    async with session.request(method, url, json=payload) as response:
        await response.read()
        return response.status in (200, 201)


@dataclass(frozen=True, slots=True)
class Settings:
    """The run's flags."""

    minutes: float
    syncs: int
    rows: int
    scrape_interval: float
    scrape_timeout: float
    latency_ms: float
    discover_interval: float
    churn_every: float
    pool: int
    fault_every: float


def row(
    minute: float,
    pid: int,
    window: Sequence[Scrape],
    last: Scrape | None,
    cpu: float,
    churn: Churn,
    faults: int,
) -> dict[str, float]:
    """One line of the table: the exporter now, and the scrapes since the previous line."""
    seconds = [s.seconds * 1000 for s in window if s.ok]
    return {
        "min": minute,
        "RSS MiB": rss_mib(pid),
        "fds": open_fds(pid),
        "series": last.series if last else math.nan,
        "syncs": last.syncs if last else math.nan,
        "up": last.up if last else math.nan,
        "scrapes": len(window),
        "p50 ms": percentile(seconds, 50),
        "p95 ms": percentile(seconds, 95),
        "p99 ms": percentile(seconds, 99),
        "non-200": sum(not s.ok for s in window),
        "CPU %": cpu,
        "ad-hoc": churn.alive,
        "faults": faults,
    }


def _cell(column: str, value: float) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "-"
    if column == "min":
        return f"{value:.2f}"
    if column in ("RSS MiB", "CPU %") or column.endswith(" ms"):
        return f"{value:,.1f}"
    return f"{value:,.0f}"


def table_header() -> str:
    """The Markdown table's heading lines."""
    return "| " + " | ".join(COLUMNS) + " |\n|" + "|".join("---:" for _ in COLUMNS) + "|"


def table_row(values: dict[str, float]) -> str:
    """One Markdown table line."""
    return "| " + " | ".join(_cell(c, values[c]) for c in COLUMNS) + " |"


async def soak(settings: Settings) -> int:
    """Run the simulator, the exporter, the scraper and the churn; print a row per period."""
    extra = ["--period", "120"]
    with (
        simulator(settings.syncs, settings.latency_ms, extra) as (_, sim_base),
        tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp,
    ):
        config_file = Path(tmp) / "exporter.yml"
        config = exporter_config(sim_base, settings.discover_interval)
        config_file.write_text(yaml.safe_dump(config, sort_keys=False))
        with exporter_process(config_file, Path(tmp) / "exporter.log") as (pid, base):
            async with aiohttp.ClientSession(auto_decompress=False) as session:
                await _ready(session, base)
                return await _run(session, settings, pid, base, sim_base)


async def _ready(session: aiohttp.ClientSession, base: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        async with session.get(f"{base}/-/ready") as response:
            if response.status == 200:
                return
        await asyncio.sleep(0.1)
    raise RuntimeError("the exporter was not ready within 60 s")


async def _run(
    session: aiohttp.ClientSession, settings: Settings, pid: int, base: str, sim_base: str
) -> int:
    scrapes: list[Scrape] = []
    churn = Churn()
    tasks = [
        asyncio.create_task(
            scraper(
                session,
                f"{base}/metrics",
                settings.scrape_interval,
                settings.scrape_timeout,
                scrapes,
            )
        ),
        asyncio.create_task(churner(session, sim_base, settings.syncs, settings, churn)),
    ]
    print(
        f"soak: minutes={settings.minutes:g} syncs={settings.syncs} "
        f"scrape_interval={settings.scrape_interval:g}s latency={settings.latency_ms:g}ms "
        f"cpus={os.cpu_count()} python={sys.version.split()[0]}",
        flush=True,
    )
    print(table_header(), flush=True)
    period = settings.minutes * 60 / settings.rows
    started = time.monotonic()
    seen = faults_before = 0
    cpu_before, cpu_at = cpu_seconds(pid), time.monotonic()
    try:
        for index in range(1, settings.rows + 1):
            await asyncio.sleep(max(started + index * period - time.monotonic(), 0))
            for task in tasks:
                if task.done():
                    task.result()
            now, cpu = time.monotonic(), cpu_seconds(pid)
            usage = (cpu - cpu_before) / max(now - cpu_at, 1e-9) * 100
            cpu_before, cpu_at = cpu, now
            window = scrapes[seen:]
            seen = len(scrapes)
            last = next((s for s in reversed(scrapes) if s.ok), None)
            values = row(
                (now - started) / 60, pid, window, last, usage, churn, churn.faults - faults_before
            )
            faults_before = churn.faults
            print(table_row(values), flush=True)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    times = [s.seconds * 1000 for s in scrapes if s.ok]
    print(
        f"whole run: scrapes={len(scrapes)} non-200={sum(not s.ok for s in scrapes)} "
        f"p50={percentile(times, 50):.1f}ms p95={percentile(times, 95):.1f}ms "
        f"p99={percentile(times, 99):.1f}ms created={churn.created} removed={churn.removed} "
        f"faults={churn.faults} refused={churn.refused}",
        flush=True,
    )
    return 0


def _positive(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number: {text!r}") from None
        if not value > 0 or not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a positive number: {text!r}")
        return value

    return parse


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the flags and run the soak."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak",
        description="Scrape the real exporter for minutes while the simulated providers churn.",
    )
    parser.add_argument("--minutes", type=_positive(float), default=5.0)
    parser.add_argument("--syncs", type=_positive(int), default=500, metavar="N")
    parser.add_argument("--rows", type=_positive(int), default=10, help="table lines (default 10)")
    parser.add_argument("--scrape-interval", type=_positive(float), default=2.0, metavar="S")
    parser.add_argument("--scrape-timeout", type=_positive(float), default=10.0, metavar="S")
    parser.add_argument("--latency-ms", type=float, default=20.0, metavar="L")
    parser.add_argument("--discover-interval", type=_positive(float), default=10.0, metavar="S")
    parser.add_argument(
        "--churn-every",
        type=_positive(float),
        default=1.0,
        metavar="S",
        help="create an ad-hoc sync this often, rotating over the providers (default 1 s)",
    )
    parser.add_argument(
        "--pool",
        type=_positive(int),
        default=30,
        help="ad-hoc syncs kept per provider; the oldest beyond it are deleted (default 30)",
    )
    parser.add_argument("--fault-every", type=_positive(float), default=5.0, metavar="S")
    args = parser.parse_args(argv)
    settings = Settings(
        args.minutes,
        args.syncs,
        args.rows,
        args.scrape_interval,
        args.scrape_timeout,
        max(args.latency_ms, 0.0),
        args.discover_interval,
        args.churn_every,
        args.pool,
        args.fault_every,
    )
    return asyncio.run(soak(settings))


if __name__ == "__main__":
    raise SystemExit(main())
