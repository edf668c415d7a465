"""The simulator over real HTTP: shapes, auth, faults, overrides, counting, lifecycles, CLI."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
import yaml

from exporter.simulator import (
    Simulator,
    World,
    bulk_id,
    bulk_world,
    demo_config,
    demo_world,
    parse_fault,
    run_simulator_in_thread,
)
from exporter.simulator.catalog import (
    PARAGON_DISABLED,
    PARAGON_ERRORED,
    PARAGON_LEGACY,
    PARAGON_LEGACY_PAUSED,
    PARAGON_MIGRATING,
    PARAGON_ORDERS,
    PARAGON_TICKETS,
    SEQUIN_BACKFILLING,
    SEQUIN_DISABLED,
    SEQUIN_ERROR,
    SEQUIN_EVERY_4H,
    SEQUIN_FLAKY,
    SEQUIN_HEALTHY,
    TERMINAL_FAILED,
    TERMINAL_JOB,
    TERMINAL_WITH_ISSUES,
)

PERIOD = 120.0
PARAGON = {"Authorization": "Bearer sim-paragon-token"}
TERMINAL = {"Authorization": "Bearer sim-terminal-secret", "Connection-Token": "con_tkn_simulator"}
SEQUIN = {"Authorization": "Bearer sim-sequin-key"}
HEADERS = {"paragon": PARAGON, "terminal": TERMINAL, "sequin": SEQUIN}
SYNC_PATHS = {
    "paragon": "/paragon/api/syncs",
    "terminal": "/terminal/tsp/v1/syncs",
    "sequin": "/sequin/v1/syncs",
}
CANONICAL = {"initializing", "active", "idle", "rate_limited", "disabled", "errored", "unknown"}
SEQUIN_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
TERMINAL_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def canonical(provider: str, body: dict[str, Any]) -> str:
    """The exporter's mapping of provider states, as the brief defines it."""
    status = body.get("status")
    if provider == "paragon":
        legacy = {"active": "active", "idle": "idle", "paused": "disabled", "errored": "errored"}
        if isinstance(status, str) and status.lower() in CANONICAL and status.isupper():
            return status.lower()
        return legacy.get(str(status), "unknown")
    if provider == "terminal":
        table = {
            "requested": "initializing",
            "in_progress": "active",
            "completed": "idle",
            "failed": "errored",
        }
        return table.get(str(status), "unknown")
    if status == "disabled":
        return "disabled"
    if body["health"]["status"] == "error":
        return "errored"
    if body["initial_backfill_completed_at"] is None:
        return "initializing"
    return "active" if status == "active" else "unknown"


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with run_simulator_in_thread(World.demo(period=PERIOD)) as running:
        yield running


@pytest.fixture
def client(sim: Simulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.base_url, timeout=5.0, trust_env=False) as http:
        http.post("/_sim/reset").raise_for_status()
        http.put("/_sim/clock", json={"elapsed": 0, "period": PERIOD}).raise_for_status()
        yield http


def at(client: httpx.Client, fraction: float) -> None:
    """Jump the lifecycles to `fraction` of the first period."""
    client.put("/_sim/clock", json={"elapsed": fraction * PERIOD}).raise_for_status()


def get(client: httpx.Client, provider: str, sync_id: str, **params: str) -> httpx.Response:
    return client.get(f"{SYNC_PATHS[provider]}/{sync_id}", headers=HEADERS[provider], params=params)


def body_of(client: httpx.Client, provider: str, sync_id: str) -> dict[str, Any]:
    response = get(client, provider, sync_id)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


# --- shapes ---------------------------------------------------------------------------------


def test_paragon_sync_shape_while_active(client: httpx.Client) -> None:
    at(client, 0.3)
    body = body_of(client, "paragon", PARAGON_ORDERS)
    assert body["status"] == "ACTIVE"
    summary = body["summary"]
    assert 0 < summary["syncedRecordsCount"] < summary["totalRecords"] == 12_480
    assert "lastSyncedAt" not in summary
    assert body["incrementalAccumulatorFrequency"] == "1m"
    assert re.fullmatch(r"[0-9a-f-]{36}", body["credentialId"])


