"""Instructions per sync read, counted by callgrind: the exporter's and the floor's, in one run.

Whole-scrape CPU on this shared machine moves by ±15% between runs, more than most changes
to the read path; an instruction count does not move with the load. Each reader runs under
`valgrind --tool=callgrind` twice against the same simulator, once scraping (or reading)
K times and once 2K times, so start-up, imports and config cancel out of the difference:
instructions per read = (I(2K) - I(K)) ÷ (K · N). The exporter is the real command line,
serving, scraped over HTTP like Prometheus; the floor is `bench.scrape.Floor` reading the
same N URLs with the same tokens. Counts are of user-space instructions only: the kernel's
socket work, the same for both, is not in them, so the ratio is larger than the CPU
ratio of `bench.scrape` and is for comparing code, not for the goal.

    python -m bench.instructions [--syncs 2000] [--scrapes 2] [--concurrency 100]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import orjson
import yaml

from bench.scrape import (
    Floor,
    exporter_command,
    exporter_config,
    free_port,
    request_bytes,
    sync_urls,
)
from bench.simulator_process import simulator

COLUMNS = ("reader", "N", "K", "instructions K", "instructions 2K", "per read", "vs floor")
# Under callgrind Python runs some 50 times slower: start-up alone takes tens of seconds.
START_TIMEOUT = 900.0


def valgrind() -> str:
    """The valgrind program, or a clear stop when it is not installed."""
    found = shutil.which("valgrind")
    if found is None:
        raise SystemExit("bench.instructions needs valgrind (apt-get install valgrind)")
    return found


def callgrind(out: Path) -> list[str]:
    """The command prefix that counts a Python process's instructions into `out`."""
    return [valgrind(), "--tool=callgrind", f"--callgrind-out-file={out}", "--quiet"]


def total_instructions(out: Path) -> int:
    """The `summary:` (or `totals:`) line of a callgrind output: instructions executed."""
    for line in out.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no instruction total in {out}")


def _get(url: str, timeout: float) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as answer:
        body: bytes = answer.read()
        return body


def exporter_run(config_file: Path, scrapes: int, out: Path, log: Path) -> int:
    """Instructions of an exporter that starts, answers one warm-up scrape and `scrapes` more."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [*callgrind(out), *exporter_command(config_file, port)]
    with open(log, "wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"exporter exited: {log.read_text()[-2000:]}")
            try:
                _get(f"{base}/-/healthy", 5)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the exporter under callgrind did not start") from None
                time.sleep(0.5)
        for _ in range(scrapes + 1):
            body = _get(f"{base}/metrics", START_TIMEOUT)
            if b"sync_up{" not in body:
                raise RuntimeError("a scrape answered no sync_up")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=START_TIMEOUT)
    return total_instructions(out)


def floor_run(requests_file: Path, reads: int, concurrency: int, out: Path) -> int:
    """Instructions of the floor reading every request once to warm up, then `reads` times."""
    command = [
        *callgrind(out),
        sys.executable,
        "-m",
        "bench.instructions",
        "--floor-child",
        str(requests_file),
        "--floor-reads",
        str(reads),
        "--concurrency",
        str(concurrency),
    ]
    subprocess.run(command, check=True, timeout=START_TIMEOUT)
    return total_instructions(out)


def floor_child(requests_file: Path, reads: int, concurrency: int) -> None:
    """Inside callgrind: the floor's passes over the requests the parent wrote."""
    requests = [
        (host, port, data.encode("latin-1"))
        for host, port, data in orjson.loads(requests_file.read_bytes())
    ]

    async def run() -> None:
        floor = Floor(concurrency)
        for _ in range(reads + 1):
            await floor.run(requests)
        await floor.close()

    asyncio.run(run())


def measure(syncs: int, scrapes: int, concurrency: int) -> list[dict[str, object]]:
    """Both readers' rows, K = `scrapes` and 2K, against one simulator."""
    rows: list[dict[str, object]] = []
    with (
        simulator(syncs * 3) as (_, sim_base),
        tempfile.TemporaryDirectory(prefix="bench-instructions-") as tmp,
    ):
        work = Path(tmp)
        config = exporter_config(sim_base, syncs, concurrency, "single", 600.0)
        config_file = work / "exporter.yml"
        config_file.write_text(yaml.safe_dump(config, sort_keys=False))
        requests = request_bytes(sync_urls(sim_base, config))
        requests_file = work / "requests.json"
        requests_file.write_bytes(
            orjson.dumps([(h, p, d.decode("latin-1")) for h, p, d in requests])
        )
        counts = {}
        for k in (scrapes, 2 * scrapes):
            counts["exporter", k] = exporter_run(
                config_file, k, work / f"exporter.{k}.out", work / f"exporter.{k}.log"
            )
            counts["floor", k] = floor_run(requests_file, k, concurrency, work / f"floor.{k}.out")
    per = {
        reader: (counts[reader, 2 * scrapes] - counts[reader, scrapes]) / (scrapes * syncs)
        for reader in ("exporter", "floor")
    }
    for reader in ("exporter", "floor"):
        rows.append(
            {
                "reader": reader,
                "N": syncs,
                "K": scrapes,
                "instructions K": counts[reader, scrapes],
                "instructions 2K": counts[reader, 2 * scrapes],
                "per read": per[reader],
                "vs floor": per[reader] / per["floor"],
            }
        )
    return rows


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(rows: Sequence[dict[str, object]]) -> str:
    """The rows as one Markdown table."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---:" for _ in COLUMNS) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row[column]) for column in COLUMNS) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__)
    parser.add_argument("--syncs", type=int, default=2000)
    parser.add_argument("--scrapes", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--floor-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--floor-reads", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.floor_child is not None:
        floor_child(args.floor_child, args.floor_reads, args.concurrency)
        return
    if args.syncs < 1 or args.scrapes < 1:
        parser.error("--syncs and --scrapes must be at least 1")
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    print(table(measure(args.syncs, args.scrapes, args.concurrency)))


if __name__ == "__main__":
    main()
