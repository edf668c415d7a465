"""Each adapter maps its provider's documented JSON to the canonical SyncStatus."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from exporter.model import State, SyncStatus, normalise
from exporter.providers import PROVIDERS, paragon, sequin, terminal
from exporter.providers.base import BadResponse

PARSE = {"paragon": paragon.parse, "terminal": terminal.parse, "sequin": sequin.parse}


def read(provider: str, body: Any) -> SyncStatus:
    """What the collector makes of a body: the adapter's parse, then the shared normalisation."""
    return normalise(PARSE[provider](body))


DATA = Path(__file__).parent / "data"


def seed(name: str) -> dict[str, Any]:
    """The example body from the provider's documentation (tests/data/*-seed.json).

    Paragon's documented example omits the required `status`; the fixture adds one.
    """
    body: dict[str, Any] = json.loads((DATA / f"{name}-seed.json").read_text())
    return body


def test_providers_are_discovered_by_module() -> None:
    assert set(PROVIDERS) == {"paragon", "terminal", "sequin", "generic"}


def test_paragon_seed_maps_every_field() -> None:
    status = read("paragon", seed("paragon"))
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
    status = read("paragon", {"status": raw, "summary": {}})
    assert status.state is state
    assert status.provider_status == raw


def test_paragon_errored_reason_and_zero_backoff() -> None:
    body = {**seed("paragon"), "status": "ERRORED", "reason": "bad\ncredential"}
    status = read("paragon", body)
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
    status = read("paragon", body)
    assert status.state is State.IDLE
    assert status.progress_ratio == 0.25
    assert status.last_synced_timestamp == 1699335116.25


def test_paragon_no_progress_without_total_and_no_timestamp_when_null() -> None:
    body = {"status": "INITIALIZING", "summary": {"totalRecords": 0, "lastSyncedAt": None}}
    status = read("paragon", body)
    assert status.progress_ratio is None
    assert status.last_synced_timestamp is None
    assert status.interval_seconds is None


def test_terminal_seed_maps_every_field() -> None:
    status = read("terminal", seed("terminal"))
    assert status.state is State.IDLE
    assert status.progress_ratio == 0.85
    assert status.values["attempts"] == 1
    assert status.values["issues"] == 1
    assert status.values["requested"] == 1609903493.0
    assert status.values["completed"] == 1609903493.0
    assert status.info["job_id"] == "sync_01GV12VR4DJP70GD1ZBK0SDWFH"
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
    status = read("terminal", {"status": raw, "requestedAt": "2021-01-06T03:24:53Z"})
    assert status.state is state


def test_terminal_failure_reason_and_expanded_issues() -> None:
    body = {
        **seed("terminal"),
        "status": "failed",
        "issues": [{"id": "isu_1"}, {"id": "isu_2"}],
    }
    status = read("terminal", body)
    assert status.error_reason == "Reason for failure if sync status is 'failed'"
    assert status.values["issues"] == 2


def test_terminal_counts_only_ongoing_issues_and_names_the_first_code() -> None:
    issues = [
        {"id": "isu_1", "status": "resolved", "error": {"code": "old_problem", "message": "m"}},
        {"id": "isu_2", "status": "ongoing", "error": {"code": "missing_permissions"}},
        {"id": "isu_3", "status": "ongoing", "error": {"code": "other"}},
    ]
    body = {**seed("terminal"), "status": "failed", "issues": issues}
    del body["failureReason"]
    status = read("terminal", body)
    assert status.values["issues"] == 2
    assert status.error_reason == "missing_permissions"
    quiet = read("terminal", {**body, "status": "completed"})
    assert quiet.error_reason is None


def test_terminal_provider_requests_are_not_read_from_the_job() -> None:
    # The spec has `providerRequests` only on the request that starts a sync, not on the job.
    body = {
        **seed("terminal"),
        "status": "in_progress",
        "providerRequests": [{"type": "historical_files"}, "junk"],
    }
    assert read("terminal", body).info == read("terminal", seed("terminal")).info
    assert "provider_requests" not in read("terminal", body).info


