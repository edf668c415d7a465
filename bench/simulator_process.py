"""Run the simulator in a process of its own, so its CPU is not counted as the exporter's."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager


@contextmanager
def simulator(
    syncs: int, latency_ms: float = 0.0, extra: Sequence[str] = ()
) -> Iterator[tuple[int, str]]:
    """Start `python -m exporter.simulator` with bulk syncs (and `extra` flags); yield its pid
    and base URL.

    The pid lets a benchmark read the simulator's own CPU accounting.
    """
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exporter.simulator",
            "--listen",
            "127.0.0.1:0",
            "--syncs",
            str(syncs),
            "--latency-ms",
            str(latency_ms),
            *extra,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError(f"simulator did not start: {line!r}")
        yield process.pid, line.rsplit(" ", 1)[1].strip()
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def simulator_process(
    syncs: int, latency_ms: float = 0.0, extra: Sequence[str] = ()
) -> Iterator[str]:
    """Start `python -m exporter.simulator` with bulk syncs; yield its base URL."""
    with simulator(syncs, latency_ms, extra) as (_, base):
        yield base
