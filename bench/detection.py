"""Detection latency: from a sync failing at the provider to `/metrics` showing it errored.

The simulator (its own process) serves the demo world's Nango syncs and posts its signed
webhooks to the exporter; the exporter (as users start it) reads two sources of the same
syncs, both with `min_interval` (default 10m): one polling only, one with the webhook. A
scraper stands in for Prometheus at `--scrape-interval`. Each trial turns one sync to ERROR
at the simulator and times how long each source takes to show `sync_state{state="errored"}`;
polling alone is bounded by min_interval, so it is reported as not seen within `--wait`.

    python -m bench.detection [--trials 3] [--scrape-interval 1] [--wait 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from bench.scrape import free_port
from exporter.simulator.providers import nango

SOURCES = ("polled", "hooked")


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as answer:
        text: str = answer.read().decode()
        return text


def _override(sim: str, sync_id: str, fields: dict[str, Any]) -> None:
    data = json.dumps(fields).encode()
    request = urllib.request.Request(f"{sim}/_sim/syncs/nango/{sync_id}", data, method="PUT")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10):
        pass


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(log.read_text()[-2000:])
        try:
            _get(url)
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} not ready within 60 s")


def _errored(metrics: str, source: str, sync_id: str) -> bool:
    wanted = (f'source="{source}"', f'sync_id="{sync_id}"', 'state="errored"')
    return any(
        line.startswith("sync_state{") and all(w in line for w in wanted) and line.endswith(" 1.0")
        for line in metrics.splitlines()
    )


def _config(sim: str, min_interval: str) -> dict[str, Any]:
    def source(name: str) -> dict[str, Any]:
        return {
            "name": name,
            "provider": "generic",
            "preset": "nango",
            "base_url": f"{sim}/nango",
            "auth": {"token": nango.SECRET},
            "discover": True,
            "generic": {"list": {"params": {"provider_config_key": nango.INTEGRATION}}},
            "min_interval": min_interval,
        }

    hooked = source("hooked") | {"webhook": {"secret": nango.WEBHOOK_SECRET}}
    return {"sources": [source("polled"), hooked], "log": {"level": "error"}}


def main(argv: list[str] | None = None) -> int:
    """Run the trials and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.detection", description=__doc__)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--scrape-interval", type=float, default=1.0)
    parser.add_argument("--wait", type=float, default=20.0)
    parser.add_argument("--min-interval", default="10m")
    args = parser.parse_args(argv)
    sim_port, port = free_port(), free_port()
    sim, url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{port}"
    workdir = Path(tempfile.mkdtemp(prefix="bench-detection-"))
    config = workdir / "config.yml"
    config.write_text(yaml.safe_dump(_config(sim, args.min_interval)))
    sim_log, log = workdir / "sim.log", workdir / "exporter.log"
    sim_command = [
        sys.executable, "-m", "exporter.simulator", "--listen", f"127.0.0.1:{sim_port}",
        "--period", "24h", "--webhook-url", f"nango={url}/webhooks/hooked",
    ]  # fmt: skip
    command = [sys.executable, "-m", "exporter", "--config.file", str(config)]
    command += ["--web.listen-address", f"127.0.0.1:{port}"]
    latencies: dict[str, list[float]] = {name: [] for name in SOURCES}
    with open(sim_log, "wb") as sim_out, open(log, "wb") as out:
        simulator = subprocess.Popen(sim_command, stdout=sim_out, stderr=subprocess.STDOUT)
        exporter = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        try:
            _wait_ready(f"{sim}/_sim/requests", simulator, sim_log)
            _wait_ready(f"{url}/-/ready", exporter, log)
            metrics = _get(f"{url}/metrics")
            listing = json.loads(_get(f"{sim}/_sim/syncs"))["nango"]
            healthy = [s for s in listing if not _errored(metrics, "hooked", s)]
            healthy = [s for s in healthy if f'sync_id="{s}"' in metrics]
            for sync_id in healthy[: args.trials]:
                _override(sim, sync_id, {"status": "ERROR"})
                failed_at = time.monotonic()
                pending = set(SOURCES)
                while pending and time.monotonic() - failed_at < args.wait:
                    metrics = _get(f"{url}/metrics")
                    for name in sorted(pending):
                        if _errored(metrics, name, sync_id):
                            latencies[name].append(time.monotonic() - failed_at)
                            pending.discard(name)
                    time.sleep(args.scrape_interval)
        finally:
            for process in (exporter, simulator):
                process.terminate()
                process.wait(timeout=30)
    trials = min(args.trials, len(healthy))
    print(f"scrape interval {args.scrape_interval:g} s, min_interval {args.min_interval}\n")
    print("| mode | trials | detected | median s | max s |")
    print("|---|---|---|---|---|")
    for name, mode in (("polled", "polling only"), ("hooked", "polling + webhooks")):
        found = latencies[name]
        median = f"{statistics.median(found):.2f}" if found else f"> {args.wait:g}"
        worst = f"{max(found):.2f}" if found else "-"
        print(f"| {mode} | {trials} | {len(found)} | {median} | {worst} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
