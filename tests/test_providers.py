"""Each adapter maps its provider's documented JSON to the canonical SyncStatus."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from exporter.model import State
from exporter.providers import PROVIDERS
from exporter.providers.base import BadResponse

DATA = Path(__file__).parent / "data"


def seed(name: str) -> dict[str, Any]:
    """The example body from the provider's documentation (tests/data/*-seed.json).

    Paragon's documented example omits the required `status`; the fixture adds one.
    """
    body: dict[str, Any] = json.loads((DATA / f"{name}-seed.json").read_text())
    return body


def test_providers_are_discovered_by_module() -> None:
    assert set(PROVIDERS) == {"paragon", "terminal", "sequin"}


def test_paragon_seed_maps_every_field() -> None:
    status = PROVIDERS["paragon"].parse(seed("paragon"))
    assert status.state is State.RATE_LIMITED
    assert status.provider_status == "RATE_LIMITED"
    assert status.records_expected == 123
    assert status.records_synced == 123
    assert status.progress_ratio == 1.0
    assert status.last_synced_timestamp == 1699335116.0
    assert status.rate_limit_backoff_seconds == 30.0
    assert status.interval_seconds == 60
    assert status.info["credential_id"] == "<string>"
    assert status.info["frequency"] == "1m"
    assert status.error_reason is None


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("INITIALIZING", State.INITIALIZING),
        ("ACTIVE", State.ACTIVE),
        ("IDLE", State.IDLE),
        ("RATE_LIMITED", State.RATE_LIMITED),
        ("DISABLED", State.DISABLED),
        ("ERRORED", State.ERRORED),
        ("active", State.ACTIVE),
        ("idle", State.IDLE),
        ("paused", State.DISABLED),
        ("errored", State.ERRORED),
        ("Rate_Limited", State.RATE_LIMITED),
        ("MIGRATING", State.UNKNOWN),
        ("", State.UNKNOWN),
    ],
)
def test_paragon_states(raw: str, state: State) -> None:
    status = PROVIDERS["paragon"].parse({"status": raw, "summary": {}})
    assert status.state is state
    assert status.provider_status == raw


def test_paragon_errored_reason_and_zero_backoff() -> None:
    body = {**seed("paragon"), "status": "ERRORED", "reason": "bad\ncredential"}
    status = PROVIDERS["paragon"].parse(body)
    assert status.error_reason == "bad credential"
    assert status.rate_limit_backoff_seconds == 0.0


def test_paragon_legacy_snake_case_summary() -> None:
    body = {
        "status": "idle",
        "summary": {
            "total_records": 200,
            "synced_records_count": 50,
            "last_synced_at": "2023-11-07T05:31:56.250+00:00",
        },
    }
    status = PROVIDERS["paragon"].parse(body)
    assert status.state is State.IDLE
    assert status.progress_ratio == 0.25
    assert status.last_synced_timestamp == 1699335116.25


def test_paragon_no_progress_without_total_and_no_timestamp_when_null() -> None:
    body = {"status": "INITIALIZING", "summary": {"totalRecords": 0, "lastSyncedAt": None}}
    status = PROVIDERS["paragon"].parse(body)
    assert status.progress_ratio is None
    assert status.last_synced_timestamp is None
    assert status.interval_seconds is None


def test_terminal_seed_maps_every_field() -> None:
    status = PROVIDERS["terminal"].parse(seed("terminal"))
    assert status.state is State.IDLE
    assert status.progress_ratio == 0.85
    assert status.attempts == 1
    assert status.issues == 1
    assert status.requested_timestamp == 1609903493.0
    assert status.completed_timestamp == 1609903493.0
    assert status.error_reason is None


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("requested", State.INITIALIZING),
        ("in_progress", State.ACTIVE),
        ("completed", State.IDLE),
        ("failed", State.ERRORED),
        ("FAILED", State.ERRORED),
        ("cancelled", State.UNKNOWN),
    ],
)
def test_terminal_states(raw: str, state: State) -> None:
    status = PROVIDERS["terminal"].parse({"status": raw, "requestedAt": "2021-01-06T03:24:53Z"})
    assert status.state is state


def test_terminal_failure_reason_and_expanded_issues() -> None:
    body = {
        **seed("terminal"),
        "status": "failed",
        "issues": [{"id": "isu_1"}, {"id": "isu_2"}],
    }
    status = PROVIDERS["terminal"].parse(body)
    assert status.error_reason == "Reason for failure if sync status is 'failed'"
    assert status.issues == 2


def test_sequin_seed_maps_every_field() -> None:
    status = PROVIDERS["sequin"].parse(seed("sequin"))
    assert status.state is State.ACTIVE
    assert status.interval_seconds == 0
    assert status.initial_backfill_completed_timestamp == 1702603769.0
    assert status.rate_limit_allowed_requests == 1000
    assert status.rate_limit_interval_seconds == 60
    assert status.rate_limit_max_concurrent_requests == 0
    assert status.collections == 2
    assert status.info == {
        "name": "Choam Corp - HubSpot Production",
        "integration": "stripe",
        "credential_id": "27879937-bd5d-490b-a943-edf486b04300",
        "frequency": "continuous",
    }


@pytest.mark.parametrize(
    ("changes", "state"),
    [
        ({"status": "disabled"}, State.DISABLED),
        ({"health": {"status": "error"}}, State.ERRORED),
        ({"health": {"status": "ERROR"}}, State.ERRORED),
        ({"health": {"status": "warn"}}, State.ACTIVE),
        ({"health": {"status": "ok"}}, State.ACTIVE),
        ({"initial_backfill_completed_at": None}, State.INITIALIZING),
        ({"status": "archived"}, State.UNKNOWN),
        ({"sync_frequency": "4h"}, State.ACTIVE),
    ],
)
def test_sequin_states(changes: dict[str, Any], state: State) -> None:
    assert PROVIDERS["sequin"].parse({**seed("sequin"), **changes}).state is state


def test_sequin_four_hour_frequency() -> None:
    status = PROVIDERS["sequin"].parse({**seed("sequin"), "sync_frequency": "4h"})
    assert status.interval_seconds == 14400


@pytest.mark.parametrize("provider", ["paragon", "terminal", "sequin"])
@pytest.mark.parametrize("body", [[], "ACTIVE", None, 3, {"summary": {}}, {"status": 7}])
def test_unreadable_bodies_are_bad_responses(provider: str, body: Any) -> None:
    with pytest.raises(BadResponse):
        PROVIDERS[provider].parse(body)


@pytest.mark.parametrize("provider", ["paragon", "terminal", "sequin"])
def test_wrongly_typed_fields_are_ignored_not_fatal(provider: str) -> None:
    body = {
        "status": "ACTIVE",
        "summary": "oops",
        "progress": "85",
        "issues": "isu_1",
        "attempts": True,
        "health": [],
        "rate_limit": 5,
        "collection_ids": {},
        "requestedAt": 12,
        "incrementalAccumulatorFrequency": 5,
        "sync_frequency": None,
    }
    status = PROVIDERS[provider].parse(body)
    assert status.progress_ratio is None
    assert status.attempts is None


def test_every_label_value_from_a_provider_is_bounded_and_clean() -> None:
    long = "n\x07" + "y" * 1000
    body = {**seed("sequin"), "status": long, "name": long, "provider": long}
    status = PROVIDERS["sequin"].parse(body)
    assert status.state is State.UNKNOWN
    for value in (status.provider_status, status.info["name"], status.info["integration"]):
        assert len(value) == 200 and "\x07" not in value
