"""Which HTTP client transport should the exporter use? CPU per request, measured.

Starts the simulator in its own process, then fetches and JSON-decodes the same sync URLs
with httpx's default transport, httpx on the httpx-aiohttp transport, bare aiohttp and the
exporter's own client (`exporter/transport/http1.py`), at the same concurrency, and prints the
client CPU per request (median of several rounds).

    python -m bench.http_transport [--requests 2000] [--concurrency 100] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import urllib.request
from collections.abc import Awaitable, Callable, Sequence

import aiohttp
import httpx
import orjson
from httpx_aiohttp import AiohttpTransport

from bench.simulator_process import simulator_process
from exporter.simulator import bulk_id
from exporter.transport.client import make_client, tls_context

Fetch = Callable[[str], Awaitable[object]]
USER = "bulk-user-0001"


def user_token(base: str) -> str:
    """A Paragon user token for `USER`, who owns every bulk sync, minted by the simulator."""
    url = f"{base}/_sim/paragon/token?user={USER}&ttl=86400"
    with urllib.request.urlopen(url, timeout=30) as answer:
        token: str = orjson.loads(answer.read())["token"]
    return token


async def _drive(fetch: Fetch, urls: Sequence[str], concurrency: int) -> None:
    pending = iter(urls)

    async def worker() -> None:
        for url in pending:
            await fetch(url)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _measure(
    kind: str, urls: Sequence[str], concurrency: int, headers: dict[str, str]
) -> tuple[float, float]:
    """Client CPU seconds and wall seconds for one pass over `urls`."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    if kind == "exporter":
        ours = make_client(tls_context())

        async def fetch_ours(url: str) -> object:
            return orjson.loads((await ours.get(url, headers, limit=1 << 22, timeout=30)).body)

        try:
            await _drive(fetch_ours, urls[:concurrency], concurrency)
            cpu, wall = time.process_time(), time.perf_counter()
            await _drive(fetch_ours, urls, concurrency)
            return time.process_time() - cpu, time.perf_counter() - wall
        finally:
            await ours.close()
    if kind == "aiohttp":
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

            async def fetch_aiohttp(url: str) -> object:
                async with session.get(url) as response:
                    return orjson.loads(await response.read())

            await _drive(fetch_aiohttp, urls[:concurrency], concurrency)
            cpu, wall = time.process_time(), time.perf_counter()
            await _drive(fetch_aiohttp, urls, concurrency)
            return time.process_time() - cpu, time.perf_counter() - wall
    transport = AiohttpTransport(limits=limits) if kind == "httpx+aiohttp" else None
    async with httpx.AsyncClient(limits=limits, transport=transport, headers=headers) as client:

        async def fetch_httpx(url: str) -> object:
            return orjson.loads((await client.get(url)).content)

        await _drive(fetch_httpx, urls[:concurrency], concurrency)
        cpu, wall = time.process_time(), time.perf_counter()
        await _drive(fetch_httpx, urls, concurrency)
        return time.process_time() - cpu, time.perf_counter() - wall


def main(argv: Sequence[str] | None = None) -> int:
    """Print one table: transport, median CPU µs per request, wall, ratio to bare aiohttp."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    kinds = ("httpx", "httpx+aiohttp", "aiohttp", "exporter")
    cpu: dict[str, list[float]] = {kind: [] for kind in kinds}
    wall: dict[str, list[float]] = {kind: [] for kind in kinds}
    one_user = ["--paragon-syncs-per-user", str(max(args.requests, 1))]
    with simulator_process(syncs=args.requests * 3, extra=one_user) as base:
        headers = {"Authorization": f"Bearer {user_token(base)}"}
        urls = [
            f"{base}/paragon/api/syncs/{bulk_id('paragon', i + 1)}" for i in range(args.requests)
        ]
        for _ in range(args.rounds):
            for kind in kinds:
                spent, elapsed = asyncio.run(_measure(kind, urls, args.concurrency, headers))
                cpu[kind].append(spent / args.requests * 1e6)
                wall[kind].append(elapsed)
    baseline = statistics.median(cpu["aiohttp"])
    print(f"requests={args.requests} concurrency={args.concurrency} rounds={args.rounds}")
    print(f"| {'transport':<14} | {'CPU µs/request':>14} | {'wall s':>7} | {'x aiohttp':>9} |")
    print(f"|{'-' * 16}|{'-' * 16}|{'-' * 9}|{'-' * 11}|")
    for kind in kinds:
        median = statistics.median(cpu[kind])
        print(
            f"| {kind:<14} | {median:>14.0f} | {statistics.median(wall[kind]):>7.2f} "
            f"| {median / baseline:>9.2f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
