"""The request tally writes what prometheus_client's Counter and Histogram would have written
for the same requests, in the text format and in OpenMetrics."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

from exporter.exposition.metrics import exporter_family
from exporter.exposition.selfmetrics import LATENCY_BUCKETS
from exporter.exposition.tally import DURATION, REQUESTS, RequestTally

SOURCES = st.sampled_from(["a", "b", 'we"ird\\source'])
CODES = st.sampled_from(["200", "404", "429", "", "timeout"])
# Durations on and around the bucket bounds, where `<=` and `<` would differ.
SECONDS = st.one_of(
    st.sampled_from([0.0, *LATENCY_BUCKETS]),
    st.floats(min_value=0.0, max_value=30.0, allow_nan=False),
)
REQUESTS_MADE = st.lists(st.tuples(SOURCES, CODES, SECONDS), max_size=60)


def samples(
    text: str, openmetrics: bool
) -> dict[str, set[tuple[str, tuple[tuple[str, str], ...], float]]]:
    parse = parse_om if openmetrics else parse_text
    return {
        family.name: {(s.name, tuple(sorted(s.labels.items())), s.value) for s in family.samples}
        for family in parse(text)
    }


def expositions(
    made: list[tuple[str, str, float]], tracked: list[str], openmetrics: bool
) -> tuple[str, str]:
    disable_created_metrics()  # type: ignore[no-untyped-call]  # as SelfMetrics does
    ours = RequestTally(LATENCY_BUCKETS)
    ours.track(tracked)
    registry = CollectorRegistry(auto_describe=False)
    counter = Counter(
        REQUESTS.removesuffix("_total"),
        exporter_family(REQUESTS).help,
        ["source", "code"],
        registry=registry,
    )
    histogram = Histogram(
        DURATION,
        exporter_family(DURATION).help,
        ["source"],
        buckets=LATENCY_BUCKETS,
        unit="seconds",
        registry=registry,
    )
    for name in tracked:
        histogram.labels(name)
    for source, code, seconds in made:
        ours.source(source).record(code, seconds)
        counter.labels(source, code).inc()
        histogram.labels(source).observe(seconds)
    mine = CollectorRegistry(auto_describe=False)
    mine.register(ours)
    write = generate_openmetrics if openmetrics else generate_latest
    return write(mine).decode(), write(registry).decode()


@settings(max_examples=150, deadline=None)
@given(REQUESTS_MADE, st.lists(SOURCES, unique=True), st.booleans())
def test_the_tally_writes_what_prometheus_client_would(
    made: list[tuple[str, str, float]], tracked: list[str], openmetrics: bool
) -> None:
    ours, theirs = expositions(made, tracked, openmetrics)
    assert samples(ours, openmetrics) == samples(theirs, openmetrics)
    # Metadata lines alike too (HELP, TYPE, UNIT), in the same family order.
    assert [line for line in ours.splitlines() if line.startswith("#")] == [
        line for line in theirs.splitlines() if line.startswith("#")
    ]


def test_a_source_no_longer_tracked_loses_its_series() -> None:
    tally = RequestTally(LATENCY_BUCKETS)
    tally.track(["a", "b"])
    tally.source("a").record("200", 0.02)
    tally.source("b").record("200", 0.02)
    tally.track(["b"])
    registry = CollectorRegistry(auto_describe=False)
    registry.register(tally)
    text = generate_latest(registry).decode()
    assert 'source="a"' not in text
    assert 'sync_exporter_upstream_requests_total{code="200",source="b"} 1.0' in text
    assert (
        'sync_exporter_upstream_request_duration_seconds_bucket{le="0.025",source="b"} 1.0' in text
    )
    assert (
        'sync_exporter_upstream_request_duration_seconds_bucket{le="0.01",source="b"} 0.0' in text
    )