def test_paragon_idle_has_last_synced_at(client: httpx.Client) -> None:
    at(client, 0.7)
    body = body_of(client, "paragon", PARAGON_ORDERS)
    assert body["status"] == "IDLE"
    summary = body["summary"]
    assert summary["syncedRecordsCount"] == summary["totalRecords"]
    assert summary["lastSyncedAt"].endswith("Z") and "." in summary["lastSyncedAt"]
    last = datetime.fromisoformat(summary["lastSyncedAt"]).timestamp()
    assert abs(last - (time.time() - 0.2 * PERIOD)) < 5
    assert isinstance(summary["latestCursor"], str)


def test_paragon_demo_statuses(client: httpx.Client) -> None:
    tickets = body_of(client, "paragon", PARAGON_TICKETS)
    assert tickets["status"] == "RATE_LIMITED"
    assert 0 < tickets["rateLimitBackoffMs"] <= 0.4 * PERIOD * 1000
    assert datetime.fromisoformat(tickets["summary"]["lastSyncedAt"]).utcoffset() is not None
    errored = body_of(client, "paragon", PARAGON_ERRORED)
    assert errored["status"] == "ERRORED"
    assert errored["reason"] == (
        f"Credential ID [{errored['credentialId']}] is no longer valid or has been deleted."
    )
    assert body_of(client, "paragon", PARAGON_DISABLED)["status"] == "DISABLED"
    assert body_of(client, "paragon", PARAGON_MIGRATING)["status"] == "MIGRATING"
    legacy = body_of(client, "paragon", PARAGON_LEGACY)
    assert legacy["status"] in ("active", "idle")
    assert set(legacy["summary"]) == {"total_records", "synced_records_count", "last_synced_at"}
    assert body_of(client, "paragon", PARAGON_LEGACY_PAUSED)["status"] == "paused"


def test_rate_limit_backoff_counts_down(client: httpx.Client) -> None:
    at(client, 0.1)
    first = body_of(client, "paragon", PARAGON_TICKETS)["rateLimitBackoffMs"]
    at(client, 0.3)
    second = body_of(client, "paragon", PARAGON_TICKETS)["rateLimitBackoffMs"]
    assert first > second > 0
    at(client, 0.5)
    assert body_of(client, "paragon", PARAGON_TICKETS)["status"] == "ACTIVE"


def test_paragon_list(client: httpx.Client) -> None:
    response = client.get("/paragon/api/syncs", headers=PARAGON)
    assert response.status_code == 200
    items = response.json()["data"]
    assert len(items) == 7
    for item in items:
        assert set(item) == {
            "id",
            "integration",
            "pipeline",
            "status",
            "configurationName",
            "dateCreated",
            "dateUpdated",
        }
    statuses = {item["id"]: item["status"] for item in items}
    assert statuses[PARAGON_MIGRATING] == "MIGRATING"
    assert statuses[PARAGON_ORDERS] == "INITIALIZING"


def test_terminal_sync_shape(client: httpx.Client) -> None:
    at(client, 0.35)
    body = body_of(client, "terminal", TERMINAL_JOB)
    assert body["id"] == TERMINAL_JOB
    assert body["status"] == "in_progress"
    assert 0 < body["progress"] < 100
    assert round(body["progress"], 2) == body["progress"]
    assert TERMINAL_TIME.match(body["requestedAt"])
    assert TERMINAL_TIME.match(body["startFrom"])
    assert body["attempts"] == 1
    assert "completedAt" not in body
    at(client, 0.8)
    done = body_of(client, "terminal", TERMINAL_JOB)
    assert done["status"] == "completed" and done["progress"] == 100
    assert TERMINAL_TIME.match(done["completedAt"])
    at(client, 1.05)
    again = body_of(client, "terminal", TERMINAL_JOB)
    assert again["status"] == "requested" and again["attempts"] == 2


