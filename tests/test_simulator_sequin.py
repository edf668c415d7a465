"""The simulated Sequin over real HTTP: sync objects whose health and tenant mapping are data."""

from __future__ import annotations

import re
from typing import Any

import httpx

from exporter.simulator.providers import sequin as s
from tests import simtools
from tests.simtools import (
    SEQUIN,
    SEQUIN_SYNCS,
    at,
    ok,
)

# The simulator's shared fixtures: `sim` (this module's own) and `client` (its world reset).
sim_fixture, client_fixture = simtools.sim_fixture, simtools.client_fixture

SEQUIN_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")


def body_of(client: httpx.Client, sync_id: str) -> dict[str, Any]:
    body: dict[str, Any] = ok(client.get(f"{SEQUIN_SYNCS}/{sync_id}", headers=SEQUIN))
    return body


def test_sync_shapes(client: httpx.Client) -> None:
    healthy = body_of(client, s.HEALTHY)
    assert healthy["id"] == s.HEALTHY == healthy["health"]["sync_id"]
    assert healthy["status"] == "active" and healthy["health"]["status"] == "healthy"
    assert healthy["sync_frequency"] == "continuous"
    for key in ("created_at", "updated_at", "initial_backfill_completed_at"):
        assert SEQUIN_TIME.match(healthy[key]), healthy[key]
    assert set(healthy["rate_limit"]) == {"allowed_requests", "interval", "max_concurrent_requests"}
    assert body_of(client, s.EVERY_4H)["sync_frequency"] == "4h"
    assert body_of(client, s.DISABLED)["status"] == "disabled"
    assert body_of(client, s.BACKFILLING)["initial_backfill_completed_at"] is None


def test_health_is_status_plus_credential_and_provider_notes(client: httpx.Client) -> None:
    healthy = body_of(client, s.HEALTHY)["health"]
    assert set(healthy) == {"status", "sync_id", "credential", "provider"}
    assert healthy["credential"]["status"] == "ok" and healthy["credential"]["notes"] == []
    assert SEQUIN_TIME.match(healthy["credential"]["time"])
    assert healthy["provider"] == {"status": "ok", "notes": []}
    assert body_of(client, s.EVERY_4H)["health"]["status"] == "ok"
    error = body_of(client, s.ERROR)["health"]
    assert error["status"] == "error"
    assert error["credential"]["status"] == "error"
    assert error["credential"]["notes"] == ["Token was revoked by the user"]
    assert error["provider"]["status"] == "ok"
    warn = body_of(client, s.FLAKY)["health"]
    assert warn["status"] == "warn" and warn["credential"]["status"] == "ok"
    assert warn["provider"]["status"] == "warn"
    [note] = warn["provider"]["notes"]
    assert "5xx" in note
    at(client, 0.5)
    assert body_of(client, s.FLAKY)["health"]["status"] == "healthy"
    at(client, 0.99)
    assert body_of(client, s.FLAKY)["health"]["status"] == "warn"


def test_syncs_map_to_tenants_by_metadata_and_external_id(client: httpx.Client) -> None:
    body = body_of(client, s.HEALTHY)
    assert body["metadata"] == {"tenant_id": "t-choam"}
    assert body["external_id"] == "t-choam-hubspot"
    tenants = {
        sync["id"]: sync["metadata"]["tenant_id"]
        for sync in ok(client.get(SEQUIN_SYNCS, headers=SEQUIN))["data"]
    }
    assert set(tenants.values()) == {"t-choam", "t-wonka", "t-tyrell"}


def test_the_list_holds_every_sync_in_full(client: httpx.Client) -> None:
    listed = ok(client.get(SEQUIN_SYNCS, headers=SEQUIN))["data"]
    assert [sync["id"] for sync in listed] == [
        s.HEALTHY,
        s.EVERY_4H,
        s.DISABLED,
        s.ERROR,
        s.BACKFILLING,
        s.FLAKY,
    ]
    assert listed[0] == body_of(client, s.HEALTHY)


def test_errors(client: httpx.Client) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        refused = client.get(SEQUIN_SYNCS, headers=headers)
        assert refused.status_code == 401
        assert refused.json() == {
            "summary": "Please provide a valid API key",
            "code": "unauthorized",
        }
    missing = client.get(f"{SEQUIN_SYNCS}/nope", headers=SEQUIN)
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
