"""The simulated Terminal over real HTTP: connections, job logs that grow, issues, errors."""

from __future__ import annotations

import asyncio
import copy
import json
import re
from typing import Any

import httpx
import jsonschema  # type: ignore[import-untyped]
import pytest
import referencing
from referencing.jsonschema import DRAFT202012

from exporter.simulator import Simulator, World
from exporter.simulator.providers import terminal as t
from tests import simtools
from tests.simtools import (
    CONNECTIONS,
    JOBS,
    PERIOD,
    at,
    connection_token,
    job_log,
    ok,
    terminal,
)
from tests.tools import ROOT, require_file

# The simulator's shared fixtures: `sim` (this module's own) and `client` (its world reset).
sim_fixture, client_fixture = simtools.sim_fixture, simtools.client_fixture

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
JOB_ID = re.compile(r"^sync_[0-9A-HJKMNP-TV-Z]{26}$")
DEMO = [
    t.HEALTHY,
    t.RECOVERED,
    t.FAILING,
    t.DISCONNECTED,
    t.MANUAL,
    t.WITH_ISSUES,
    t.HISTORICAL,
]


def connections(client: httpx.Client, **params: str) -> dict[str, Any]:
    page: dict[str, Any] = ok(client.get(CONNECTIONS, headers=terminal(), params=params))
    return page


def job(client: httpx.Client, connection_id: str, job_id: str, **params: str) -> httpx.Response:
    headers = terminal(connection_token(client, connection_id))
    return client.get(f"{JOBS}/{job_id}", headers=headers, params=params)


def latest(client: httpx.Client, connection_id: str, **params: str) -> dict[str, Any]:
    return job_log(client, connection_id, limit="1", **params)[0]


# --- connections --------------------------------------------------------------------------------


def spec_validator(schema: str) -> jsonschema.Draft202012Validator:
    """A validator of one of the schemas of Terminal's official spec (third-party: not in the
    repository, read beside the clone).

    The spec's `ProviderOptions` is a `oneOf` of three alternatives that every object matches
    alike, so no value could pass it: it is read as an `anyOf`.
    """
    path = require_file(
        "Terminal's OpenAPI spec",
        "SYNC_EXPORTER_TERMINAL_SPEC",
        ROOT.parent / "shared" / "specs" / "terminal-openapi.json",
    )
    spec = copy.deepcopy(json.loads(path.read_text()))
    options = spec["components"]["schemas"]["ProviderOptions"]
    options["anyOf"] = options.pop("oneOf")
    resource: referencing.Resource[Any] = DRAFT202012.create_resource(spec)
    registry: referencing.Registry[Any] = referencing.Registry().with_resource("urn:t", resource)
    ref = {"$ref": f"urn:t#/components/schemas/{schema}"}
    return jsonschema.Draft202012Validator(ref, registry=registry)


def test_connections_validate_against_terminals_spec(client: httpx.Client) -> None:
    validator = spec_validator("Connection")
    made = {"id": "conn_spec", "company": "Spec Freight", "provider": "samsara", "tags": ["s"]}
    created = client.post("/_sim/terminal/connections", json=made)
    assert created.status_code == 201, created.text
    listed = connections(client)["results"]
    assert {c["id"] for c in listed} >= {*DEMO, "conn_spec"}
    for connection in listed:
        problems = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(connection)]
        assert problems == [], connection["id"]
    assert ok(client.delete("/_sim/terminal/connections/conn_spec"))


def test_jobs_validate_against_terminals_spec(client: httpx.Client) -> None:
    # Unexpanded only: the spec types `issues` as ids, and does not model `expand=issues`.
    validator = spec_validator("Sync")
    for connection_id in DEMO:
        for body in job_log(client, connection_id):
            problems = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(body)]
            assert problems == [], (connection_id, body["id"])


