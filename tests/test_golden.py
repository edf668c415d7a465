"""Golden expositions: each simulated provider's syncs, as `--once` prints them, byte for byte.

The simulator runs on a frozen clock (`FROZEN`, world started `ELAPSED` seconds before it), so
every body it serves, and so every value the exporter derives from one, is the same on every
run. A refactor of a renderer or an adapter that changes one byte of the output fails here with
the diff; when the change is meant, rewrite the files and review the diff in the commit:

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_golden.py

Only the per-sync families (`sync_*`) are kept, not the exporter's own (`sync_exporter_*`:
durations and request timings of this run). Of those, the two read against the exporter's own
wall clock, `sync_status_read_timestamp_seconds` and `sync_last_synced_age_seconds`, keep their
HELP and TYPE lines but lose their samples, which are checked here against the run instead.
Within a family, syncs appear in the order their concurrent reads finished, so the samples are
put in (source, sync_id) order, each sync's own samples keeping the order the exporter gave.
"""

from __future__ import annotations

import asyncio
import difflib
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import httpx
import pytest

from exporter.simulator import Simulator, World
from exporter.simulator.config import config_yaml, demo_config
from exporter.simulator.providers import PROVIDERS as SIMULATED
from tests.exposition import Exposition
from tests.procs import run_exporter
from tests.tools import require

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
FROZEN = 1_767_225_600.0  # 2026-01-01T00:00:00Z
ELAPSED = 0.0
PERIOD = 3600.0
# Read against the exporter's own clock: their samples are checked, not kept.
VOLATILE = ("sync_status_read_timestamp_seconds", "sync_last_synced_age_seconds")
# Paragon's per-user tokens are minted by the simulator on its frozen clock, since a token the
# exporter mints from a signing key carries the real time, which the frozen simulator refuses.
TOKEN_TTL = str(100 * 365 * 86400)

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]")
_SOURCE = re.compile(r'[{,]source="((?:[^"\\]|\\.)*)"')
_SYNC_ID = re.compile(r'[{,]sync_id="((?:[^"\\]|\\.)*)"')


class FrozenSimulator:
    """The demo world served on a background thread, its clock stopped at FROZEN."""

    def __init__(self) -> None:
        self.world = World.demo(period=PERIOD, started_at=FROZEN - ELAPSED)
        self.sim = Simulator(self.world, clock=lambda: FROZEN)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="frozen-simulator", daemon=True)
        self._ready: Future[str] = Future()

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._ready.set_result(self._loop.run_until_complete(self.sim.start()))
        except BaseException as exc:
            self._ready.set_exception(exc)
            return
        self._loop.run_forever()
        self._loop.run_until_complete(self.sim.stop())
        self._loop.close()

    def __enter__(self) -> FrozenSimulator:
        self._thread.start()
        self._ready.result(timeout=30)
        return self

    def __exit__(self, *_: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)


@pytest.fixture(scope="module")
def frozen() -> Iterator[FrozenSimulator]:
    """One frozen simulator for every golden file: nothing here changes its world."""
    with FrozenSimulator() as running:
        yield running


def golden_sources(frozen: FrozenSimulator) -> dict[str, list[dict[str, Any]]]:
    """The demo's sources by golden file name (the source's name without `demo-`)."""
    config = demo_config(frozen.sim.base_url, frozen.world)
    by_name: dict[str, list[dict[str, Any]]] = {}
    for source in config["sources"]:
        name = source["name"].removeprefix("demo-")
        by_name[name] = paragon_by_user(frozen, source) if name == "paragon" else [source]
    return by_name


def paragon_by_user(frozen: FrozenSimulator, source: dict[str, Any]) -> list[dict[str, Any]]:
    """The Paragon source as one source per user, each with a token from the frozen simulator."""
    sources = []
    for user in source["users"]:
        answer = httpx.get(
            f"{frozen.sim.base_url}/_sim/paragon/token",
            params={"user": user, "ttl": TOKEN_TTL},
            timeout=10,
        )
        answer.raise_for_status()
        one = {k: v for k, v in source.items() if k not in ("auth", "users", "syncs")}
        one["name"] = f"{source['name']}-{user}"
        one["auth"] = {"token": answer.json()["token"]}
        syncs = [
            {k: v for k, v in sync.items() if k != "user"}
            for sync in source.get("syncs", [])
            if sync.get("user") == user
        ]
        if syncs:
            one["syncs"] = syncs
        sources.append(one)
    return sources


# The simulator's providers: a new one needs its golden file (UPDATE_GOLDEN=1), nothing more.
PROVIDERS = list(SIMULATED)


def family_of(line: str) -> str:
    """The family a sample or a comment line belongs to (histogram and counter suffixes kept)."""
    if line.startswith("#"):
        return line.split(" ", 3)[2]
    match = _SAMPLE.match(line)
    assert match, f"not an exposition line: {line!r}"
    return match.group(1)


