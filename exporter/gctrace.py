"""A debug trace of garbage-collector passes, for benchmarks; off unless an env var names a file.

`SYNC_EXPORTER_GC_TRACE=/path` makes the exporter append one line per slow or full pass
(`<monotonic start> <generation> <seconds> <objects collected>`), so bench/fleet.py can find
the longest pause inside a scrape's window: CLOCK_MONOTONIC is the same in every process.
Each gc.freeze() adds `<monotonic> freeze <objects frozen>`.
Nothing is installed without the variable, so the normal path pays nothing.
"""

from __future__ import annotations

import gc
import os
import time
from typing import Any, TextIO

ENV = "SYNC_EXPORTER_GC_TRACE"
# Young passes are frequent and short; only those this long are written.
SLOW_SECONDS = 0.005
_out: list[TextIO] = []


def install(path: str | None = None) -> bool:
    """Record gc passes to `path` (default: the env var's file); False when there is none."""
    path = path if path is not None else os.environ.get(ENV)
    if not path:
        return False
    out: TextIO = open(path, "a", buffering=1, encoding="ascii")  # noqa: SIM115
    _out[:] = [out]
    started = [0.0]

    def callback(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.monotonic()
            return
        seconds = time.monotonic() - started[0]
        generation = info["generation"]
        if generation == 2 or seconds >= SLOW_SECONDS:
            out.write(f"{started[0]:.6f} {generation} {seconds:.6f} {info['collected']}\n")

    gc.callbacks.append(callback)
    return True


def frozen(count: int) -> None:
    """Note a gc.freeze() and how many objects it put out of the collector's reach."""
    for out in _out:
        out.write(f"{time.monotonic():.6f} freeze {count}\n")


def read(path: str) -> list[tuple[float, int, float]]:
    """The (start, generation, seconds) of every pass a trace file holds."""
    passes = []
    with open(path, encoding="ascii") as trace:
        for line in trace:
            start, generation, seconds = line.split()[:3]
            if generation == "freeze":
                continue
            passes.append((float(start), int(generation), float(seconds)))
    return passes
