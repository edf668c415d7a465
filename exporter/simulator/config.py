"""Exporter config pointing at a simulator, so the demo and the benchmark need no YAML by hand."""

from __future__ import annotations

from typing import Any

import yaml

from exporter.simulator.api import PREFIXES
from exporter.simulator.syncs import PROVIDERS, Provider
from exporter.simulator.world import World


def _auth(world: World, provider: Provider) -> dict[str, str]:
    if provider == "paragon":
        return {"token": world.paragon_token}
    if provider == "terminal":
        return {"token": world.terminal_secret, "connection_token": world.terminal_connection_token}
    return {"token": world.sequin_token}


def demo_config(base_url: str, world: World | None = None) -> dict[str, Any]:
    """An exporter config (`sources:`) listing every sync of `world` (default: the demo world)
    behind the simulator at `base_url`; syncs with labels are written in the `{id, labels}` form."""
    world = World.demo() if world is None else world
    root = base_url.rstrip("/")
    sources: list[dict[str, Any]] = []
    for provider in PROVIDERS:
        ids = world.ids(provider)
        if not ids:
            continue
        source: dict[str, Any] = {
            "name": f"{world.name}-{provider}",
            "provider": provider,
            "base_url": root + PREFIXES[provider],
            "auth": _auth(world, provider),
        }
        if provider == "paragon":
            source["labels"] = {"tenant": world.name}
        syncs: list[Any] = []
        for sync_id in ids:
            sync = world.sync(provider, sync_id)
            labels = {} if sync is None else dict(sync.labels)
            syncs.append({"id": sync_id, "labels": labels} if labels else sync_id)
        source["syncs"] = syncs
        sources.append(source)
    return {"sources": sources}


def config_yaml(config: dict[str, Any]) -> str:
    """`config` as YAML, keys in the order they were built."""
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(config, Dumper=dumper, sort_keys=False, default_flow_style=False)