def test_connections_list_with_the_secret_key_only(client: httpx.Client) -> None:
    page = connections(client)
    assert [c["id"] for c in page["results"]] == DEMO
    assert "next" not in page
    for c in page["results"]:
        assert {
            "id",
            "status",
            "syncMode",
            "token",
            "company",
            "provider",
            "externalId",
            "tags",
            "linkUrl",
            "createdAt",
            "updatedAt",
            "account",
            "options",
        } <= set(c)
        assert re.fullmatch(r"conn_[0-9A-Z]{26}", c["id"])
        assert re.fullmatch(r"con_tkn_\S+", c["token"])
        assert c["status"] in t.CONNECTION_STATUSES and c["syncMode"] in t.SYNC_MODES
        assert c["company"]["name"] and c["provider"]["code"] and c["provider"]["name"]
        assert TIME.match(c["createdAt"]) and TIME.match(c["updatedAt"])
    assert len({c["token"] for c in page["results"]}) == len(DEMO)
    by_id = {c["id"]: c for c in page["results"]}
    assert by_id[t.DISCONNECTED]["status"] == "disconnected"
    assert by_id[t.MANUAL]["syncMode"] == "manual"
    assert {c["provider"]["code"] for c in page["results"]} >= {"geotab", "samsara", "motive"}
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        refused = client.get(CONNECTIONS, headers=headers)
        assert refused.status_code == 401 and refused.json()["code"] == "unauthorized"


def test_connections_paginate_with_a_cursor(client: httpx.Client) -> None:
    seen: list[str] = []
    params = {"limit": "3"}
    pages = 0
    while True:
        page = connections(client, **params)
        seen += [c["id"] for c in page["results"]]
        pages += 1
        if "next" not in page:
            break
        params = {"limit": "3", "cursor": page["next"]}
    assert pages == 3 and seen == DEMO
    for bad in ({"limit": "0"}, {"limit": "1001"}, {"cursor": "%%%"}, {"status": "gone"}):
        response = client.get(CONNECTIONS, headers=terminal(), params=bad)
        assert response.status_code == 400 and response.json()["code"] == "bad_request"


def test_connections_filter_on_the_server(client: httpx.Client) -> None:
    def ids(**params: str) -> list[str]:
        return [c["id"] for c in connections(client, **params)["results"]]

    assert ids(status="disconnected") == [t.DISCONNECTED]
    assert ids(status="archived") == []
    assert ids(tag="west") == [t.RECOVERED, t.FAILING]
    assert ids(provider="samsara") == [t.RECOVERED, t.DISCONNECTED]
    assert ids(externalId="fleet-105") == [t.MANUAL]
    assert ids(provider="motive", tag="central") == [t.WITH_ISSUES]


# --- job logs -----------------------------------------------------------------------------------


def test_the_log_needs_a_known_connection_token(client: httpx.Client) -> None:
    token = connection_token(client, t.HEALTHY)
    for headers in (
        terminal(),
        terminal("con_tkn_unknown"),
        {"Connection-Token": token},
        {"Authorization": "Bearer wrong", "Connection-Token": token},
    ):
        for path in (JOBS, f"{JOBS}/{t.JOB}"):
            response = client.get(path, headers=headers)
            assert response.status_code == 401, (headers, path)
            body = response.json()
            assert body["code"] == "unauthorized" and body["message"] and body["detail"]
    assert client.get(JOBS, headers=terminal(token)).status_code == 200


def test_a_job_runs_then_a_new_job_starts_with_a_new_id(client: httpx.Client) -> None:
    first = latest(client, t.HEALTHY)
    assert first["id"] == t.JOB and first["status"] == "requested"
    at(client, 0.35)
    running = latest(client, t.HEALTHY)
    assert running["id"] == t.JOB and running["status"] == "in_progress"
    assert 0 < running["progress"] < 100 and round(running["progress"], 2) == running["progress"]
    assert TIME.match(running["requestedAt"]) and TIME.match(running["startFrom"])
    assert running["attempts"] == 1 and "completedAt" not in running
    at(client, 0.8)
    done = latest(client, t.HEALTHY)
    assert done["status"] == "completed" and done["progress"] == 100
    assert TIME.match(done["completedAt"])
    at(client, 1.05)
    log = job_log(client, t.HEALTHY)
    assert log[0]["status"] == "requested" and JOB_ID.match(log[0]["id"])
    assert log[0]["id"] != t.JOB
    assert log[1]["id"] == t.JOB and log[1]["status"] == "completed"
    assert ok(job(client, t.HEALTHY, t.JOB))["status"] == "completed"
    at(client, 3.05)
    ids = [entry["id"] for entry in job_log(client, t.HEALTHY)]
    assert len(ids) == len(set(ids)) == 4 + 2, "four cadence jobs and two from before the start"
    requested = [entry["requestedAt"] for entry in job_log(client, t.HEALTHY)]
    assert requested == sorted(requested, reverse=True)


