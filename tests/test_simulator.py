"""The simulator over real HTTP, what every provider shares: faults, overrides, counting,
lifecycles, worlds, the exporter config and the command line. Each provider's own behaviour
is tested in tests/test_simulator_<provider>.py."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import yaml

from exporter.simulator import (
    PREFIXES,
    PROVIDERS,
    Simulator,
    World,
    bulk_id,
    bulk_world,
    demo_config,
    demo_world,
    error_body,
    parse_fault,
    run_simulator_in_thread,
)
from exporter.simulator.providers import paragon as p
from exporter.simulator.providers import sequin as s
from exporter.simulator.providers import terminal as t
from exporter.simulator.providers.terminal import TerminalWorld
from tests import simtools
from tests.simtools import (
    CONNECTIONS,
    JOBS,
    PARAGON_SYNCS,
    PERIOD,
    SEQUIN,
    SEQUIN_SYNCS,
    at,
    connection_token,
    job_log,
    ok,
    paragon,
    terminal,
)

# The simulator's shared fixtures: `sim` (this module's own) and `client` (its world reset).
sim_fixture, client_fixture = simtools.sim_fixture, simtools.client_fixture

CANONICAL = {"initializing", "active", "idle", "rate_limited", "disabled", "errored", "unknown"}
USERS = ("acme", "initech", "globex", "umbrella")


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


def paragon_body(client: httpx.Client, user: str, sync_id: str) -> httpx.Response:
    return client.get(f"{PARAGON_SYNCS}/{sync_id}", headers=paragon(client, user))


def terminal_job(client: httpx.Client, connection_id: str, job_id: str) -> httpx.Response:
    headers = terminal(connection_token(client, connection_id))
    return client.get(f"{JOBS}/{job_id}", headers=headers)


def sequin_body(client: httpx.Client, sync_id: str) -> httpx.Response:
    return client.get(f"{SEQUIN_SYNCS}/{sync_id}", headers=SEQUIN)


# --- every state, over time -------------------------------------------------------------------


def test_every_canonical_state_is_visible_at_start(client: httpx.Client) -> None:
    seen: set[str] = set()
    for user in USERS:
        for item in ok(client.get(PARAGON_SYNCS, headers=paragon(client, user)))["data"]:
            seen.add(canonical("paragon", ok(paragon_body(client, user, item["id"]))))
    for connection in ok(client.get(CONNECTIONS, headers=terminal()))["results"]:
        seen.add(canonical("terminal", job_log(client, connection["id"], limit="1")[0]))
    for body in ok(client.get(SEQUIN_SYNCS, headers=SEQUIN))["data"]:
        seen.add(canonical("sequin", body))
    assert seen == CANONICAL


def test_cycling_syncs_show_their_states_within_one_period() -> None:
    world = World.demo(period=PERIOD, started_at=0.0)
    terminal_state = world.state("terminal")
    assert isinstance(terminal_state, TerminalWorld)
    healthy = terminal_state.connections[t.HEALTHY]
    states: dict[str, list[str]] = {}
    latest_ids: list[str] = []
    for second in range(int(PERIOD) + 1):
        m = world.moment(float(second))
        bodies = {
            p.ORDERS: ("paragon", world.body("paragon", p.ORDERS, m.now)),
            p.TICKETS: ("paragon", world.body("paragon", p.TICKETS, m.now)),
            p.LEGACY: ("paragon", world.body("paragon", p.LEGACY, m.now)),
            s.FLAKY: ("sequin", world.body("sequin", s.FLAKY, m.now)),
        }
        newest = healthy.log(m)[0]
        bodies[t.HEALTHY] = ("terminal", healthy.render_job(newest, m))
        if not latest_ids or latest_ids[-1] != newest.id:
            latest_ids.append(newest.id)
        for key, (provider, body) in bodies.items():
            assert body is not None
            shown = states.setdefault(key, [])
            state = canonical(provider, body)
            if not shown or shown[-1] != state:
                shown.append(state)
    assert states[p.ORDERS] == ["initializing", "active", "idle", "active"]
    assert states[p.TICKETS] == ["rate_limited", "active", "rate_limited"]
    assert states[t.HEALTHY] == ["initializing", "active", "idle", "initializing"]
    assert latest_ids[0] == t.JOB and len(latest_ids) == 2, "one new job per period"
    assert states[p.LEGACY][:2] == ["idle", "active"]


def test_lifecycles_progress_in_real_time() -> None:
    with (
        run_simulator_in_thread(World.demo(period=2.0)) as fast,
        httpx.Client(base_url=fast.base_url, trust_env=False) as http,
    ):
        http.put("/_sim/clock", json={"elapsed": 0}).raise_for_status()
        acme = paragon(http, "acme")
        jobs = terminal(connection_token(http, t.HEALTHY))
        statuses: list[str] = []
        progress: list[float] = []
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and (not statuses or statuses[-1] != "IDLE"):
            status = ok(http.get(f"{PARAGON_SYNCS}/{p.ORDERS}", headers=acme))["status"]
            if not statuses or statuses[-1] != status:
                statuses.append(status)
            job = ok(http.get(f"{JOBS}/{t.JOB}", headers=jobs))
            if job["status"] == "in_progress":
                progress.append(job["progress"])
            time.sleep(0.01)
    assert statuses == ["INITIALIZING", "ACTIVE", "IDLE"]
    assert len(progress) >= 3 and progress == sorted(progress) and progress[-1] > progress[0]


# --- faults -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 404, 500, 503])
def test_status_faults(client: httpx.Client, status: int) -> None:
    fault = client.put(f"/_sim/faults/terminal/{t.JOB}", json={"status": status})
    assert fault.status_code == 200
    response = terminal_job(client, t.HEALTHY, t.JOB)
    assert response.status_code == status
    assert {"code", "message"} <= set(response.json())
    older = job_log(client, t.HEALTHY)[1]["id"]
    assert terminal_job(client, t.HEALTHY, older).status_code == 200
    assert client.delete(f"/_sim/faults/terminal/{t.JOB}").json() == {"removed": True}
    assert terminal_job(client, t.HEALTHY, t.JOB).status_code == 200


def test_rate_limit_fault_sets_retry_after(client: httpx.Client) -> None:
    client.put(
        f"/_sim/faults/terminal/{t.JOB}", json={"status": 429, "retry_after": "1.5"}
    ).raise_for_status()
    response = terminal_job(client, t.HEALTHY, t.JOB)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1.5"
    assert response.json()["code"] == "too_many_requests"
    assert response.json()["retryAfter"] == 2
    date = format_datetime(datetime.fromtimestamp(time.time() + 30, tz=UTC), usegmt=True)
    client.put(
        f"/_sim/faults/paragon/{p.ORDERS}", json={"status": 429, "retry_after": date}
    ).raise_for_status()
    limited = paragon_body(client, "acme", p.ORDERS)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == date
    assert limited.json() == {
        "message": "Injected fault: HTTP 429",
        "statusCode": 429,
        "error": "Too Many Requests",
    }


def test_malformed_fault(client: httpx.Client) -> None:
    client.put(f"/_sim/faults/sequin/{s.HEALTHY}", json={"malformed": True}).raise_for_status()
    response = sequin_body(client, s.HEALTHY)
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
    client.put(f"/_sim/faults/paragon/{p.ORDERS}", json={"wrong_shape": shape}).raise_for_status()
    response = paragon_body(client, "acme", p.ORDERS)
    assert response.status_code == 200
    assert check(response.json())


def test_delay_fault_triggers_client_timeouts(client: httpx.Client) -> None:
    headers = paragon(client, "acme")
    client.put(f"/_sim/faults/paragon/{p.ORDERS}", json={"delay": 1.0}).raise_for_status()
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        client.get(f"{PARAGON_SYNCS}/{p.ORDERS}", headers=headers, timeout=0.2)
    assert time.monotonic() - started < 0.9
    assert paragon_body(client, "acme", p.TICKETS).status_code == 200


def test_fault_with_times_and_provider_wide_faults(client: httpx.Client) -> None:
    client.put(
        f"/_sim/faults/sequin/{s.HEALTHY}", json={"status": 500, "times": 2}
    ).raise_for_status()
    codes = [sequin_body(client, s.HEALTHY).status_code for _ in range(3)]
    assert codes == [500, 500, 200]
    client.put("/_sim/faults/sequin", json={"status": 502}).raise_for_status()
    assert client.get(SEQUIN_SYNCS, headers=SEQUIN).status_code == 502
    assert sequin_body(client, s.ERROR).status_code == 502
    assert client.get("/_sim/faults").json()["sequin"] == {"*": {"status": 502}}
    client.delete("/_sim/faults").raise_for_status()
    assert client.get(SEQUIN_SYNCS, headers=SEQUIN).status_code == 200


def test_a_fault_can_aim_at_a_paragon_user(client: httpx.Client) -> None:
    client.put("/_sim/faults/paragon/initech", json={"status": 500}).raise_for_status()
    assert client.get(PARAGON_SYNCS, headers=paragon(client, "initech")).status_code == 500
    assert paragon_body(client, "initech", p.ERRORED).status_code == 500
    assert client.get(PARAGON_SYNCS, headers=paragon(client, "acme")).status_code == 200


def test_bad_fault_requests(client: httpx.Client) -> None:
    bad = client.put(f"/_sim/faults/paragon/{p.ORDERS}", json={"status": 200})
    assert bad.status_code == 400 and "400-599" in bad.json()["error"]
    assert client.put(f"/_sim/faults/paragon/{p.ORDERS}", json={"oops": 1}).status_code == 400
    header = client.put("/_sim/faults/terminal", json={"status": 429, "retry_after_header": 1})
    assert header.status_code == 400
    assert client.put("/_sim/faults/paragon/nope", json={"status": 500}).status_code == 404
    assert client.put("/_sim/faults/nobody", json={"status": 500}).status_code == 404
    with pytest.raises(ValueError, match="mutually exclusive"):
        parse_fault({"status": 500, "malformed": True})


# --- overrides and ad-hoc syncs ---------------------------------------------------------------


def test_override_merges_and_delete_restores(client: httpx.Client) -> None:
    override = {"status": "ERRORED", "reason": "token revoked", "summary": {"totalRecords": 5}}
    response = client.put(f"/_sim/syncs/paragon/{p.ORDERS}", json=override)
    assert response.status_code == 200
    body = ok(paragon_body(client, "acme", p.ORDERS))
    assert body["status"] == "ERRORED" and body["reason"] == "token revoked"
    assert body["summary"] == {"totalRecords": 5, "syncedRecordsCount": 0}
    listed = ok(client.get(PARAGON_SYNCS, headers=paragon(client, "acme")))["data"]
    item = {entry["id"]: entry for entry in listed}[p.ORDERS]
    assert item["status"] == "ERRORED" and item["reason"] == "token revoked"
    assert client.delete(f"/_sim/syncs/paragon/{p.ORDERS}").status_code == 200
    assert ok(paragon_body(client, "acme", p.ORDERS))["status"] == "INITIALIZING"
    assert client.put("/_sim/syncs/paragon/nope", json={"status": "IDLE"}).status_code == 404
    assert client.put(f"/_sim/syncs/paragon/{p.ORDERS}", json=[1]).status_code == 400


def test_an_override_sticks_to_one_terminal_job(client: httpx.Client) -> None:
    failed = {"status": "failed", "failureReason": "Injected"}
    assert client.put(f"/_sim/syncs/terminal/{t.JOB}", json=failed).status_code == 200
    assert job_log(client, t.HEALTHY)[0]["status"] == "failed"
    at(client, 1.05)
    log = job_log(client, t.HEALTHY)
    assert log[0]["status"] == "requested", "the next job is not overridden"
    assert log[1]["id"] == t.JOB and log[1]["failureReason"] == "Injected"
    shown = ok(client.get(f"/_sim/syncs/terminal/{t.ISSUES_JOB}", params={"expand": "issues"}))
    assert shown["issues"][0]["id"] == t.ONGOING_ISSUE


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
    assert ok(paragon_body(client, p.DEFAULT_USER, "exact-1")) == exact
    listed = ok(client.get(PARAGON_SYNCS, headers=paragon(client, p.DEFAULT_USER)))["data"]
    assert listed[-1]["id"] == "exact-1" and listed[-1]["status"] == "IDLE"
    assert "exact-1" in ok(client.get("/_sim/syncs"))["paragon"]
    client.put("/_sim/faults/paragon/exact-1", json={"status": 500}).raise_for_status()
    assert paragon_body(client, p.DEFAULT_USER, "exact-1").status_code == 500
    assert client.post("/_sim/syncs/paragon", json={"id": "", "body": {}}).status_code == 400
    assert client.post("/_sim/syncs/nobody", json={"id": "a", "body": {}}).status_code == 404
    client.post("/_sim/reset").raise_for_status()
    assert paragon_body(client, p.DEFAULT_USER, "exact-1").status_code == 404


def test_created_syncs_can_be_removed_and_catalogue_syncs_cannot(client: httpx.Client) -> None:
    body = {"status": "IDLE", "summary": {}}
    for sync_id in ("gone-1", p.ORDERS):
        client.post("/_sim/syncs/paragon", json={"id": sync_id, "body": body}).raise_for_status()
    client.post("/_sim/syncs/sequin", json={"id": "gone-2", "body": {"status": "active"}})
    client.put("/_sim/syncs/paragon/gone-1", json={"status": "ERRORED"}).raise_for_status()
    removed = client.delete("/_sim/syncs/paragon/gone-1", params={"remove": "true"})
    assert ok(removed) == {"removed": "gone-1"}
    assert paragon_body(client, p.DEFAULT_USER, "gone-1").status_code == 404
    assert "gone-1" not in ok(client.get("/_sim/syncs"))["paragon"]
    assert client.delete("/_sim/syncs/paragon/gone-1", params={"remove": "true"}).status_code == 404
    ok(client.delete(f"/_sim/syncs/paragon/{p.ORDERS}", params={"remove": "true"}))
    assert ok(paragon_body(client, "acme", p.ORDERS))["status"] == "INITIALIZING"
    refused = client.delete(f"/_sim/syncs/paragon/{p.ORDERS}", params={"remove": "true"})
    assert refused.status_code == 409, "a catalogue sync is overridden, never removed"
    ok(client.delete("/_sim/syncs/sequin/gone-2", params={"remove": "1"}))
    assert sequin_body(client, "gone-2").status_code == 404


def test_sim_syncs_lists_ids_per_provider(client: httpx.Client) -> None:
    ids = ok(client.get("/_sim/syncs"))
    assert list(ids) == [
        "paragon",
        "terminal",
        "sequin",
        "generic",
        "fivetran",
        "nango",
        "merge",
        "airbyte",
        "hightouch",
        "census",
    ]
    assert ids["paragon"][0] == p.ORDERS and len(ids["paragon"]) == 7
    assert {t.JOB, t.FAILED_JOB, t.ISSUES_JOB, t.HISTORICAL_JOB} <= set(ids["terminal"])
    assert ids["sequin"][0] == s.HEALTHY


# --- request counting and latency -------------------------------------------------------------


def test_request_counting(client: httpx.Client) -> None:
    acme = paragon(client, "acme")
    client.get(f"{PARAGON_SYNCS}/{p.ORDERS}", headers=acme)
    client.get(f"{PARAGON_SYNCS}/{p.ERRORED}", headers=acme)
    client.get(f"{PARAGON_SYNCS}/{p.ORDERS}", headers={})
    client.get(f"{JOBS}/missing", headers=terminal())
    client.put("/_sim/faults/sequin", json={"status": 500, "times": 1}).raise_for_status()
    client.get(SEQUIN_SYNCS, headers={})
    client.get(SEQUIN_SYNCS, headers={})
    client.get("/_sim/syncs")
    counts = client.get("/_sim/requests").json()
    assert counts["total"] == 6
    assert {k: v for k, v in counts["providers"].items() if v} == {
        "paragon": 3,
        "terminal": 1,
        "sequin": 2,
    }
    assert counts["paths"] == {
        f"{PARAGON_SYNCS}/{p.ORDERS}": 2,
        f"{PARAGON_SYNCS}/{p.ERRORED}": 1,
        f"{JOBS}/missing": 1,
        SEQUIN_SYNCS: 2,
    }
    per_second = counts["per_second"]
    assert {name for name, seconds in per_second.items() if seconds} == {
        "paragon",
        "terminal",
        "sequin",
    }
    assert sum(per_second["paragon"].values()) == 3
    assert all(abs(int(second) - time.time()) < 30 for second in per_second["paragon"])
    assert 1 <= counts["max_per_second"]["paragon"] <= 3
    assert counts["max_per_second"]["sequin"] == 2
    client.delete("/_sim/requests").raise_for_status()
    cleared = client.get("/_sim/requests").json()
    assert cleared["total"] == 0 and cleared["per_second"]["paragon"] == {}
    assert cleared["max_per_second"] == dict.fromkeys(PROVIDERS, 0)


def test_max_per_second_is_the_busiest_second(client: httpx.Client) -> None:
    for _ in range(5):
        client.get(SEQUIN_SYNCS, headers=SEQUIN)
    time.sleep(1.1)
    client.get(SEQUIN_SYNCS, headers=SEQUIN)
    counts = client.get("/_sim/requests").json()
    assert counts["max_per_second"]["sequin"] == 5
    assert sum(counts["per_second"]["sequin"].values()) == 6
    assert len(counts["per_second"]["sequin"]) >= 2


def test_global_latency() -> None:
    with (
        run_simulator_in_thread(World.demo(), latency=0.2) as slow,
        httpx.Client(base_url=slow.base_url, trust_env=False) as http,
    ):
        started = time.monotonic()
        assert sequin_body(http, s.HEALTHY).status_code == 200
        assert time.monotonic() - started >= 0.2
        started = time.monotonic()
        assert http.get("/_sim/requests").status_code == 200
        assert time.monotonic() - started < 0.2


# --- worlds -----------------------------------------------------------------------------------


def test_providers_are_found_by_module_name() -> None:
    assert list(PROVIDERS) == [
        "paragon",
        "terminal",
        "sequin",
        "generic",
        "fivetran",
        "nango",
        "merge",
        "airbyte",
        "hightouch",
        "census",
    ]
    assert PREFIXES == {
        "paragon": "/paragon",
        "terminal": "/terminal/tsp/v1",
        "sequin": "/sequin",
        "generic": "/generic",
        "fivetran": "/fivetran",
        "nango": "/nango",
        "merge": "/merge",
        "airbyte": "/airbyte/v1",
        "hightouch": "/hightouch/api/v1",
        "census": "/census/api/v1",
    }
    assert error_body("terminal", 404, "gone")["code"] == "not_found"


def test_bulk_world_ids_and_split() -> None:
    world = bulk_world(10)
    assert world.ids("paragon") == [bulk_id("paragon", n) for n in range(1, 5)]
    terminal_state = world.state("terminal")
    assert isinstance(terminal_state, TerminalWorld)
    assert list(terminal_state.connections) == [bulk_id("terminal", n) for n in (1, 2, 3)]
    assert len(world.ids("sequin")) == 3
    assert World.bulk(10).ids("sequin") == world.ids("sequin")
    now = time.time()
    for provider in ("paragon", "terminal", "sequin"):
        for sync_id in world.ids(provider, now):
            body = world.body(provider, sync_id, now)
            assert body is not None and canonical(provider, body) in CANONICAL
    assert set(demo_world().ids("terminal")) >= {t.JOB, t.FAILED_JOB, t.ISSUES_JOB}


def test_bulk_paragon_users_hold_a_fixed_number_of_syncs() -> None:
    default = World.bulk(150)
    config = demo_config("http://sim", default, discover=False)
    users = [entry["user"] for entry in config["sources"][0]["syncs"]]
    assert users[0] == users[19] == "bulk-user-0001" and users[20] == "bulk-user-0002"
    wide = World.bulk(3000, paragon_syncs_per_user=20)
    assert "syncs" not in demo_config("http://sim", wide)["sources"][0], "none has labels"
    assert demo_config("http://sim", wide)["sources"][0]["users"][-1] == "bulk-user-0050"
    assert len(demo_config("http://sim", wide)["sources"][0]["users"]) == 50
    with pytest.raises(TypeError, match="unknown world options"):
        World.bulk(3, paragon_sync_per_user=2)
    with pytest.raises(ValueError, match="positive"):
        World.bulk(3, paragon_syncs_per_user=0)


def test_bulk_worlds_answer_over_http() -> None:
    with (
        run_simulator_in_thread(World.bulk(30)) as running,
        httpx.Client(base_url=running.base_url, trust_env=False) as http,
    ):
        user = ok(http.get("/_sim/paragon"))["users"]
        assert list(user) == ["bulk-user-0001"] and len(user["bulk-user-0001"]) == 10
        listed = ok(http.get(PARAGON_SYNCS, headers=paragon(http, "bulk-user-0001")))["data"]
        assert len(listed) == 10
        connections = ok(http.get(CONNECTIONS, headers=terminal()))["results"]
        assert [c["id"] for c in connections] == [bulk_id("terminal", n) for n in range(1, 11)]
        for connection in connections:
            log = ok(http.get(JOBS, headers=terminal(connection["token"])))["results"]
            assert log and all(re.fullmatch(r"sync_\w{26}", entry["id"]) for entry in log)
        assert len(ok(http.get(SEQUIN_SYNCS, headers=SEQUIN))["data"]) == 10


# --- the exporter config ----------------------------------------------------------------------


def test_demo_config_has_the_shape_the_exporter_reads(sim: Simulator) -> None:
    config = sim.exporter_config()
    paragon_source, terminal_source, sequin_source = config["sources"][:3]
    info = httpx.get(f"{sim.base_url}/_sim/paragon", trust_env=False).json()
    assert paragon_source == {
        "name": "demo-paragon",
        "provider": "paragon",
        "base_url": f"{sim.base_url}/paragon",
        "auth": {"signing_key": info["signing_key"], "project_id": info["project_id"]},
        "users": list(USERS),
        "discover": True,
        "labels": {"tenant": "demo"},
        "syncs": [
            {"id": p.ORDERS, "user": "acme", "labels": {"team": "data"}},
            {"id": p.TICKETS, "user": "acme", "labels": {"team": "support"}},
        ],
    }
    assert terminal_source == {
        "name": "demo-terminal",
        "provider": "terminal",
        "base_url": f"{sim.base_url}/terminal/tsp/v1",
        "auth": {"token": "sim-terminal-secret"},
        "discover": True,
    }
    assert sequin_source == {
        "name": "demo-sequin",
        "provider": "sequin",
        "base_url": f"{sim.base_url}/sequin",
        "auth": {"token": "sim-sequin-key"},
        "discover": True,
        "label_from": {"tenant": "metadata.tenant_id"},
        "syncs": [{"id": s.HEALTHY, "labels": {"team": "growth"}}],
    }
    served = httpx.get(f"{sim.base_url}/_sim/config", trust_env=False).json()
    assert served == config == demo_config(sim.base_url, sim.world)


def test_static_config_reaches_every_sync(sim: Simulator, client: httpx.Client) -> None:
    config = ok(client.get("/_sim/config", params={"discover": "false"}))
    assert config == sim.exporter_config(discover=False)
    paragon_source, terminal_source, sequin_source = config["sources"][:3]
    assert "discover" not in paragon_source and "users" not in paragon_source
    assert terminal_source["discover"] is True
    assert "discover" not in sequin_source and len(sequin_source["syncs"]) == 6
    auth = paragon_source["auth"]
    for entry in paragon_source["syncs"]:
        now = int(time.time())
        claims = {
            "sub": entry["user"],
            "iat": now,
            "exp": now + 60,
            "aud": f"useparagon.com/{auth['project_id']}",
        }
        token = jwt.encode(claims, auth["signing_key"], algorithm="RS256")
        url = f"{paragon_source['base_url']}/api/syncs/{entry['id']}"
        headers = {"Authorization": f"Bearer {token}"}
        assert httpx.get(url, headers=headers, trust_env=False).status_code == 200
    for entry in sequin_source["syncs"]:
        sync_id = entry if isinstance(entry, str) else entry["id"]
        headers = {"Authorization": f"Bearer {sequin_source['auth']['token']}"}
        url = f"{sequin_source['base_url']}/v1/syncs/{sync_id}"
        assert httpx.get(url, headers=headers, trust_env=False).status_code == 200
    listed = httpx.get(
        f"{terminal_source['base_url']}/connections",
        headers={"Authorization": f"Bearer {terminal_source['auth']['token']}"},
        trust_env=False,
    )
    assert len(listed.json()["results"]) == 7


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
    text = run_cli("--print-config", "--listen", "127.0.0.1:9999")
    assert "signing_key: |\n      -----BEGIN PRIVATE KEY-----\n" in text
    config = yaml.safe_load(text)
    paragon_source, terminal_source, sequin_source = config["sources"][:3]
    assert paragon_source["base_url"] == "http://127.0.0.1:9999/paragon"
    assert set(paragon_source["auth"]) == {"signing_key", "project_id"}
    assert paragon_source["users"] == list(USERS)
    assert {"id": p.ORDERS, "user": "acme", "labels": {"team": "data"}} in paragon_source["syncs"]
    assert terminal_source["base_url"] == "http://127.0.0.1:9999/terminal/tsp/v1"
    assert terminal_source["auth"] == {"token": "sim-terminal-secret"}
    assert sequin_source["base_url"] == "http://127.0.0.1:9999/sequin"
    bulk = yaml.safe_load(run_cli("--print-config", "--syncs", "5", "--static-config"))
    assert [len(source.get("syncs", [])) for source in bulk["sources"]] == [2, 0, 1]
    assert bulk["sources"][0]["syncs"][0] == {"id": "bulk-paragon-000001", "user": "bulk-user-0001"}


def test_a_key_file_makes_print_config_match_a_separate_server(tmp_path: Path) -> None:
    key = tmp_path / "paragon.pem"
    first = yaml.safe_load(run_cli("--print-config", "--paragon-key", str(key)))
    assert key.stat().st_mode & 0o777 == 0o600
    # The printed config names the key file rather than copying the key into it.
    assert first["sources"][0]["auth"]["signing_key_file"] == str(key.resolve())
    assert "signing_key" not in first["sources"][0]["auth"]
    second = yaml.safe_load(run_cli("--print-config", "--paragon-key", str(key)))
    assert first["sources"][0]["auth"] == second["sources"][0]["auth"]
    fresh = yaml.safe_load(run_cli("--print-config"))
    assert fresh["sources"][0]["auth"] != first["sources"][0]["auth"]


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
        with httpx.Client(base_url=match.group(1), trust_env=False) as http:
            headers = paragon(http, "bulk-user-0001")
            response = http.get(f"{PARAGON_SYNCS}/{bulk_id('paragon', 1)}", headers=headers)
            assert response.status_code == 200
            assert len(http.get(SEQUIN_SYNCS, headers=SEQUIN).json()["data"]) == 10
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


def test_async_context_manager() -> None:
    async def scenario() -> int:
        async with (
            Simulator(World.demo()) as running,
            httpx.AsyncClient(base_url=running.base_url, trust_env=False) as http,
        ):
            response = await http.get(f"{SEQUIN_SYNCS}/{s.HEALTHY}", headers=SEQUIN)
            return response.status_code

    assert asyncio.run(scenario()) == 200


@pytest.mark.parametrize(
    ("text", "seconds"), [("30", 30.0), ("30s", 30.0), ("2m", 120.0), ("1h30m", 5400.0)]
)
def test_the_period_flag_reads_seconds_and_durations(text: str, seconds: float) -> None:
    from exporter.simulator.cli import parse_period

    assert parse_period(text) == seconds


@pytest.mark.parametrize("text", ["", "x", "2m30", "0s", "500ms", "-5"])
def test_the_period_flag_refuses_what_is_not_a_usable_period(text: str) -> None:
    from exporter.simulator.cli import parse_period

    with pytest.raises(ValueError):
        parse_period(text)


def test_providers_written_as_packages_are_discovered_like_modules() -> None:
    assert PROVIDERS["terminal"] is t.PROVIDER and PROVIDERS["paragon"] is p.PROVIDER
    assert hasattr(t, "__path__") and hasattr(p, "__path__")
