"""Any body a provider sends is read or refused as BadResponse, and renders as a valid exposition.

Bodies come from tests/payloads.py (documented, mutated, hostile) and reach `parse` the way
they do in the exporter: as bytes decoded by orjson, which refuses NaN and Infinity tokens,
lone surrogates and numbers beyond a double (the client reports those as `bad_response`).
Runs are derandomized and use no example database, so CI sees the same examples every time.
"""

from __future__ import annotations

import math
import subprocess
import unicodedata
from collections import Counter
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families

from exporter.exposition import metrics
from exporter.exposition.render import StalePolicy, render_syncs
from exporter.exposition.targets import Found, Target, TargetMaker
from exporter.model import STATES, SyncStatus, normalise
from exporter.providers import PROVIDERS
from exporter.providers.base import BadResponse
from tests import payloads
from tests.tools import require

NOW = 1_700_000_000.5
POLICY = StalePolicy(default=3600.0, intervals=3.0, slack=900.0)
EXAMPLES = 1000
LABEL_LIMIT = 200
PROFILE = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
Families = dict[str, list[tuple[dict[str, str], float]]]


def spec_of(provider: str) -> payloads.PayloadSpec:
    if provider not in payloads.SPECS:
        pytest.fail(f"provider {provider!r} has no PayloadSpec in tests/payloads.py: add one")
    return payloads.SPECS[provider]


def targets(provider: str, count: int) -> list[Target]:
    """Targets of one source of `provider`, made the way the exporter makes them."""
    adapter = PROVIDERS[provider]
    make = TargetMaker(
        source=f"props-{provider}",
        provider=provider,
        labels={"tenant": 'a "tenant" \\ {0}'},
        stale_after=None,
        info_labels=adapter.info_labels,
    )
    return [make(Found(f"sync-{n}")) for n in range(count)]


REFUSED = object()


def decode(raw: bytes) -> Any:
    """The body as the exporter's client decodes it; REFUSED when the client refuses it."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return REFUSED


def printable(text: str) -> bool:
    """No control characters, and encodable as UTF-8 (so it can be written to the exposition)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return all(unicodedata.category(char) != "Cc" for char in text)


def check_status(status: SyncStatus) -> None:
    numbers = [
        status.progress_ratio,
        status.records_expected,
        status.records_synced,
        status.last_synced_timestamp,
        status.interval_seconds,
        status.rate_limit_backoff_seconds,
        *status.values.values(),
    ]
    for number in numbers:
        assert number is None or (type(number) is float and math.isfinite(number)), numbers
    if status.progress_ratio is not None:
        assert 0.0 <= status.progress_ratio <= 1.0
    if status.rate_limit_backoff_seconds is not None:
        assert status.rate_limit_backoff_seconds >= 0.0
    assert status.state in STATES
    labels = [status.provider_status, *status.info.values(), *status.sets.values()]
    if status.error_reason is not None:
        labels.append(status.error_reason)
    for label in labels:
        assert isinstance(label, str) and len(label) <= LABEL_LIMIT, label[:300]
        assert printable(label), repr(label)