def test_the_latest_job_completed_after_an_earlier_one_failed(client: httpx.Client) -> None:
    log = job_log(client, t.RECOVERED)
    assert log[0]["status"] == "completed"
    assert [entry["id"] for entry in log if entry["status"] == "failed"] == [t.FAILED_JOB]
    failed = ok(job(client, t.RECOVERED, t.FAILED_JOB))
    assert failed["failureReason"] and failed["attempts"] == 3 and failed["progress"] == 37.42
    only_failed = job_log(client, t.RECOVERED, status="failed")
    assert [entry["id"] for entry in only_failed] == [t.FAILED_JOB]
    assert job_log(client, t.RECOVERED, status="requested") == []


def test_a_failing_connection_fails_every_new_job(client: httpx.Client) -> None:
    first = latest(client, t.FAILING)
    assert first["status"] == "failed" and first["failureReason"].startswith("Motive API")
    at(client, 1.05)
    assert latest(client, t.FAILING)["status"] == "requested"
    at(client, 1.2)
    running = latest(client, t.FAILING)
    assert running["status"] == "in_progress" and running["id"] != first["id"]
    at(client, 1.6)
    second = latest(client, t.FAILING)
    assert second["status"] == "failed" and second["id"] == running["id"]
    assert [entry["id"] for entry in job_log(client, t.FAILING)][1] == first["id"]


@pytest.mark.parametrize("connection", [t.DISCONNECTED, t.MANUAL])
def test_disconnected_and_manual_connections_run_no_new_jobs(
    client: httpx.Client, connection: str
) -> None:
    before = job_log(client, connection)
    at(client, 5.5)
    after = job_log(client, connection)
    assert [(j["id"], j["status"]) for j in after] == [(j["id"], j["status"]) for j in before]
    if connection == t.MANUAL:
        assert before[0]["status"] == "completed"
    else:
        assert before[0]["status"] == "failed" and "disconnected" in before[0]["failureReason"]


def test_issues_are_ids_unless_expanded(client: httpx.Client) -> None:
    plain = latest(client, t.WITH_ISSUES)
    assert plain["id"] == t.ISSUES_JOB
    assert plain["issues"] == [t.ONGOING_ISSUE, t.SECOND_ONGOING_ISSUE, t.RESOLVED_ISSUE]
    expanded = latest(client, t.WITH_ISSUES, expand="issues")
    assert [issue["id"] for issue in expanded["issues"]] == plain["issues"]
    statuses = [issue["status"] for issue in expanded["issues"]]
    assert statuses == ["ongoing", "ongoing", "resolved"]
    for issue in expanded["issues"]:
        assert issue["connection"] == t.WITH_ISSUES
        assert issue["error"]["code"] in {
            "missing_permissions",
            "inaccessible_data",
            "unknown_device_type",
        }
        assert issue["error"]["message"]
        assert issue["firstReportedAt"] <= issue["lastReportedAt"]
    single = ok(job(client, t.WITH_ISSUES, t.ISSUES_JOB, expand="issues"))
    assert single["issues"] == expanded["issues"]
    bad = job(client, t.WITH_ISSUES, t.ISSUES_JOB, expand="drivers")
    assert bad.status_code == 400 and bad.json()["code"] == "bad_request"


