"""What one full scrape costs: the simulator in one process, the real exporter in another.

For every N (syncs) and L (injected provider latency) the simulator is started with N bulk
syncs, and the exporter CLI with a generated config; after one warm-up scrape (connections
open, as in steady state), each round runs a bare-aiohttp baseline and the raw asyncio floor
(`Floor`) over the same N URLs at the same concurrency, then one Prometheus-like scrape of
/metrics (gzip, scrape-timeout header) with a second, concurrent scrape that must be
answered from the same collection.
Medians over rounds, printed as one Markdown table; "vs bare" and "vs floor" are the median
of each round's own ratio, so a machine whose speed drifts between rounds moves both sides.
CPU comes from the kernel's accounting (/proc/PID/stat), which ticks every 10 ms, so a round
of a small N repeats the scrape (and the baseline) until it has read at least `--min-reads`
syncs, and reports the mean per scrape.

Layout (`--layout`): `providers` (default) gives each provider one source holding a third
of the syncs, with C split over the three sources (34/33/33 for C=100), so the exporter
never has more than C requests in flight; the ideal wall time is then the slowest source's
⌈n/c⌉·L, i.e. ⌈N/C⌉·L up to rounding (5.05 s instead of 5.00 s at N=10,000, C=100, L=50 ms).
`single` puts all N syncs in one Paragon source with concurrency C: exactly ⌈N/C⌉·L.

    python -m bench.scrape [--syncs 100,1000,10000] [--latency-ms 0,50] [--concurrency 100]
                           [--rounds 3] [--layout providers|single] [--min-reads 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
import orjson
import yaml

from bench.simulator_process import simulator

TICKS = os.sysconf("SC_CLK_TCK")
SCRAPE_HEADERS = {"Accept-Encoding": "gzip", "Accept": "text/plain"}

# Column headings of the table, in order; tests/test_bench.py reads the table by them.
COLUMNS: tuple[str, ...] = (
    "N",
    "L ms",
    "C",
    "wall s",
    "ideal s",
    "ratio",
    "CPU s",
    "CPU µs/sync",
    "bare µs/sync",
    "vs bare",
    "floor µs/sync",
    "vs floor",
    "bare wall s",
    "peak RSS MiB",
    "body MB",
    "gzip MB",
    "render ms",
    "2nd scrape ms",
    "sim µs/req",
    "up",
    "requests/N",
)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU of a process, all its threads, from the kernel's own accounting."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def peak_rss_mib(pid: int) -> float:
    """VmHWM: the most resident memory the process ever had."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def split(total: int, parts: int) -> list[int]:
    """`total` spread over `parts` as evenly as possible, earlier parts taking the remainder."""
    base, extra = divmod(total, parts)
    return [base + (i < extra) for i in range(parts)]


def exporter_config(
    base_url: str, syncs: int, concurrency: int, layout: str, timeout: float
) -> dict[str, Any]:
    """The exporter config for the bulk simulator: sources, their concurrency, generous limits.

    Read from the running simulator, whose Paragon signing key only it knows; every sync is
    listed (`discover=false`) so the exporter reads exactly N.
    """
    with urllib.request.urlopen(f"{base_url}/_sim/config?discover=false", timeout=30) as answer:
        config: dict[str, Any] = orjson.loads(answer.read())
    sources: list[dict[str, Any]] = config["sources"]
    if layout == "single":
        sources = [s for s in sources if s["provider"] == "paragon"]
        sources[0]["syncs"] = sources[0]["syncs"][:syncs]
    for source, width in zip(sources, split(concurrency, len(sources)), strict=True):
        source["max_concurrency"] = max(width, 1)
    for source in sources:
        source["max_syncs"] = max(syncs, 10_000)
    config["sources"] = sources
    config["collector"] = {"max_timeout": timeout, "default_timeout": timeout}
    return config


# One status read of the baseline: the source it belongs to, its URL and its headers.
Read = tuple[str, str, dict[str, str]]


