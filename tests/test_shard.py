"""Sharding: replicas with the same config and different shards split the syncs between them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from exporter.collect.collector import Collector
from exporter.config import Config, ConfigError, parse_config
from exporter.exposition.targets import Reading
from exporter.model import State, SyncStatus
from tests.procs import run_exporter


def config_text(shard: int | str, total_shards: int | str, syncs: int = 1000) -> str:
    ids = ", ".join(f"s{i}" for i in range(syncs))
    return f"""
collector: {{shard: {shard}, total_shards: {total_shards}}}
sources:
  - {{name: a, provider: paragon, auth: {{token: t}}, syncs: [{ids}]}}
  - {{name: b, provider: sequin, auth: {{token: t}}, syncs: [{ids}]}}
"""


def read_by(shard: int, total_shards: int) -> set[tuple[str, str]]:
    config = parse_config(config_text(shard, total_shards), "shard.yml")
    return {(t.source, t.sync_id) for s in Collector(config).sources for t in s.targets}


def test_shards_are_disjoint_complete_and_balanced() -> None:
    everything = read_by(0, 1)
    assert len(everything) == 2000
    shards = [read_by(shard, 4) for shard in range(4)]
    assert set().union(*shards) == everything
    assert sum(len(shard) for shard in shards) == len(everything)
    assert all(400 <= len(shard) <= 600 for shard in shards), [len(s) for s in shards]


def test_shard_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHARD", "2")
    config = parse_config(config_text('"${SHARD}"', 3, syncs=10), "shard.yml")
    assert (config.collector.shard, config.collector.total_shards) == (2, 3)


@pytest.mark.parametrize(("shard", "total"), [(4, 4), (-1, 4), (0, 0)])
def test_shard_out_of_range_is_refused(shard: int, total: int) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(config_text(shard, total, syncs=1), "shard.yml")
    assert "shard.yml: collector." in str(error.value)


def test_shard_flags_split_the_syncs_between_replicas(tmp_path: Path) -> None:
    ids = [f"s{i}" for i in range(40)]
    path = tmp_path / "config.yml"
    path.write_text(
        "sources: [{name: a, provider: sequin, base_url: 'http://127.0.0.1:1',"
        f" auth: {{token: t}}, syncs: [{', '.join(ids)}]}}]\n"
        "log: {level: error}"
    )
    seen: list[set[str]] = []
    for shard in ("0", "1"):
        result = run_exporter(
            "--config.file", str(path), "--once",
            "--collector.shard", shard, "--collector.total-shards", "2",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        seen.append(
            {
                line.split('sync_id="')[1].split('"')[0]
                for line in result.stdout.splitlines()
                if line.startswith("sync_up{")
            }
        )
    assert seen[0] and seen[1] and not seen[0] & seen[1]
    assert seen[0] | seen[1] == set(ids)


def test_a_reload_keeps_readings_when_only_limits_change_and_lists_afresh_on_a_new_shard() -> None:
    def config(collector: str, extra: str = "") -> Config:
        ids = ", ".join(f"s{i}" for i in range(20))
        text = (
            f"collector: {{{collector}}}\n"
            f"sources: [{{name: a, provider: paragon, auth: {{token: t}}, syncs: [{ids}]{extra}}}]"
        )
        return parse_config(text, "reload.yml")

    async def main() -> None:
        collector = Collector(config("shard: 0, total_shards: 1"))
        (source,) = collector.sources
        reading = Reading(SyncStatus(state=State.IDLE, provider_status="done"), 1.0)
        for target in source.targets:
            target.reading = reading
        collector.apply(config("shard: 0, total_shards: 1", ", max_concurrency: 3"))
        (limited,) = collector.sources
        assert limited is not source and limited.settings.concurrency == 3
        assert limited.settings.shard == source.settings.shard
        assert all(target.reading is reading for target in limited.targets)
        collector.apply(config("shard: 0, total_shards: 2", ", max_concurrency: 3"))
        (sharded,) = collector.sources
        assert sharded.settings.shard != limited.settings.shard
        assert 0 < len(sharded.targets) < 20
        assert all(target.reading is None for target in sharded.targets)
        await collector.close()

    asyncio.run(main())