def test_a_historical_files_job_stays_in_progress(client: httpx.Client) -> None:
    running = latest(client, t.HISTORICAL)
    assert running["id"] == t.HISTORICAL_JOB
    assert running["providerRequests"] == [{"type": "historical_files"}]
    assert running["status"] == "in_progress" and running["progress"] == 12
    at(client, 40)
    later = latest(client, t.HISTORICAL)
    assert later["id"] == t.HISTORICAL_JOB and later["status"] == "in_progress"
    assert 12 < later["progress"] < 100
    at(client, 100_000)
    assert latest(client, t.HISTORICAL)["progress"] == 99


def test_another_connections_job_is_404(client: httpx.Client) -> None:
    response = job(client, t.RECOVERED, t.JOB)
    assert response.status_code == 404
    assert response.json() == {
        "code": "not_found",
        "message": "Not Found",
        "detail": f"Could not find sync with ID: {t.JOB}",
    }
    assert job(client, t.HEALTHY, "sync_missing").status_code == 404


def test_the_log_paginates_newest_first_even_while_jobs_start() -> None:
    # The clock runs on, rather than jumping (a jump moves the whole history), so a job that
    # starts between two pages must neither repeat an entry nor hide one.
    now = [1_000_000.0]
    world = World.demo(period=PERIOD, started_at=now[0] - 2.5 * PERIOD)

    async def pages() -> tuple[list[str], list[str], list[str], str]:
        async with (
            Simulator(world, clock=lambda: now[0]) as running,
            httpx.AsyncClient(base_url=running.base_url, trust_env=False) as http,
        ):
            token = (await http.get(f"/_sim/terminal/connections/{t.HEALTHY}")).json()["token"]
            headers = terminal(token)
            everything = (await http.get(JOBS, headers=headers)).json()["results"]
            first = (await http.get(JOBS, headers=headers, params={"limit": "2"})).json()
            now[0] += PERIOD
            cursor = {"limit": "2", "cursor": first["next"]}
            second = (await http.get(JOBS, headers=headers, params=cursor)).json()
            newest = (await http.get(JOBS, headers=headers, params={"limit": "1"})).json()
            return (
                [entry["id"] for entry in everything],
                [entry["id"] for entry in first["results"] + second["results"]],
                [entry["id"] for entry in newest["results"]],
                (await http.get(JOBS, headers=headers, params={"status": "done"})).text,
            )

    everything, paged, newest, bad = asyncio.run(pages())
    assert paged == everything[:4]
    assert newest[0] not in everything, "a new job started between the pages"
    assert '"bad_request"' in bad


# --- errors -------------------------------------------------------------------------------------


def test_429_body_with_and_without_the_header(client: httpx.Client) -> None:
    client.put(
        "/_sim/faults/terminal",
        json={"status": 429, "retry_after": "0.62", "retry_after_header": False, "times": 1},
    ).raise_for_status()
    bare = client.get(CONNECTIONS, headers=terminal())
    assert bare.status_code == 429 and "Retry-After" not in bare.headers
    assert bare.json() == {
        "code": "too_many_requests",
        "retryAfter": 1,
        "message": "Too Many Requests",
        "detail": "Injected fault: HTTP 429",
    }
    assert list(bare.json()) == ["code", "retryAfter", "message", "detail"]
    client.put(
        "/_sim/faults/terminal", json={"status": 429, "retry_after": "0.62", "times": 1}
    ).raise_for_status()
    headed = client.get(CONNECTIONS, headers=terminal())
    assert headed.status_code == 429 and headed.headers["Retry-After"] == "0.62"
    assert client.get(CONNECTIONS, headers=terminal()).status_code == 200


def test_a_fault_on_a_connection_hits_only_its_requests(client: httpx.Client) -> None:
    client.put(f"/_sim/faults/terminal/{t.FAILING}", json={"status": 503}).raise_for_status()
    failing = terminal(connection_token(client, t.FAILING))
    assert client.get(JOBS, headers=failing).status_code == 503
    assert client.get(f"{JOBS}/anything", headers=failing).status_code == 503
    assert client.get(JOBS, headers=terminal(connection_token(client, t.MANUAL))).is_success
    assert client.get(CONNECTIONS, headers=terminal()).is_success


