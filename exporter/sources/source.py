"""A configured source at run time: its adapter, its door to the provider, its targets."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from exporter.collect.readpolicy import ReadPolicy
from exporter.config import CollectorConfig
from exporter.exposition.selfmetrics import SelfMetrics
from exporter.exposition.targets import Shard, Target, TargetMaker
from exporter.providers import PROVIDERS
from exporter.providers.base import Adapter
from exporter.schema import SourceConfig
from exporter.sources.discovery import Discovery
from exporter.sources.upstream import Budget, RetryPolicy, Upstream
from exporter.transport.http1 import Client


@dataclass(frozen=True, slots=True)
class SourceSettings:
    """What a source's run time depends on besides its own config: its limits, the collector's
    429 back-off bounds, and this replica's shard."""

    concurrency: int
    request_timeout: float
    retry: RetryPolicy
    shard: Shard

    @classmethod
    def of(cls, config: SourceConfig[Any, Any], collector: CollectorConfig) -> SourceSettings:
        """The source's own limits where it sets them, else the collector's."""
        return cls(
            concurrency=config.max_concurrency or collector.max_concurrency,
            request_timeout=config.request_timeout or collector.request_timeout,
            retry=RetryPolicy(collector.default_retry_after, collector.max_retry_after),
            shard=Shard(collector.shard, collector.total_shards),
        )


@dataclass(slots=True)
class Source:
    """One source: built once per config, kept across reloads that leave it unchanged."""

    config: SourceConfig[Any, Any]
    settings: SourceSettings
    adapter: Adapter[Any]
    upstream: Upstream
    discovery: Discovery
    policy: ReadPolicy

    @property
    def name(self) -> str:
        """The source's name (its `source` label)."""
        return str(self.config.name)

    @property
    def provider(self) -> str:
        """The provider's name (its `provider` label)."""
        return self.adapter.name

    @property
    def targets(self) -> list[Target]:
        """The syncs read now (configured and discovered)."""
        return self.discovery.targets


def build_source(
    config: SourceConfig[Any, Any],
    collector: CollectorConfig,
    client: Callable[[], Client],
    metrics: SelfMetrics,
) -> Source:
    """Resolve one source's adapter, transport and targets (this shard's)."""
    settings = SourceSettings.of(config, collector)
    policy = ReadPolicy.of(config)
    shard = settings.shard
    adapter = PROVIDERS[config.provider](config, shard)
    upstream = Upstream(
        source=config.name,
        base_url=adapter.base_url,
        headers={name: value.get_secret_value() for name, value in config.headers.items()},
        concurrency=settings.concurrency,
        request_timeout=settings.request_timeout,
        client=client,
        metrics=metrics,
        retry=settings.retry,
        budget=policy.budget,
    )
    make = TargetMaker(
        source=config.name,
        provider=adapter.name,
        labels=dict(config.labels),
        stale_after=config.stale_after,
        info_labels=adapter.info_label_names(),
    )
    discovery = Discovery(adapter, upstream, make, shard, metrics)
    return Source(config, settings, adapter, upstream, discovery, policy)


# Source options that only change how listed syncs are read or labelled: a reload that
# changes nothing else keeps the listings. Anything else (credentials, users, a generic
# mapping, headers, discover) may list other syncs, so the new source lists afresh.
_NOT_LISTING = frozenset(
    {
        "labels",
        "label_from",
        "stale_after",
        "min_interval",
        "max_requests_per_second",
        "max_concurrency",
        "request_timeout",
        "probe_only",
        "syncs",
        "max_syncs",
        "discover_interval",
        "webhook",
    }
)


def _listing_part(config: SourceConfig[Any, Any]) -> dict[str, Any]:
    return {
        name: getattr(config, name)
        for name in type(config).model_fields
        if name not in _NOT_LISTING
    }


def carry_over(old: Source, new: Source) -> Source:
    """After a reload: the old source when nothing it depends on changed, else the new one with
    what still holds (the 429 back-off; the listings when nothing that lists changed).
    """
    if old.config == new.config and old.settings == new.settings:
        return old
    new.upstream.blocked_until = old.upstream.blocked_until
    same_shard = old.settings.shard == new.settings.shard
    # Adapters keep a listed item whole only while label_from may read it: new label_from
    # needs the items a kept listing no longer has.
    kept_items = bool(old.config.label_from) or not new.config.label_from
    if same_shard and kept_items and _listing_part(old.config) == _listing_part(new.config):
        new.discovery.adopt(old.discovery)
        new.adapter.adopt(old.adapter)
    return new


class Budgets:
    """Each source's request budget by source name, across reloads.

    The budget belongs to the source, not to one build of it: a reload that rebuilds a
    source (a new label, a new limit) hands it the bucket as it was, retuned to the new
    limit, instead of a full one. A source dropped from the config keeps its bucket while a
    token of it is out, in case the next reload brings the source back.
    """

    def __init__(self) -> None:
        self._by_name: dict[str, Budget] = {}

    def attach(self, sources: list[Source]) -> None:
        """Give each source with a limit the bucket its name already has."""
        now = time.monotonic()
        kept: dict[str, Budget] = {}
        for source in sources:
            budget = source.policy.budget
            if budget is None:
                continue
            known = self._by_name.get(source.name)
            if known is not None and known is not budget:
                known.retune(budget.rate)
                source.policy.budget = source.upstream.budget = budget = known
            kept[source.name] = budget
        for name, known in self._by_name.items():
            if name not in kept and known.busy(now):
                kept[name] = known
        self._by_name = kept