def test_terminal_failed_and_issues(client: httpx.Client) -> None:
    failed = body_of(client, "terminal", TERMINAL_FAILED)
    assert failed["status"] == "failed"
    assert failed["failureReason"]
    plain = body_of(client, "terminal", TERMINAL_WITH_ISSUES)
    assert all(issue.startswith("isu_") for issue in plain["issues"]) and plain["issues"]
    expanded = get(client, "terminal", TERMINAL_WITH_ISSUES, expand="issues").json()
    assert [issue["id"] for issue in expanded["issues"]] == plain["issues"]
    for issue in expanded["issues"]:
        assert {"id", "status", "connection", "error", "firstReportedAt", "lastReportedAt"} <= set(
            issue
        )
        assert {"code", "message"} <= set(issue["error"])
    bad = get(client, "terminal", TERMINAL_JOB, expand="drivers")
    assert bad.status_code == 400
    assert bad.json()["code"] == "bad_request"


def test_terminal_list_paginates(client: httpx.Client) -> None:
    seen: list[str] = []
    params: dict[str, str] = {"limit": "2"}
    pages = 0
    while True:
        response = client.get("/terminal/tsp/v1/syncs", headers=TERMINAL, params=params)
        assert response.status_code == 200
        page = response.json()
        seen += [sync["id"] for sync in page["results"]]
        pages += 1
        if "next" not in page:
            break
        params = {"limit": "2", "cursor": page["next"]}
    assert pages == 2
    assert seen == [TERMINAL_JOB, TERMINAL_FAILED, TERMINAL_WITH_ISSUES]
    failed = client.get("/terminal/tsp/v1/syncs", headers=TERMINAL, params={"status": "failed"})
    assert [sync["id"] for sync in failed.json()["results"]] == [TERMINAL_FAILED]
    for params in ({"limit": "0"}, {"cursor": "%%%"}, {"status": "done"}):
        bad = client.get("/terminal/tsp/v1/syncs", headers=TERMINAL, params=params)
        assert bad.status_code == 400
        assert bad.json()["code"] == "bad_request"


def test_sequin_sync_shapes(client: httpx.Client) -> None:
    healthy = body_of(client, "sequin", SEQUIN_HEALTHY)
    assert healthy["id"] == SEQUIN_HEALTHY == healthy["health"]["sync_id"]
    assert healthy["status"] == "active" and healthy["health"]["status"] == "healthy"
    assert healthy["sync_frequency"] == "continuous"
    for key in ("created_at", "updated_at", "initial_backfill_completed_at"):
        assert SEQUIN_TIME.match(healthy[key]), healthy[key]
    assert set(healthy["rate_limit"]) == {"allowed_requests", "interval", "max_concurrent_requests"}
    assert body_of(client, "sequin", SEQUIN_EVERY_4H)["sync_frequency"] == "4h"
    assert body_of(client, "sequin", SEQUIN_DISABLED)["status"] == "disabled"
    assert body_of(client, "sequin", SEQUIN_ERROR)["health"]["status"] == "error"
    assert body_of(client, "sequin", SEQUIN_BACKFILLING)["initial_backfill_completed_at"] is None
    at(client, 0.9)
    assert body_of(client, "sequin", SEQUIN_FLAKY)["health"]["status"] == "warn"
    listed = client.get("/sequin/v1/syncs", headers=SEQUIN).json()["data"]
    assert [sync["id"] for sync in listed][:2] == [SEQUIN_HEALTHY, SEQUIN_EVERY_4H]
    assert len(listed) == 6