# --- control: connections and appended jobs -----------------------------------------------------


def test_tests_create_connections_and_append_jobs(client: httpx.Client) -> None:
    made = client.post(
        "/_sim/terminal/connections",
        json={
            "id": "conn_test",
            "status": "connected",
            "syncMode": "automatic",
            "company": "Test Fleet",
            "provider": {"code": "samsara", "name": "Samsara"},
            "tags": ["test"],
        },
    )
    assert made.status_code == 201, made.text
    token = made.json()["token"]
    assert token.startswith("con_tkn_") and made.json()["jobs"] == []
    listed = connections(client, tag="test")["results"]
    assert [c["id"] for c in listed] == ["conn_test"]
    assert listed[0]["company"] == {"name": "Test Fleet"}
    assert client.get(JOBS, headers=terminal(token)).json() == {"results": []}
    failed = {"id": "sync_a", "status": "failed", "requestedAt": "2030-01-01T00:00:00.000Z"}
    done = {"id": "sync_b", "status": "completed", "requestedAt": "2030-01-01T01:00:00.000Z"}
    for body in (failed, done):
        response = client.post(
            "/_sim/syncs/terminal", json={"id": body["id"], "body": body, "connection": "conn_test"}
        )
        assert response.status_code == 201, response.text
    log = ok(client.get(JOBS, headers=terminal(token)))["results"]
    assert log == [done, failed]
    assert ok(client.get(f"{JOBS}/sync_a", headers=terminal(token))) == failed
    again = client.post(
        "/_sim/terminal/connections", json={"id": "conn_test", "token": "con_tkn_other"}
    )
    assert again.status_code == 409
    taken = client.post("/_sim/terminal/connections", json={"id": "x", "token": token})
    assert taken.status_code == 409
    bad = client.post("/_sim/terminal/connections", json={"id": "y", "status": "asleep"})
    assert bad.status_code == 400
    client.post("/_sim/reset").raise_for_status()
    assert connections(client, tag="test")["results"] == []


def test_jobs_without_a_connection_go_to_the_default_one(client: httpx.Client) -> None:
    default = terminal(t.DEFAULT_CONNECTION_TOKEN)
    assert client.get(JOBS, headers=default).status_code == 401, "made on first use"
    body = {"id": "ad-hoc-1", "status": "completed", "requestedAt": "2024-05-01T00:00:00.000Z"}
    created = client.post("/_sim/syncs/terminal", json={"id": "ad-hoc-1", "body": body})
    assert created.status_code == 201
    assert ok(client.get(f"{JOBS}/ad-hoc-1", headers=default)) == body
    assert [c["id"] for c in connections(client)["results"]][-1] == t.DEFAULT_CONNECTION
    replaced = client.post("/_sim/syncs/terminal", json={"id": "ad-hoc-1", "body": {"x": 1}})
    assert replaced.status_code == 200
    assert ok(client.get(JOBS, headers=default))["results"] == [{"x": 1}]
    unknown = client.post(
        "/_sim/syncs/terminal", json={"id": "j", "body": {}, "connection": "conn_nope"}
    )
    assert unknown.status_code == 404
    clash = client.post("/_sim/syncs/terminal", json={"id": t.JOB, "body": {}})
    assert clash.status_code == 409