def test_sequin_seed_maps_every_field() -> None:
    status = read("sequin", seed("sequin"))
    assert status.state is State.ACTIVE
    assert status.interval_seconds == 0
    assert status.last_synced_timestamp is None
    assert status.values == {
        "backfill": 1702603769.0,
        "allowed_requests": 1000,
        "limit_interval": 60,
        "max_concurrent": 0,
        "collections": 2,
    }
    assert status.sets == {"health": "healthy"}
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
    assert read("sequin", {**seed("sequin"), **changes}).state is state


@pytest.mark.parametrize(
    ("health", "seen"),
    [
        ({"status": "warn"}, "warn"),
        ({"status": "Degraded"}, "degraded"),
        ({}, "unknown"),
        (None, "unknown"),
    ],
)
def test_sequin_health_is_an_open_set(health: Any, seen: str) -> None:
    assert read("sequin", {**seed("sequin"), "health": health}).sets == {"health": seen}


def test_sequin_error_reason_comes_from_the_part_that_is_not_fine() -> None:
    health = {
        "status": "error",
        "credential": {"status": "error", "notes": ["Token was revoked"], "time": "2024-01-01"},
        "provider": {"status": "ok", "notes": []},
    }
    status = read("sequin", {**seed("sequin"), "health": health})
    assert status.state is State.ERRORED
    assert status.error_reason == "Token was revoked"
    health = {
        **health,
        "credential": {"status": "ok"},
        "provider": {"status": "warn", "notes": ["HubSpot returns 5xx", 42, "", "retrying"]},
    }
    # Notes are an array of strings (anything else in it is left out); a lone string is
    # read too.
    assert read("sequin", {**seed("sequin"), "health": health}).error_reason == (
        "HubSpot returns 5xx; retrying"
    )
    alone = {**health, "provider": {"status": "warn", "notes": "HubSpot returns 5xx"}}
    assert read("sequin", {**seed("sequin"), "health": alone}).error_reason == (
        "HubSpot returns 5xx"
    )
    warned = read("sequin", {**seed("sequin"), "health": {**health, "status": "warn"}})
    assert warned.state is State.ACTIVE and warned.error_reason is None


def test_sequin_four_hour_frequency() -> None:
    status = read("sequin", {**seed("sequin"), "sync_frequency": "4h"})
    assert status.interval_seconds == 14400


@pytest.mark.parametrize("provider", ["paragon", "terminal", "sequin"])
@pytest.mark.parametrize("body", [[], "ACTIVE", None, 3, {"summary": {}}, {"status": 7}])
def test_unreadable_bodies_are_bad_responses(provider: str, body: Any) -> None:
    with pytest.raises(BadResponse):
        read(provider, body)


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
    status = read(provider, body)
    assert status.progress_ratio is None
    assert status.values.get("attempts") is None


def test_every_label_value_from_a_provider_is_bounded_and_clean() -> None:
    long = "n\x07" + "y" * 1000
    body = {**seed("sequin"), "status": long, "name": long, "provider": long}
    status = read("sequin", body)
    assert status.state is State.UNKNOWN
    for value in (status.provider_status, status.info["name"], status.info["integration"]):
        assert len(value) == 200 and "\x07" not in value


@pytest.mark.parametrize("notes", [None, [], "absent", [None, 3]])
def test_sequin_notes_of_no_use_leave_the_reason_empty(notes: Any) -> None:
    # The simulator serves `[]` for a part that is fine (a guess): null, absent and an array
    # without strings must read the same.
    part: dict[str, Any] = {"status": "error"}
    if notes != "absent":
        part["notes"] = notes
    health = {"status": "error", "credential": part}
    status = read("sequin", {**seed("sequin"), "health": health})
    assert status.state is State.ERRORED and not status.error_reason