def parsed(text: str, strict: bool = False) -> Families:
    """Every sample of an exposition by family name, read by prometheus_client's parser (its
    OpenMetrics one if `strict`)."""
    found: Families = {}
    parse = parse_openmetrics if strict else text_string_to_metric_families
    for family in parse(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return found


def check_exposition(provider: str, read: list[SyncStatus]) -> None:
    """The rendered statuses parse back to exactly the values and labels they were made of."""
    adapter = PROVIDERS[provider]
    made = targets(provider, len(read) + 1)
    results: list[tuple[Target, SyncStatus | None]] = [(made[0], None)]
    results += list(zip(made[1:], read, strict=True))
    exposition = parsed(render_syncs(results, NOW, POLICY, [adapter]))
    openmetrics = render_syncs(results, NOW, POLICY, [adapter], openmetrics=True) + "# EOF\n"
    assert parsed(openmetrics, strict=True) == exposition, "OpenMetrics says the same"
    assert {labels["sync_id"]: value for labels, value in exposition["sync_up"]} == {
        target.sync_id: 0.0 if status is None else 1.0 for target, status in results
    }
    for target, status in results[1:]:
        assert status is not None
        mine = {
            name: [
                (labels, value) for labels, value in samples if labels["sync_id"] == target.sync_id
            ]
            for name, samples in exposition.items()
        }
        on = [labels["state"] for labels, value in mine["sync_state"] if value == 1.0]
        assert on == [status.state.value] and len(mine["sync_state"]) == len(STATES)
        ((labels, _),) = mine["sync_provider_status"]
        assert labels["status"] == status.provider_status
        ((labels, _),) = mine["sync_info"]
        assert all(labels[key] == status.info.get(key, "") for key in target.info_labels)
        reasons = [labels["reason"] for labels, _ in mine.get("sync_error_info", [])]
        assert reasons == ([] if status.error_reason is None else [status.error_reason])
        for family in metrics.VALUE_FAMILIES:
            expected = getattr(status, family.field)
            got = [value for _, value in mine.get(family.name, [])]
            assert got == ([] if expected is None else [expected]), family.name
        for family in adapter.families:
            samples = mine.get(family.name, [])
            if family.states:
                seen = status.sets.get(family.field)
                on = [labels[family.labels[0]] for labels, value in samples if value == 1.0]
                assert on == ([] if seen is None else [seen]), family.name
            else:
                number = status.values.get(family.field)
                got = [value for _, value in samples]
                assert got == ([] if number is None else [number]), family.name


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_any_body_is_read_or_refused_and_renders_a_valid_exposition(provider: str) -> None:
    spec_of(provider)
    parse = payloads.parser(provider)
    outcomes: Counter[str] = Counter()

    @PROFILE
    @given(payloads.wire(payloads.bodies(provider)))
    def check(raw: bytes) -> None:
        body = decode(raw)
        if body is REFUSED:
            outcomes["refused by the decoder"] += 1
            return
        try:
            status = normalise(parse(body))
        except BadResponse:
            outcomes["bad response"] += 1
            return
        outcomes["read"] += 1
        check_status(status)
        check_exposition(provider, [status])

    check()
    # The strategies reach every outcome, and mostly the parser, or they would test little.
    assert sum(outcomes.values()) >= EXAMPLES, outcomes
    assert outcomes["read"] >= EXAMPLES // 3, outcomes
    assert outcomes["bad response"] > 0 and outcomes["refused by the decoder"] > 0, outcomes


def read_sample(provider: str, raws: list[bytes]) -> list[SyncStatus]:
    parse = payloads.parser(provider)
    statuses = []
    for raw in raws:
        body = decode(raw)
        if body is REFUSED:
            continue
        try:
            statuses.append(normalise(parse(body)))
        except BadResponse:
            continue
    return statuses


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_promtool_accepts_expositions_of_generated_bodies(provider: str) -> None:
    spec_of(provider)
    promtool = require("promtool")
    checked: list[int] = []

    @settings(PROFILE, max_examples=4)
    @given(st.lists(payloads.wire(payloads.bodies(provider)), min_size=40, max_size=40))
    def check(raws: list[bytes]) -> None:
        read = read_sample(provider, raws)
        check_exposition(provider, read)
        made = targets(provider, len(read))
        text = render_syncs(list(zip(made, read, strict=True)), NOW, POLICY, [PROVIDERS[provider]])
        result = subprocess.run(
            [promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=60
        )
        assert result.returncode == 0, (result.stdout + result.stderr).decode()[-2000:]
        checked.append(len(read))

    check()
    assert len(checked) >= 4 and sum(checked) >= 40, checked


def test_every_provider_has_payloads_and_examples() -> None:
    assert set(payloads.SPECS) == set(PROVIDERS)
    for provider in PROVIDERS:
        assert len(payloads.seeds(provider)) >= 3, provider
        spec = payloads.SPECS[provider]
        assert spec.status_key in spec.required


def test_the_stale_threshold_stays_finite_for_the_longest_interval_a_provider_can_send() -> None:
    raw = b'{"status": "IDLE", "incrementalAccumulatorFrequency": "' + b"9" * 308 + b's",'
    raw += b' "summary": {"lastSyncedAt": "2023-11-07T05:31:56Z"}}'
    status = normalise(payloads.parser("paragon")(decode(raw)))
    assert status.interval_seconds is not None and math.isfinite(status.interval_seconds)
    (target,) = targets("paragon", 1)
    exposition = parsed(render_syncs([(target, status)], NOW, POLICY, [PROVIDERS["paragon"]]))
    ((_, threshold),) = exposition["sync_stale_threshold_seconds"]
    assert math.isfinite(threshold)
