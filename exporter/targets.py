"""Config turned into what a scrape walks: sources with their headers and syncs with their labels.

Everything that does not change between scrapes (URLs, headers, escaped label strings) is
built here once, at start-up or reload, so the scrape path only fetches and formats numbers.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from exporter.config import Config, SourceConfig
from exporter.metrics import SYNC_FAMILIES
from exporter.providers import PROVIDERS
from exporter.providers.base import Credentials, Provider


def escape_label_value(value: str) -> str:
    """Escape a label value for the text exposition format."""
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


@dataclass(slots=True)
class Target:
    """One sync to read: its URL and its label set, pre-encoded for the exposition."""

    source: str
    provider: str
    sync_id: str
    url: str
    labels: str
    templates: dict[str, str]
    stale_after: float | None


@dataclass(slots=True)
class Source:
    """One configured source at run time; `blocked_until` survives reloads (keyed by name)."""

    name: str
    provider: Provider
    base_url: str
    headers: dict[str, str] = field(repr=False)
    concurrency: int
    request_timeout: float
    targets: list[Target] = field(default_factory=list)
    blocked_until: float = 0.0
    # Discovery (config `discover: true`): the syncs listed in the config, how often to
    # list the provider's syncs, when next, and how to make a target for a listed id.
    configured: list[Target] = field(default_factory=list)
    discover_every: float | None = None
    next_discovery: float = 0.0
    target_for: Callable[[str], Target | None] = field(default=lambda _: None, repr=False)


def _template(labels: dict[str, str], slots: tuple[str, ...]) -> str:
    """A str.format template of the sorted label set, with a positional slot per extra label."""
    parts = []
    for name in sorted({*labels, *slots}):
        if name in slots:
            parts.append(f'{name}="{{{slots.index(name)}}}"')
        else:
            value = escape_label_value(labels[name]).replace("{", "{{").replace("}", "}}")
            parts.append(f'{name}="{value}"')
    return ",".join(parts)


def _label_string(labels: dict[str, str]) -> str:
    return ",".join(f'{name}="{escape_label_value(labels[name])}"' for name in sorted(labels))


def in_shard(source: str, sync_id: str, shard: int, total_shards: int) -> bool:
    """Whether this replica reads the sync: a stable hash, the same in every replica and run."""
    if total_shards == 1:
        return True
    return zlib.crc32(f"{source}\0{sync_id}".encode()) % total_shards == shard


def build_source(
    config: SourceConfig,
    defaults_concurrency: int,
    defaults_timeout: float,
    shard: int = 0,
    total_shards: int = 1,
) -> Source:
    """Resolve one source's provider, headers and the targets of this shard."""
    provider = PROVIDERS[config.provider]
    credentials = Credentials(
        token=config.auth.secret("token"),
        connection_token=config.auth.secret("connection_token"),
    )
    source = Source(
        name=config.name,
        provider=provider,
        base_url=config.base_url,
        headers={
            **{name: value.get_secret_value() for name, value in config.headers.items()},
            **provider.headers(credentials),
        },
        concurrency=config.max_concurrency or defaults_concurrency,
        request_timeout=config.request_timeout or defaults_timeout,
    )

    def target(sync_id: str, labels: dict[str, str], stale_after: float | None) -> Target:
        labels = {
            **config.labels,
            **labels,
            "source": config.name,
            "provider": config.provider,
            "sync_id": sync_id,
        }
        return Target(
            source=config.name,
            provider=config.provider,
            sync_id=sync_id,
            url=provider.url(config.base_url, sync_id),
            labels=_label_string(labels),
            templates={f.name: _template(labels, f.labels) for f in SYNC_FAMILIES if f.labels},
            stale_after=stale_after or config.stale_after,
        )

    def discovered(sync_id: str) -> Target | None:
        """A target for a listed sync, if it falls in this replica's shard."""
        if not in_shard(config.name, sync_id, shard, total_shards):
            return None
        return target(sync_id, {}, None)

    for sync in config.syncs:
        if in_shard(config.name, sync.id, shard, total_shards):
            source.targets.append(target(sync.id, sync.labels, sync.stale_after))
    source.configured = list(source.targets)
    if config.discover:
        source.discover_every = config.discover_interval
        source.target_for = discovered
    return source


def build_sources(config: Config) -> list[Source]:
    """Resolve every source in the config."""
    collector = config.collector
    return [
        build_source(
            source,
            collector.max_concurrency,
            collector.request_timeout,
            collector.shard,
            collector.total_shards,
        )
        for source in config.sources
    ]
