"""The exporter puts its config and targets out of the garbage collector's reach after load
and after each reload, so full passes during scrapes do not walk them (exporter/memory.py).

Read from the exporter's own debug trace (SYNC_EXPORTER_GC_TRACE), the exporter running as
users start it.
"""

from __future__ import annotations

import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.procs import exporter_command, free_port, running
from tests.test_hostile_configs import big_config
from tests.tools import ROOT


def freezes(trace: Path) -> list[int]:
    """The object counts of every gc.freeze() the trace notes, in order."""
    lines = trace.read_text().splitlines() if trace.exists() else []
    return [int(line.split()[2]) for line in lines if line.split()[1] == "freeze"]


def wait_for_freezes(trace: Path, count: int, timeout: float = 60) -> list[int]:
    deadline = time.monotonic() + timeout
    while len(freezes(trace)) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    return freezes(trace)


def test_targets_are_frozen_after_load_and_a_reload_unfreezes_what_it_replaced(
    workdir: Path,
) -> None:
    config, trace = workdir / "config.yml", workdir / "gc.trace"
    big_config(config, 30_000)
    port = free_port()
    command = exporter_command(config, port)
    env = {"SYNC_EXPORTER_GC_TRACE": str(trace)}
    with running(command, f"http://127.0.0.1:{port}/-/healthy", env=env) as process:
        assert len(wait_for_freezes(trace, 1)) == 1
        big_config(config, 3_000)
        process.send_signal(signal.SIGHUP)
        wait_for_freezes(trace, 2)
        # The replaced sources are stopped in the background after a reload's freeze, so
        # they are released (and collected) by the next one.
        process.send_signal(signal.SIGHUP)
        counts = wait_for_freezes(trace, 3)
    assert len(counts) == 3
    # Well over the 30,000 targets: each sync's config, target and labels are frozen.
    assert counts[0] > 100_000
    # What the reloads replaced was freed, not kept frozen beside the config that replaced it.
    assert counts[2] < counts[0] / 2, counts


def test_free_memory_goes_back_to_the_system_after_a_collection() -> None:
    """A heap left full of holes (what a collection's bodies leave between the readings it
    keeps) is handed back by exporter.memory, in a process of its own so the figure is its."""
    script = """
import os
from bench.soak import rss_mib
from exporter.memory import release_free_memory
junk = [bytes(1500) for _ in range(100_000)]
kept = junk[::50]
del junk
before = rss_mib(os.getpid())
released = release_free_memory()
print(released, before - rss_mib(os.getpid()))
"""
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("needs glibc, whose malloc_trim hands free pages back")
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.split()
    assert out[0] == "True"
    # 150 MB were freed between the kept bodies: most of it goes back.
    assert float(out[1]) > 100, out