def test_every_canonical_state_is_visible_at_start(client: httpx.Client) -> None:
    seen: set[str] = set()
    for provider in ("paragon", "terminal", "sequin"):
        listing = client.get(SYNC_PATHS[provider], headers=HEADERS[provider]).json()
        for sync_id in [item["id"] for item in listing.get("data", listing.get("results", []))]:
            seen.add(canonical(provider, body_of(client, provider, sync_id)))
    assert seen == CANONICAL


def test_cycling_syncs_show_their_states_within_one_period() -> None:
    world = World.demo(period=PERIOD, started_at=0.0)
    states: dict[tuple[str, str], list[str]] = {}
    for second in range(int(PERIOD) + 1):
        for provider in ("paragon", "terminal", "sequin"):
            for sync_id in world.ids(provider):
                body = world.body(provider, sync_id, float(second))
                assert body is not None
                shown = states.setdefault((provider, sync_id), [])
                state = canonical(provider, body)
                if not shown or shown[-1] != state:
                    shown.append(state)
    assert states[("paragon", PARAGON_ORDERS)] == ["initializing", "active", "idle", "active"]
    assert states[("paragon", PARAGON_TICKETS)] == ["rate_limited", "active", "rate_limited"]
    assert states[("terminal", TERMINAL_JOB)] == ["initializing", "active", "idle", "initializing"]
    assert states[("paragon", PARAGON_LEGACY)][:2] == ["idle", "active"]


# --- auth and errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "sync_id"),
    [("paragon", PARAGON_ORDERS), ("terminal", TERMINAL_JOB), ("sequin", SEQUIN_HEALTHY)],
)
def test_bad_credentials_are_401(client: httpx.Client, provider: str, sync_id: str) -> None:
    path = f"{SYNC_PATHS[provider]}/{sync_id}"
    wrong = {**HEADERS[provider], "Authorization": "Bearer wrong"}
    for headers in ({}, wrong):
        response = client.get(path, headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/json"
        assert isinstance(response.json(), dict)
    assert client.get(SYNC_PATHS[provider], headers=wrong).status_code == 401


def test_terminal_needs_the_connection_token(client: httpx.Client) -> None:
    path = f"{SYNC_PATHS['terminal']}/{TERMINAL_JOB}"
    missing = client.get(path, headers={"Authorization": TERMINAL["Authorization"]})
    wrong = client.get(path, headers={**TERMINAL, "Connection-Token": "con_tkn_other"})
    for response in (missing, wrong):
        assert response.status_code == 401
        body = response.json()
        assert body["code"] == "unauthorized" and body["message"]


@pytest.mark.parametrize("provider", ["paragon", "terminal", "sequin"])
def test_unknown_sync_is_404(client: httpx.Client, provider: str) -> None:
    response = get(client, provider, "does-not-exist")
    assert response.status_code == 404
    assert isinstance(response.json(), dict)
    if provider == "terminal":
        assert response.json()["code"] == "not_found"


# --- faults -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 404, 500, 503])
def test_status_faults(client: httpx.Client, status: int) -> None:
    fault = client.put(f"/_sim/faults/terminal/{TERMINAL_JOB}", json={"status": status})
    assert fault.status_code == 200
    response = get(client, "terminal", TERMINAL_JOB)
    assert response.status_code == status
    assert {"code", "message"} <= set(response.json())
    assert get(client, "terminal", TERMINAL_FAILED).status_code == 200
    assert client.delete(f"/_sim/faults/terminal/{TERMINAL_JOB}").json() == {"removed": True}
    assert get(client, "terminal", TERMINAL_JOB).status_code == 200


def test_rate_limit_fault_sets_retry_after(client: httpx.Client) -> None:
    client.put(
        f"/_sim/faults/terminal/{TERMINAL_JOB}", json={"status": 429, "retry_after": "1.5"}
    ).raise_for_status()
    response = get(client, "terminal", TERMINAL_JOB)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1.5"
    assert response.json()["code"] == "too_many_requests"
    assert response.json()["retryAfter"] == 2
    date = format_datetime(datetime.fromtimestamp(time.time() + 30, tz=UTC), usegmt=True)
    client.put(
        f"/_sim/faults/paragon/{PARAGON_ORDERS}", json={"status": 429, "retry_after": date}
    ).raise_for_status()
    limited = get(client, "paragon", PARAGON_ORDERS)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == date


def test_malformed_fault(client: httpx.Client) -> None:
    client.put(f"/_sim/faults/sequin/{SEQUIN_HEALTHY}", json={"malformed": True}).raise_for_status()
    response = get(client, "sequin", SEQUIN_HEALTHY)
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)