def test_connections_and_appended_jobs_can_be_deleted(client: httpx.Client) -> None:
    response = client.post("/_sim/terminal/connections", json={"id": "conn_gone", "tags": ["x"]})
    assert response.status_code == 201, response.text
    made = response.json()
    job = {"id": "sync_gone", "status": "completed", "requestedAt": "2030-01-01T00:00:00.000Z"}
    payload = {"id": "sync_gone", "body": job, "connection": "conn_gone"}
    client.post("/_sim/syncs/terminal", json=payload).raise_for_status()
    removed = client.delete("/_sim/syncs/terminal/sync_gone", params={"remove": "true"})
    assert ok(removed) == {"removed": "sync_gone"}
    assert client.get(JOBS, headers=terminal(made["token"])).json() == {"results": []}
    refused = client.delete(f"/_sim/syncs/terminal/{t.JOB}", params={"remove": "true"})
    assert refused.status_code == 409
    assert ok(client.delete("/_sim/terminal/connections/conn_gone")) == {"removed": "conn_gone"}
    assert connections(client, tag="x")["results"] == []
    assert client.get(JOBS, headers=terminal(made["token"])).status_code == 401
    assert client.delete("/_sim/terminal/connections/conn_gone").status_code == 404
    again = {"id": "conn_gone", "token": made["token"]}
    response = client.post("/_sim/terminal/connections", json=again)
    assert response.status_code == 201, "a deleted connection's id and token are free again"


def test_changing_a_connections_status_stops_and_resumes_its_jobs(client: httpx.Client) -> None:
    path = f"/_sim/terminal/connections/{t.HEALTHY}"
    at(client, 0.5)
    changed = ok(client.patch(path, json={"status": "disconnected"}))
    assert changed["status"] == "disconnected" and changed["jobs"][0] == t.JOB
    listed = connections(client, status="disconnected")["results"]
    assert {c["id"] for c in listed} == {t.HEALTHY, t.DISCONNECTED}
    at(client, 2.5)
    assert latest(client, t.HEALTHY)["id"] == t.JOB, "no job while disconnected"
    ok(client.patch(path, json={"status": "connected"}))
    assert latest(client, t.HEALTHY)["id"] == t.JOB, "the next job waits for the next cycle"
    at(client, 3.2)
    resumed = latest(client, t.HEALTHY)
    assert resumed["id"] != t.JOB and resumed["status"] == "in_progress"
    assert len(job_log(client, t.HEALTHY)) == 2 + 2
    ok(client.patch(path, json={"syncMode": "manual"}))
    assert connections(client, externalId="fleet-101")["results"][0]["syncMode"] == "manual"
    assert client.patch(path, json={"status": "sleeping"}).status_code == 400
    assert client.patch(path, json={"colour": "red"}).status_code == 400
    assert client.patch("/_sim/terminal/connections/nope", json={}).status_code == 404


def test_a_log_can_be_listed_oldest_first(client: httpx.Client) -> None:
    # A guess switch: Terminal's spec does not say in which order the log is listed.
    response = client.post(
        "/_sim/terminal/connections", json={"id": "conn_old", "logOrder": "oldest"}
    )
    assert response.status_code == 201, response.text
    made = response.json()
    for n in range(3):
        body = {
            "id": f"sync_old_{n}",
            "status": "completed",
            "requestedAt": f"2026-11-1{n}T00:00:00.000Z",
        }
        added = client.post(
            "/_sim/syncs/terminal", json={"id": body["id"], "body": body, "connection": "conn_old"}
        )
        assert added.status_code in (200, 201), added.text
    headers = terminal(made["token"])
    first = ok(client.get(JOBS, headers=headers, params={"limit": "2"}))
    assert [j["id"] for j in first["results"]] == ["sync_old_0", "sync_old_1"]
    rest = ok(client.get(JOBS, headers=headers, params={"limit": "2", "cursor": first["next"]}))
    assert [j["id"] for j in rest["results"]] == ["sync_old_2"] and "next" not in rest
    done = ok(client.get(JOBS, headers=headers, params={"status": "completed", "limit": "1"}))
    assert [j["id"] for j in done["results"]] == ["sync_old_0"]
    newest = job_log(client, t.HEALTHY, limit="2")
    assert newest[0]["requestedAt"] > newest[1]["requestedAt"], "newest first by default"
    refused = client.post("/_sim/terminal/connections", json={"id": "conn_x", "logOrder": "random"})
    assert refused.status_code == 400
    assert ok(client.delete("/_sim/terminal/connections/conn_old"))