def sync_key(line: str) -> tuple[str, str]:
    """The (source, sync_id) a sample line is about; comments sort first."""
    if line.startswith("#"):
        return ("", "")
    source, sync_id = _SOURCE.search(line), _SYNC_ID.search(line)
    return (source.group(1) if source else "", sync_id.group(1) if sync_id else "")


def in_sync_order(lines: list[str]) -> list[str]:
    """Each family's lines with its samples stably sorted by sync, comments kept first."""
    families: dict[str, list[str]] = {}
    for line in lines:
        families.setdefault(family_of(line), []).append(line)
    ordered: list[str] = []
    for block in families.values():
        comments = [line for line in block if line.startswith("#")]
        samples = [line for line in block if not line.startswith("#")]
        ordered += comments + sorted(samples, key=sync_key)
    return ordered


def normalise(text: str) -> tuple[str, list[str]]:
    """The `sync_*` families of an exposition without the volatile samples, and those samples."""
    kept: list[str] = []
    volatile: list[str] = []
    for line in text.splitlines(keepends=True):
        if not line.strip():
            continue
        name = family_of(line)
        if not name.startswith("sync_") or name.startswith("sync_exporter_"):
            continue
        if name in VOLATILE and not line.startswith("#"):
            volatile.append(line)
            continue
        kept.append(line)
    return "".join(in_sync_order(kept)), volatile


def check_volatile(lines: list[str], before: float, after: float) -> None:
    """Each sync was read during the run, and its age is the read time minus its last sync."""
    exposition = Exposition("".join(lines))
    reads = exposition.find("sync_status_read_timestamp_seconds")
    assert reads, "no sync_status_read_timestamp_seconds samples"
    for labels, value in reads:
        assert before - 1 <= value <= after + 1, (labels, value, before, after)


def run_once(tmp_path: Path, name: str, sources: list[dict[str, Any]]) -> str:
    """`--once` against the frozen simulator, with only `sources` configured."""
    config = tmp_path / f"{name}.yml"
    config.write_text(config_yaml({"sources": sources, "log": {"level": "error"}}))
    result = run_exporter("--config.file", str(config), "--once")
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr
    return result.stdout


@pytest.mark.parametrize("name", PROVIDERS)
def test_exposition_matches_the_golden_file(
    frozen: FrozenSimulator, tmp_path: Path, name: str
) -> None:
    sources = golden_sources(frozen)
    assert name in sources, f"the demo has no source for {name}: drop it from PROVIDERS"
    before = time.time()
    text, volatile = normalise(run_once(tmp_path, name, sources[name]))
    after = time.time()
    check_volatile(volatile, before, after)
    check_ages(text, volatile)
    up = [value for _, value in Exposition(text).find("sync_up")]
    assert up and set(up) == {1.0}, f"{name}: a sync was not read, so its file would pin nothing"
    path = GOLDEN / f"{name}.prom"
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text)
        return
    assert path.exists(), f"{path} is missing: run UPDATE_GOLDEN=1 pytest tests/test_golden.py"
    expected = path.read_text()
    if text != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                text.splitlines(keepends=True),
                f"tests/golden/{name}.prom",
                "exporter --once",
            )
        )
        pytest.fail(
            f"{name}: the exposition differs from its golden file (if meant, rewrite it with "
            f"UPDATE_GOLDEN=1 pytest tests/test_golden.py and commit the diff):\n{diff}",
            pytrace=False,
        )


def check_ages(text: str, volatile: list[str]) -> None:
    """`sync_last_synced_age_seconds` is the read time minus the last sync, sync by sync."""
    kept = Exposition(text)
    read = Exposition("".join(volatile))
    for labels, age in read.find("sync_last_synced_age_seconds"):
        synced = kept.value("sync_last_synced_timestamp_seconds", **labels)
        at = read.value("sync_status_read_timestamp_seconds", **labels)
        assert abs(at - synced - age) < 1.0, (labels, at, synced, age)


def test_every_demo_source_has_a_golden_file(frozen: FrozenSimulator) -> None:
    names = set(golden_sources(frozen))
    files = {path.stem for path in GOLDEN.glob("*.prom")}
    assert names == set(PROVIDERS), f"demo sources {sorted(names)} != simulated providers"
    assert UPDATE or files == names, (
        f"golden files {sorted(files)} != demo sources {sorted(names)}: delete a provider's "
        "file with the provider, write a new one's with UPDATE_GOLDEN=1"
    )


@pytest.mark.parametrize("name", PROVIDERS)
def test_golden_file_passes_promtool(name: str) -> None:
    promtool = require("promtool")
    path = GOLDEN / f"{name}.prom"
    assert path.exists(), f"{path} is missing: run UPDATE_GOLDEN=1 pytest tests/test_golden.py"
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=path.read_bytes(),
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == b"" and result.stderr.strip() == b"", result