def ideal_seconds(urls: Sequence[Read], config: dict[str, Any], latency: float) -> float:
    """The wall time of perfect overlap: the slowest source's ⌈reads/concurrency⌉ round trips."""
    width = {source["name"]: source["max_concurrency"] for source in config["sources"]}
    reads: dict[str, int] = {}
    for source, _, _ in urls:
        reads[source] = reads.get(source, 0) + 1
    return float(max(math.ceil(n / width[source]) for source, n in reads.items()) * latency)


def _sim_json(sim_base: str, path: str) -> Any:
    with urllib.request.urlopen(f"{sim_base}{path}", timeout=30) as answer:
        return orjson.loads(answer.read())


def sync_urls(sim_base: str, config: dict[str, Any]) -> list[Read]:
    """What one scrape's status reads request (source, URL, headers), for the bare baseline.

    Paragon syncs are read with their user's token (one per user, from the simulator), a
    Terminal connection through its latest job with its own token, Sequin's in one list.
    """
    urls: list[Read] = []
    tokens: dict[str, str] = {}
    for source in config["sources"]:
        name, provider, base = source["name"], source["provider"], source["base_url"]
        auth = source["auth"]
        if provider == "terminal":
            secret = f"Bearer {auth['token']}"
            for connection in _sim_json(sim_base, "/_sim/terminal/connections")["connections"]:
                if connection["status"] != "connected":
                    continue
                headers = {"Authorization": secret, "Connection-Token": connection["token"]}
                urls.append((name, f"{base}/syncs?limit=2&expand=issues", headers))
            continue
        for sync in source["syncs"]:
            sync_id = sync if isinstance(sync, str) else sync["id"]
            if provider == "paragon":
                user = sync["user"]
                if user not in tokens:
                    tokens[user] = _sim_json(sim_base, f"/_sim/paragon/token?user={user}")["token"]
                headers = {"Authorization": f"Bearer {tokens[user]}"}
                urls.append((name, f"{base}/api/syncs/{quote(sync_id, safe='')}", headers))
        if provider == "sequin":
            # One list answers every Sequin sync: the exporter reads that, once per scrape.
            headers = {"Authorization": f"Bearer {auth['token']}"}
            urls.append((name, f"{base}/v1/syncs", headers))
    return urls


def exporter_command(config_file: Path, port: int) -> list[str]:
    """The exporter's command line as a benchmark runs it: serving on 127.0.0.1:`port`."""
    return [
        sys.executable,
        "-m",
        "exporter",
        "--config.file",
        str(config_file),
        "--web.listen-address",
        f"127.0.0.1:{port}",
        "--log.level",
        "warn",
    ]


