"""The exporter's own metrics, on a registry of their own (never the global default one)."""

from __future__ import annotations

import platform
from collections.abc import Sequence

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.registry import Collector

from exporter import __version__
from exporter.exposition.metrics import ERROR_REASONS, exporter_family
from exporter.exposition.tally import RequestTally

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _help(name: str) -> str:
    return exporter_family(name).help


def _base(name: str) -> str:
    return name.removesuffix("_total")


class SelfMetrics:
    """Counters and gauges about the exporter's own work."""

    def __init__(self, per_source: Collector) -> None:
        """`per_source` reads the current sources at scrape time; it is kept beside Source."""
        # kube-state-metrics-style output: no *_created series doubling every counter.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=False)
        registry = self.registry
        build = Gauge(
            "sync_exporter_build_info",
            _help("sync_exporter_build_info"),
            ["version", "python_version"],
            registry=registry,
        )
        build.labels(__version__, platform.python_version()).set(1)
        self.collection_duration = Gauge(
            "sync_exporter_collection_duration_seconds",
            _help("sync_exporter_collection_duration_seconds"),
            unit="seconds",
            registry=registry,
        )
        self.render_duration = Gauge(
            "sync_exporter_render_duration_seconds",
            _help("sync_exporter_render_duration_seconds"),
            unit="seconds",
            registry=registry,
        )
        # Written in the two families' place, after the render duration.
        self.requests = RequestTally(LATENCY_BUCKETS)
        registry.register(self.requests)
        name = "sync_exporter_errors_total"
        self.errors = Counter(_base(name), _help(name), ["source", "reason"], registry=registry)
        name = "sync_exporter_upstream_requests_skipped_total"
        self.skipped = Counter(_base(name), _help(name), ["source"], registry=registry)
        name = "sync_exporter_reads_not_started_total"
        self.not_started = Counter(_base(name), _help(name), ["source"], registry=registry)
        name = "sync_exporter_budget_deferred_total"
        self.deferred = Counter(_base(name), _help(name), ["source"], registry=registry)
        name = "sync_exporter_readings_reused_total"
        self.reused = Counter(_base(name), _help(name), ["source"], registry=registry)
        name = "sync_exporter_webhook_events_total"
        self.webhook_events = Counter(
            _base(name), _help(name), ["source", "event"], registry=registry
        )
        name = "sync_exporter_webhook_rejected_total"
        self.webhook_rejected = Counter(
            _base(name), _help(name), ["source", "reason"], registry=registry
        )
        self.reload_successful = Gauge(
            "sync_exporter_config_last_reload_successful",
            _help("sync_exporter_config_last_reload_successful"),
            registry=registry,
        )
        self.reload_timestamp = Gauge(
            "sync_exporter_config_last_reload_success_timestamp_seconds",
            _help("sync_exporter_config_last_reload_success_timestamp_seconds"),
            unit="seconds",
            registry=registry,
        )
        registry.register(per_source)
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        self._known_sources: set[str] = set()

    def track_sources(self, names: Sequence[str]) -> None:
        """Create every source's error series up front and forget sources no longer configured."""
        for gone in self._known_sources - set(names):
            for reason in ERROR_REASONS:
                self.errors.remove(gone, reason)
            for counter in (self.skipped, self.not_started, self.deferred, self.reused):
                counter.remove(gone)
            self.webhook_events.remove_by_labels({"source": gone})
            self.webhook_rejected.remove_by_labels({"source": gone})
        for name in names:
            for reason in ERROR_REASONS:
                self.errors.labels(name, reason)
            for counter in (self.skipped, self.not_started, self.deferred, self.reused):
                counter.labels(name)
        self.requests.track(names)
        self._known_sources = set(names)

    def render(self, openmetrics: bool = False) -> bytes:
        """The exposition of the exporter's own metrics; in OpenMetrics it ends with `# EOF`."""
        if openmetrics:
            text: bytes = generate_openmetrics(self.registry)  # type: ignore[no-untyped-call]
            return text
        return generate_latest(self.registry)