@pytest.mark.parametrize(
    ("shape", "check"),
    [
        (True, lambda body: isinstance(body, list)),
        ("missing_status", lambda body: isinstance(body, dict) and "status" not in body),
        ("null", lambda body: body is None),
    ],
)
def test_wrong_shape_fault(client: httpx.Client, shape: object, check: Any) -> None:
    client.put(
        f"/_sim/faults/paragon/{PARAGON_ORDERS}", json={"wrong_shape": shape}
    ).raise_for_status()
    response = get(client, "paragon", PARAGON_ORDERS)
    assert response.status_code == 200
    assert check(response.json())


def test_delay_fault_triggers_client_timeouts(client: httpx.Client) -> None:
    client.put(f"/_sim/faults/paragon/{PARAGON_ORDERS}", json={"delay": 1.0}).raise_for_status()
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        client.get(f"/paragon/api/syncs/{PARAGON_ORDERS}", headers=PARAGON, timeout=0.2)
    assert time.monotonic() - started < 0.9
    assert get(client, "paragon", PARAGON_TICKETS).status_code == 200


def test_fault_with_times_and_provider_wide_faults(client: httpx.Client) -> None:
    client.put(
        f"/_sim/faults/sequin/{SEQUIN_HEALTHY}", json={"status": 500, "times": 2}
    ).raise_for_status()
    codes = [get(client, "sequin", SEQUIN_HEALTHY).status_code for _ in range(3)]
    assert codes == [500, 500, 200]
    client.put("/_sim/faults/sequin", json={"status": 502}).raise_for_status()
    assert client.get("/sequin/v1/syncs", headers=SEQUIN).status_code == 502
    assert get(client, "sequin", SEQUIN_ERROR).status_code == 502
    assert client.get("/_sim/faults").json()["sequin"] == {"*": {"status": 502}}
    client.delete("/_sim/faults").raise_for_status()
    assert client.get("/sequin/v1/syncs", headers=SEQUIN).status_code == 200


def test_bad_fault_requests(client: httpx.Client) -> None:
    bad = client.put(f"/_sim/faults/paragon/{PARAGON_ORDERS}", json={"status": 200})
    assert bad.status_code == 400 and "400-599" in bad.json()["error"]
    assert client.put(f"/_sim/faults/paragon/{PARAGON_ORDERS}", json={"oops": 1}).status_code == 400
    assert client.put("/_sim/faults/paragon/nope", json={"status": 500}).status_code == 404
    assert client.put("/_sim/faults/nobody", json={"status": 500}).status_code == 404
    with pytest.raises(ValueError, match="mutually exclusive"):
        parse_fault({"status": 500, "malformed": True})


# --- overrides and ad-hoc syncs ---------------------------------------------------------------


def test_override_merges_and_delete_restores(client: httpx.Client) -> None:
    override = {"status": "ERRORED", "reason": "token revoked", "summary": {"totalRecords": 5}}
    response = client.put(f"/_sim/syncs/paragon/{PARAGON_ORDERS}", json=override)
    assert response.status_code == 200
    body = body_of(client, "paragon", PARAGON_ORDERS)
    assert body["status"] == "ERRORED" and body["reason"] == "token revoked"
    assert body["summary"] == {"totalRecords": 5, "syncedRecordsCount": 0}
    listed = client.get("/paragon/api/syncs", headers=PARAGON).json()["data"]
    assert {item["id"]: item["status"] for item in listed}[PARAGON_ORDERS] == "ERRORED"
    assert client.delete(f"/_sim/syncs/paragon/{PARAGON_ORDERS}").status_code == 200
    assert body_of(client, "paragon", PARAGON_ORDERS)["status"] == "INITIALIZING"
    assert client.put("/_sim/syncs/paragon/nope", json={"status": "IDLE"}).status_code == 404
    assert client.put(f"/_sim/syncs/paragon/{PARAGON_ORDERS}", json=[1]).status_code == 400