@contextmanager
def exporter_process(config_file: Path, log_file: Path) -> Iterator[tuple[int, str]]:
    """The exporter as users start it; yields its pid and base URL once it answers."""
    port = free_port()
    command = exporter_command(config_file, port)
    with open(log_file, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, process, log_file)
        yield process.pid, base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_healthy(base: str, process: subprocess.Popen[bytes], log_file: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exporter exited: {log_file.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{base}/-/healthy", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"exporter did not answer on {base} within 60 s")


@dataclass(slots=True)
class Scrape:
    """One scrape as Prometheus sees it: how long it took and the bytes it got."""

    seconds: float
    finished: float
    raw: bytes
    encoding: str

    def body(self) -> bytes:
        """The exposition, decompressed."""
        return gzip.decompress(self.raw) if self.encoding == "gzip" else self.raw


@dataclass(slots=True)
class Reading:
    """What the exporter says in its body: syncs up, render time, upstream requests so far."""

    up: int
    render_seconds: float
    requests_total: float


def read_body(body: bytes) -> Reading:
    """Pick the figures the table needs out of an exposition."""
    start = body.find(b"# TYPE sync_up ")
    up = body.count(b"} 1.0\n", start, body.find(b"# HELP", start)) if start >= 0 else 0
    render = requests = 0.0
    for line in body[body.find(b"# HELP sync_exporter_") :].splitlines():
        if line.startswith(b"sync_exporter_render_duration_seconds "):
            render = float(line.split()[1])
        elif line.startswith(b"sync_exporter_upstream_requests_total{"):
            requests += float(line.rsplit(b" ", 1)[1])
    return Reading(up, render, requests)


async def scrape(session: aiohttp.ClientSession, url: str, timeout: float) -> Scrape:
    """GET /metrics like Prometheus: gzip accepted, scrape timeout announced.

    The body is only read here, not parsed, so one scrape's parsing cannot delay the other's.
    """
    headers = {**SCRAPE_HEADERS, "X-Prometheus-Scrape-Timeout-Seconds": f"{timeout:g}"}
    started = time.perf_counter()
    async with session.get(url, headers=headers) as response:
        raw = await response.read()
        if response.status != 200:
            raise RuntimeError(f"/metrics answered {response.status}")
        encoding = response.headers.get("Content-Encoding", "")
    finished = time.perf_counter()
    return Scrape(finished - started, finished, raw, encoding)


async def bare_pass(
    session: aiohttp.ClientSession, urls: Sequence[Read], concurrency: int
) -> tuple[float, float]:
    """CPU and wall seconds of a plain aiohttp loop that fetches and JSON-decodes every URL."""
    pending = iter(urls)

    async def worker() -> None:
        for _, url, headers in pending:
            async with session.get(url, headers=headers) as response:
                orjson.loads(await response.read())

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.process_time() - cpu, time.perf_counter() - wall


def request_bytes(urls: Sequence[Read]) -> list[tuple[str, int, bytes]]:
    """Each read as the fixed bytes of an HTTP/1.1 GET, with the host and port it goes to."""
    requests = []
    for _, url, headers in urls:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        requests.append((host, port, ("\r\n".join(lines) + "\r\n\r\n").encode()))
    return requests


class Floor:
    """The leanest asyncio client Python allows, the floor the exporter's CPU is held against.

    Fixed request bytes on keep-alive connections (opened once, before any timing), answers
    framed by Content-Length alone, bodies decoded with json.loads: everything the exporter
    must do to read a sync, and nothing it may choose to do (TLS, redirects, retries, limits,
    chunked answers, metrics). A read that is not a 200 stops the run.
    """

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self._idle: dict[tuple[str, int], list[Connection]] = {}

    async def _connection(self, address: tuple[str, int]) -> Connection:
        idle = self._idle.setdefault(address, [])
        if idle:
            return idle.pop()
        return await asyncio.open_connection(*address)

    async def run(self, requests: Sequence[tuple[str, int, bytes]]) -> tuple[float, float]:
        """CPU and wall seconds of reading every request once, `concurrency` at a time."""
        pending = iter(requests)
        loads = json.loads

        async def worker() -> None:
            held: dict[tuple[str, int], Connection] = {}
            try:
                for host, port, data in pending:
                    address = (host, port)
                    connection = held.get(address)
                    if connection is None:
                        connection = held[address] = await self._connection(address)
                    reader, writer = connection
                    writer.write(data)
                    head = await reader.readuntil(b"\r\n\r\n")
                    start = head.find(b"Content-Length: ")
                    if not head.startswith(b"HTTP/1.1 200 ") or start < 0:
                        raise RuntimeError(f"not a 200 with Content-Length: {head[:200]!r}")
                    length = int(head[start + 16 : head.index(b"\r\n", start)])
                    loads(await reader.readexactly(length))
            finally:
                for address, connection in held.items():
                    self._idle.setdefault(address, []).append(connection)

        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(self.concurrency)))
        return time.process_time() - cpu, time.perf_counter() - wall

    async def close(self) -> None:
        """Close every connection the floor opened."""
        for idle in self._idle.values():
            for _, writer in idle:
                writer.close()
        self._idle.clear()


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@dataclass(frozen=True, slots=True)
class Settings:
    """What every case shares: the flags other than N and L."""

    concurrency: int
    rounds: int
    layout: str
    timeout: float
    min_reads: int

    def repeats(self, syncs: int) -> int:
        """Scrapes per round: enough sync reads that 10 ms CPU-accounting ticks do not matter."""
        return max(1, math.ceil(self.min_reads / syncs))


@dataclass(slots=True)
class Round:
    """One round's figures for one (N, L), per scrape (the mean over the round's repeats)."""

    wall: float
    cpu: float
    bare_cpu: float
    bare_wall: float
    floor_cpu: float
    body_bytes: int
    gzip_bytes: int
    render_ms: float
    second_ms: float
    sim_cpu: float
    up: int
    requests: float


