"""Exporter config pointing at a simulator, so the demo and the benchmark need no YAML by hand."""

from __future__ import annotations

from typing import Any

import yaml

from exporter.simulator.providers import PROVIDERS
from exporter.simulator.world import World


def demo_config(
    base_url: str, world: World | None = None, *, discover: bool = True
) -> dict[str, Any]:
    """An exporter config (`sources:`, one per provider) for `world` (default: a new demo
    world) behind the simulator at `base_url`. With `discover` the exporter finds syncs by
    listing them and only labelled syncs are written out; without, every sync is listed (where
    the provider allows it), so a benchmark controls exactly how many are read."""
    world = World.demo() if world is None else world
    root = base_url.rstrip("/")
    sources: list[dict[str, Any]] = []
    for name in world.providers:
        provider = PROVIDERS[name]
        source = provider.source(root + provider.prefix, world, discover=discover)
        if source is not None:
            sources.append(source)
    return {"sources": sources}


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """Safe YAML, with multi-line strings (the signing key's PEM) as literal blocks."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def config_yaml(config: dict[str, Any]) -> str:
    """`config` as YAML, keys in the order they were built."""
    return yaml.dump(config, Dumper=_Dumper, sort_keys=False, default_flow_style=False)