def test_created_static_sync_answers_exactly(client: httpx.Client) -> None:
    exact = {
        "status": "IDLE",
        "summary": {
            "totalRecords": 10,
            "syncedRecordsCount": 10,
            "lastSyncedAt": "2024-01-02T03:04:05.678Z",
        },
        "credentialId": "x",
    }
    created = client.post("/_sim/syncs/paragon", json={"id": "exact-1", "body": exact})
    assert created.status_code == 201
    assert body_of(client, "paragon", "exact-1") == exact
    listed = client.get("/paragon/api/syncs", headers=PARAGON).json()["data"]
    assert listed[-1]["id"] == "exact-1" and listed[-1]["status"] == "IDLE"
    client.put("/_sim/faults/paragon/exact-1", json={"status": 500}).raise_for_status()
    assert get(client, "paragon", "exact-1").status_code == 500
    assert client.post("/_sim/syncs/paragon", json={"id": "", "body": {}}).status_code == 400
    client.post("/_sim/reset").raise_for_status()
    assert get(client, "paragon", "exact-1").status_code == 404


# --- request counting and latency -------------------------------------------------------------


def test_request_counting(client: httpx.Client) -> None:
    get(client, "paragon", PARAGON_ORDERS)
    get(client, "paragon", PARAGON_ORDERS)
    get(client, "terminal", "missing")
    client.get("/sequin/v1/syncs", headers={})
    client.get("/_sim/syncs")
    counts = client.get("/_sim/requests").json()
    assert counts["total"] == 4
    assert counts["providers"] == {"paragon": 2, "terminal": 1, "sequin": 1}
    assert counts["paths"] == {
        f"/paragon/api/syncs/{PARAGON_ORDERS}": 2,
        "/terminal/tsp/v1/syncs/missing": 1,
        "/sequin/v1/syncs": 1,
    }
    client.delete("/_sim/requests").raise_for_status()
    assert client.get("/_sim/requests").json()["total"] == 0


def test_global_latency() -> None:
    with (
        run_simulator_in_thread(World.demo(), latency=0.2) as slow,
        httpx.Client(base_url=slow.base_url, trust_env=False) as http,
    ):
        started = time.monotonic()
        assert get(http, "sequin", SEQUIN_HEALTHY).status_code == 200
        assert time.monotonic() - started >= 0.2
        started = time.monotonic()
        assert http.get("/_sim/requests").status_code == 200
        assert time.monotonic() - started < 0.2


# --- lifecycles in real time ------------------------------------------------------------------


def test_lifecycles_progress_in_real_time() -> None:
    world = World.demo(period=2.0)
    with (
        run_simulator_in_thread(world) as fast,
        httpx.Client(base_url=fast.base_url, trust_env=False) as http,
    ):
        http.put("/_sim/clock", json={"elapsed": 0}).raise_for_status()
        statuses: list[str] = []
        progress: list[float] = []
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and (not statuses or statuses[-1] != "IDLE"):
            status = body_of(http, "paragon", PARAGON_ORDERS)["status"]
            if not statuses or statuses[-1] != status:
                statuses.append(status)
            job = body_of(http, "terminal", TERMINAL_JOB)
            if job["status"] == "in_progress":
                progress.append(job["progress"])
            time.sleep(0.01)
    assert statuses == ["INITIALIZING", "ACTIVE", "IDLE"]
    assert len(progress) >= 3 and progress == sorted(progress) and progress[-1] > progress[0]