def paired(figures: Sequence[Round], other: Callable[[Round], float]) -> float:
    """The median over rounds of the exporter's CPU against another reader's in that round."""
    ratios = [r.cpu / other(r) for r in figures if other(r) > 0]
    return float(statistics.median(ratios)) if ratios else math.nan


async def run_case(syncs: int, latency_ms: float, settings: Settings) -> dict[str, float]:
    """Start both processes for one (N, L) and return the median of every figure."""
    sim_syncs = syncs * 3 if settings.layout == "single" else syncs
    with (
        simulator(sim_syncs, latency_ms) as (sim_pid, sim_base),
        tempfile.TemporaryDirectory(prefix="bench-scrape-") as tmp,
    ):
        config = exporter_config(
            sim_base, syncs, settings.concurrency, settings.layout, settings.timeout
        )
        config_file = Path(tmp) / "exporter.yml"
        config_file.write_text(yaml.safe_dump(config, sort_keys=False))
        urls = sync_urls(sim_base, config)
        ideal = ideal_seconds(urls, config, latency_ms / 1000)
        with exporter_process(config_file, Path(tmp) / "exporter.log") as (pid, base):
            figures = await _rounds((pid, sim_pid), base + "/metrics", urls, settings)
            rss = peak_rss_mib(pid)

    def median(values: Iterator[float]) -> float:
        return float(statistics.median(values))

    wall = median(r.wall for r in figures)
    cpu = median(r.cpu for r in figures)
    bare = median(r.bare_cpu for r in figures) / syncs * 1e6
    per_sync = cpu / syncs * 1e6
    floor = median(r.floor_cpu for r in figures) / syncs * 1e6
    return {
        "N": syncs,
        "L ms": latency_ms,
        "C": settings.concurrency,
        "wall s": wall,
        "ideal s": ideal,
        "ratio": wall / ideal if ideal else math.nan,
        "CPU s": cpu,
        "CPU µs/sync": per_sync,
        "bare µs/sync": bare,
        "vs bare": paired(figures, lambda r: r.bare_cpu),
        "floor µs/sync": floor,
        "vs floor": paired(figures, lambda r: r.floor_cpu),
        "bare wall s": median(r.bare_wall for r in figures),
        "peak RSS MiB": rss,
        "body MB": median(r.body_bytes for r in figures) / 1e6,
        "gzip MB": median(r.gzip_bytes for r in figures) / 1e6,
        "render ms": median(r.render_ms for r in figures),
        "2nd scrape ms": median(r.second_ms for r in figures),
        "sim µs/req": median(r.sim_cpu for r in figures) / syncs * 1e6,
        "up": min(r.up for r in figures),
        "requests/N": median(r.requests for r in figures) / syncs,
    }


async def _rounds(
    pids: tuple[int, int],
    url: str,
    urls: Sequence[Read],
    settings: Settings,
) -> list[Round]:
    concurrency, timeout = settings.concurrency, settings.timeout
    repeats = settings.repeats(len(urls))
    client_timeout = aiohttp.ClientTimeout(total=timeout + 30)
    scraper = aiohttp.ClientSession(timeout=client_timeout, auto_decompress=False)
    bare = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency), timeout=client_timeout
    )
    floor = Floor(concurrency)
    requests = request_bytes(urls)
    async with scraper, bare:
        exporter, sim = pids
        await bare_pass(bare, urls[:concurrency], concurrency)
        await floor.run(requests[: concurrency * 3])
        previous = read_body((await scrape(scraper, url, timeout)).body()).requests_total
        results = []
        for _ in range(settings.rounds):
            sim_before = cpu_seconds(sim)
            bare_cpu = bare_wall = 0.0
            for _ in range(repeats):
                spent, elapsed = await bare_pass(bare, urls, concurrency)
                bare_cpu, bare_wall = bare_cpu + spent, bare_wall + elapsed
            sim_cpu = cpu_seconds(sim) - sim_before
            floor_cpu = 0.0
            for _ in range(repeats):
                floor_cpu += (await floor.run(requests))[0]
            walls, seconds = [], []
            before = cpu_seconds(exporter)
            for _ in range(repeats):
                first, second = await asyncio.gather(
                    scrape(scraper, url, timeout), scrape(scraper, url, timeout)
                )
                walls.append(min(first.seconds, second.seconds))
                seconds.append(abs(first.finished - second.finished))
            spent = cpu_seconds(exporter) - before
            body = first.body()
            reading, other = read_body(body), read_body(second.body())
            latest = max(reading.requests_total, other.requests_total)
            results.append(
                Round(
                    wall=statistics.median(walls),
                    cpu=spent / repeats,
                    bare_cpu=bare_cpu / repeats,
                    bare_wall=bare_wall / repeats,
                    floor_cpu=floor_cpu / repeats,
                    body_bytes=len(body),
                    gzip_bytes=len(first.raw),
                    render_ms=reading.render_seconds * 1000,
                    second_ms=statistics.median(seconds) * 1000,
                    sim_cpu=sim_cpu / repeats,
                    up=reading.up,
                    requests=(latest - previous) / repeats,
                )
            )
            previous = latest
    await floor.close()
    return results


