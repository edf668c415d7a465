"""Per-source gauges read from the Source objects themselves, kept beside Source so the
self-metrics registry needs to know nothing of sources, discovery or upstream."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from exporter.exposition.metrics import exporter_family
from exporter.sources.source import Source


class SourcesCollector(Collector):
    """Per-source gauges read from the current sources at scrape time, so reloads drop old ones."""

    def __init__(self, sources: Callable[[], Sequence[Source]]) -> None:
        self._sources = sources

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        def gauge(name: str, labels: list[str]) -> GaugeMetricFamily:
            family = exporter_family(name)
            return GaugeMetricFamily(name, family.help, labels=labels, unit=family.unit)

        def counter(name: str) -> CounterMetricFamily:
            return CounterMetricFamily(
                name.removesuffix("_total"), exporter_family(name).help, labels=["source"]
            )

        configured = gauge("sync_exporter_syncs_configured", ["source", "provider"])
        dropped = gauge("sync_exporter_syncs_dropped", ["source", "reason"])
        backoff = gauge("sync_exporter_source_backoff_seconds", ["source"])
        minted = counter("sync_exporter_tokens_minted_total")
        mint_failures = counter("sync_exporter_token_mint_failures_total")
        now = time.monotonic()
        for source in self._sources():
            configured.add_metric([source.name, source.provider], len(source.targets))
            for reason, count in source.discovery.dropped.items():
                dropped.add_metric([source.name, reason], count)
            backoff.add_metric([source.name], max(source.upstream.blocked_until - now, 0.0))
            if source.adapter.mints:
                minted.add_metric([source.name], source.adapter.minted)
                mint_failures.add_metric([source.name], source.adapter.mint_failures)
        yield from (configured, dropped, backoff, minted, mint_failures)
