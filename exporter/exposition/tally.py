"""Every source's upstream requests, counted in plain numbers and written at scrape time as
`sync_exporter_upstream_requests_total` and `sync_exporter_upstream_request_duration_seconds`.

prometheus_client's `Counter.inc` and `Histogram.observe` each take a lock and the
histogram walks its buckets in Python: three locked increments and a loop for every
request, about 2% of a read's CPU (docs/performance.md). Requests are counted on the event
loop only, so a tally needs no lock: a dict increment, a bisect and an addition. A scrape
reads the numbers as they are at that moment, as it reads any counter.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from exporter.exposition.metrics import exporter_family

REQUESTS = "sync_exporter_upstream_requests_total"
DURATION = "sync_exporter_upstream_request_duration_seconds"


class SourceRequests:
    """One source's requests: a count per status code (or failure code), and their
    durations in the histogram's buckets (the last one past every bound, `+Inf`)."""

    __slots__ = ("_bounds", "buckets", "codes", "seconds")

    def __init__(self, bounds: Sequence[float]) -> None:
        self._bounds = bounds
        self.codes: dict[str, int] = {}
        self.buckets = [0] * (len(bounds) + 1)
        self.seconds = 0.0

    def record(self, code: str, seconds: float) -> None:
        """Count one request that ended with `code` after `seconds`."""
        codes = self.codes
        codes[code] = codes.get(code, 0) + 1
        # A bucket holds what is at most its bound, as prometheus_client's `observe` counts.
        self.buckets[bisect_left(self._bounds, seconds)] += 1
        self.seconds += seconds


class RequestTally(Collector):
    """The tallies of the configured sources, written as one counter and one histogram."""

    def __init__(self, bounds: Sequence[float]) -> None:
        self._bounds = tuple(sorted(bounds))
        self._bound_texts = [floatToGoString(bound) for bound in self._bounds]  # type: ignore[no-untyped-call]
        self._sources: dict[str, SourceRequests] = {}

    def source(self, name: str) -> SourceRequests:
        """The tally of source `name`, made on first use."""
        tally = self._sources.get(name)
        if tally is None:
            tally = self._sources[name] = SourceRequests(self._bounds)
        return tally

    def track(self, names: Iterable[str]) -> None:
        """Keep exactly these sources: a new one's histogram is written (at zero) from the
        start, a gone one's series go."""
        wanted = list(names)
        for gone in set(self._sources) - set(wanted):
            del self._sources[gone]
        for name in wanted:
            self.source(name)

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            REQUESTS.removesuffix("_total"),
            exporter_family(REQUESTS).help,
            labels=["source", "code"],
        )
        duration = HistogramMetricFamily(
            DURATION, exporter_family(DURATION).help, labels=["source"], unit="seconds"
        )
        for name, tally in list(self._sources.items()):
            for code, count in list(tally.codes.items()):
                requests.add_metric([name, code], count)
            buckets, total = [], 0
            for text, count in zip([*self._bound_texts, "+Inf"], list(tally.buckets), strict=True):
                total += count
                buckets.append((text, total))
            duration.add_metric([name], buckets, tally.seconds)
        yield requests
        yield duration