# --- worlds, config and the command line ------------------------------------------------------


def test_bulk_world_ids_and_split() -> None:
    world = bulk_world(10)
    assert [len(world.ids(p)) for p in ("paragon", "terminal", "sequin")] == [4, 3, 3]
    assert world.ids("paragon")[0] == bulk_id("paragon", 1) == "bulk-paragon-000001"
    assert World.bulk(10).ids("sequin") == world.ids("sequin")
    assert demo_world().ids("terminal") == [TERMINAL_JOB, TERMINAL_FAILED, TERMINAL_WITH_ISSUES]
    now = time.time()
    for provider in ("paragon", "terminal", "sequin"):
        for sync_id in world.ids(provider):
            body = world.body(provider, sync_id, now)
            assert body is not None and canonical(provider, body) in CANONICAL


def test_demo_config_points_at_the_simulator(sim: Simulator, client: httpx.Client) -> None:
    config = demo_config(sim.base_url)
    assert [source["provider"] for source in config["sources"]] == ["paragon", "terminal", "sequin"]
    for source in config["sources"]:
        assert source["base_url"].startswith(sim.base_url)
        headers = {"Authorization": f"Bearer {source['auth']['token']}"}
        if "connection_token" in source["auth"]:
            headers["Connection-Token"] = source["auth"]["connection_token"]
        for entry in source["syncs"]:
            sync_id = entry if isinstance(entry, str) else entry["id"]
            path = "/api/syncs/" if source["provider"] == "paragon" else "/syncs/"
            if source["provider"] == "sequin":
                path = "/v1/syncs/"
            response = httpx.get(
                source["base_url"] + path + sync_id, headers=headers, trust_env=False
            )
            assert response.status_code == 200
    assert client.get("/_sim/config").json() == config == sim.exporter_config()


def run_cli(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "exporter.simulator", *args],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    return result.stdout


def test_print_config_is_yaml() -> None:
    config = yaml.safe_load(run_cli("--print-config", "--listen", "127.0.0.1:9999"))
    paragon, terminal, sequin = config["sources"]
    assert paragon["base_url"] == "http://127.0.0.1:9999/paragon"
    assert paragon["auth"] == {"token": "sim-paragon-token"}
    assert paragon["labels"] == {"tenant": "demo"}
    assert {"id": PARAGON_ORDERS, "labels": {"team": "data"}} in paragon["syncs"]
    assert terminal["base_url"] == "http://127.0.0.1:9999/terminal/tsp/v1"
    assert terminal["auth"]["connection_token"] == "con_tkn_simulator"
    assert sequin["base_url"] == "http://127.0.0.1:9999/sequin"
    bulk = yaml.safe_load(run_cli("--print-config", "--syncs", "5"))
    assert [len(source["syncs"]) for source in bulk["sources"]] == [2, 2, 1]


def test_process_mode_serves_until_terminated() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "exporter.simulator", "--listen", "127.0.0.1:0", "--syncs", "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.fullmatch(r"simulator listening on (http://127\.0\.0\.1:\d+)\n", line)
        assert match, line
        url = match.group(1)
        response = httpx.get(
            f"{url}/paragon/api/syncs/{bulk_id('paragon', 1)}", headers=PARAGON, trust_env=False
        )
        assert response.status_code == 200
        listed = httpx.get(f"{url}/sequin/v1/syncs", headers=SEQUIN, trust_env=False)
        assert len(listed.json()["data"]) == 10
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


def test_async_context_manager() -> None:
    async def scenario() -> int:
        async with (
            Simulator(World.demo()) as running,
            httpx.AsyncClient(base_url=running.base_url, trust_env=False) as http,
        ):
            response = await http.get(f"/sequin/v1/syncs/{SEQUIN_HEALTHY}", headers=SEQUIN)
            return response.status_code

    assert asyncio.run(scenario()) == 200