def _cell(column: str, value: float) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "-"
    if column in ("N", "C", "up", "L ms"):
        return f"{value:,.0f}"
    if column in (
        "CPU µs/sync",
        "bare µs/sync",
        "floor µs/sync",
        "peak RSS MiB",
        "render ms",
        "2nd scrape ms",
        "sim µs/req",
    ):
        if value >= 10:
            return f"{value:,.0f}"
        return f"{value:.1f}" if value >= 1 else f"{value:.2f}"
    if column in ("ratio", "vs bare", "vs floor", "requests/N"):
        return f"{value:.2f}"
    return f"{value:.2f}" if value >= 0.1 else f"{value:.3f}"


def table(rows: Sequence[dict[str, float]]) -> str:
    """The results as one Markdown table, a row per (N, L)."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---:" for _ in COLUMNS) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_cell(c, row[c]) for c in COLUMNS) + " |")
    return "\n".join(lines)


def _numbers(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> list[int] | list[float]:
        try:
            values = [kind(part) for part in text.split(",") if part.strip()]
        except ValueError:
            message = f"expected comma-separated numbers: {text!r}"
            raise argparse.ArgumentTypeError(message) from None
        if not values or any(v < 0 for v in values):
            raise argparse.ArgumentTypeError(f"expected non-negative numbers: {text!r}")
        return values

    return parse


def main(argv: Sequence[str] | None = None) -> int:
    """Run every (N, L) case and print the table of medians."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.scrape",
        description="Measure one full scrape of the real exporter against the simulator.",
    )
    parser.add_argument("--syncs", type=_numbers(int), default=[100, 1000, 10000], metavar="N,…")
    parser.add_argument("--latency-ms", type=_numbers(float), default=[0.0, 50.0], metavar="L,…")
    parser.add_argument("--concurrency", type=int, default=100, metavar="C")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--layout", choices=["providers", "single"], default="providers")
    parser.add_argument(
        "--scrape-timeout",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="announced in X-Prometheus-Scrape-Timeout-Seconds (default 120, so N=50,000 fits)",
    )
    parser.add_argument(
        "--min-reads",
        type=int,
        default=5000,
        metavar="R",
        help="scrape ⌈R/N⌉ times per round, so small N still spans many CPU ticks (default 5000)",
    )
    args = parser.parse_args(argv)
    if min(args.concurrency, args.rounds, args.min_reads, *args.syncs) < 1:
        parser.error("--concurrency, --rounds, --min-reads and --syncs must be at least 1")
    settings = Settings(
        args.concurrency, args.rounds, args.layout, args.scrape_timeout, args.min_reads
    )
    rows = []
    for latency in args.latency_ms:
        for syncs in args.syncs:
            rows.append(asyncio.run(run_case(syncs, latency, settings)))
            print(f"done: N={syncs} L={latency:g} ms", file=sys.stderr, flush=True)
    print(
        f"rounds={args.rounds} layout={args.layout} cpus={os.cpu_count()} "
        f"python={sys.version.split()[0]}"
    )
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
