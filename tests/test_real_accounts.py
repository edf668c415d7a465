"""What a real account needs, each finding of the real-accounts review as a test.

Every test runs the exporter as users do, against the simulator over real HTTP; the simulator
checks Paragon's JWTs, serves Terminal's connections and job logs, and Sequin's health as the
providers document them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from tests.conftest import Sim
from tests.exposition import Exposition
from tests.procs import exporter_command, free_port, run_exporter, running

TERMINAL = "{token: sim-terminal-secret}"


def at(iso: str) -> float:
    """Unix seconds of an ISO-8601 time."""
    return datetime.fromisoformat(iso).timestamp()


def once(config: Path, text: str, *flags: str) -> Exposition:
    config.write_text(text)
    result = run_exporter("--config.file", str(config), "--once", *flags)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return Exposition(result.stdout)


def terminal_source(sim: Sim, tag: str, extra: str = "") -> str:
    return (
        f"sources: [{{name: t, provider: terminal, base_url: '{sim.base}/terminal/tsp/v1',"
        f" auth: {TERMINAL}, discover: true, connections: {{tag: {tag}}}{extra}}}]\n"
    )


def job(status: str, requested: str, **fields: object) -> dict[str, object]:
    return {"status": status, "requestedAt": requested, "progress": 100, "attempts": 1, **fields}


# --- Paragon: connected users and minted tokens -------------------------------------------


@pytest.fixture
def paragon_exporter(sim: Sim, workdir: Path) -> Iterator[str]:
    """An exporter minting 10-second tokens for the demo users, scraped over HTTP."""
    # The demo's users (other tests add syncs, some failing, to sim-user).
    users = "acme, initech, globex, umbrella"
    config = workdir / "paragon.yml"
    config.write_text(
        f"sources: [{{name: p, provider: paragon, base_url: '{sim.base}/paragon',"
        f" auth: {sim.paragon_auth()[:-1]}, token_ttl: 10s}}, users: [{users}],"
        " discover: true}]\n"
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = workdir / "exporter.log"
    with running(exporter_command(config, port), f"{url}/-/ready", log=log):
        yield url
    assert "PRIVATE KEY" not in log.read_text()


def test_minted_tokens_are_signed_again_before_they_expire(sim: Sim, paragon_exporter: str) -> None:
    first = Exposition(httpx.get(f"{paragon_exporter}/metrics", timeout=30).text)
    up = first.find("sync_up", source="p")
    assert len(up) >= 7 and all(value == 1 for _, value in up)
    minted = first.value("sync_exporter_tokens_minted_total", source="p")
    time.sleep(11)  # every token of the first scrape has expired by now
    later = Exposition(httpx.get(f"{paragon_exporter}/metrics", timeout=30).text)
    assert all(value == 1 for _, value in later.find("sync_up", source="p"))
    assert later.value("sync_exporter_tokens_minted_total", source="p") > minted
    assert later.value("sync_exporter_token_mint_failures_total", source="p") == 0


def test_a_static_token_goes_blind_when_it_expires(sim: Sim, workdir: Path) -> None:
    """The finding: one static token watches one user until it expires."""
    token = sim.paragon_token("acme", ttl=2)
    acme = sim.paragon()["users"]["acme"]
    text = (
        f"sources: [{{name: p, provider: paragon, base_url: '{sim.base}/paragon',"
        f" auth: {{token: '{token}'}}, syncs: [{', '.join(acme)}]}}]\n"
    )
    assert once(workdir / "p.yml", text).value("sync_up", sync_id=acme[0]) == 1
    time.sleep(3)
    expired = once(workdir / "p.yml", text)
    assert expired.value("sync_up", sync_id=acme[0]) == 0
    assert expired.value("sync_exporter_errors_total", source="p", reason="unauthorized") >= 1


def test_users_syncs_are_listed_and_named_from_the_list(sim: Sim, workdir: Path) -> None:
    users = sim.paragon()["users"]
    text = (
        f"sources: [{{name: p, provider: paragon, base_url: '{sim.base}/paragon',"
        f" auth: {sim.paragon_auth()}, users: [acme, initech], discover: true}}]\n"
    )
    m = once(workdir / "p.yml", text)
    read = {(labels["user"], labels["sync_id"]) for labels, _ in m.find("sync_up")}
    assert read == {(user, sync) for user in ("acme", "initech") for sync in users[user]}
    # The status endpoint has no names: they come from the list.
    for labels, _ in m.find("sync_info", user="acme"):
        assert labels["name"] and labels["integration"] and labels["pipeline"], labels
    assert {labels["integration"] for labels, _ in m.find("sync_info", user="acme")} == {
        "salesforce",
        "zendesk",
    }


def test_one_users_refused_token_fails_only_that_users_syncs(sim: Sim, workdir: Path) -> None:
    users = sim.paragon()["users"]
    text = (
        f"sources: [{{name: p, provider: paragon, base_url: '{sim.base}/paragon',"
        f" auth: {sim.paragon_auth()}, users: [acme, globex], discover: true,"
        f" syncs: [{{id: {users['globex'][0]}, user: globex}}]}}]\n"
    )
    sim.fault("paragon", "globex", {"status": 401})
    try:
        m = once(workdir / "p.yml", text)
    finally:
        sim.clear_fault("paragon", "globex")
    assert all(value == 1 for _, value in m.find("sync_up", user="acme"))
    assert m.find("sync_up", user="acme")
    assert m.value("sync_up", user="globex", sync_id=users["globex"][0]) == 0
    assert m.value("sync_exporter_errors_total", source="p", reason="unauthorized") == 2


def test_sharding_splits_minted_sources_per_user(sim: Sim, workdir: Path) -> None:
    users = ["acme", "initech", "globex", "umbrella"]
    text = (
        f"sources: [{{name: p, provider: paragon, base_url: '{sim.base}/paragon',"
        f" auth: {sim.paragon_auth()}, users: [{', '.join(users)}], discover: true}}]\n"
    )
    seen = []
    for shard in ("0", "1"):
        m = once(
            workdir / "p.yml", text, "--collector.shard", shard, "--collector.total-shards", "2"
        )
        seen.append({labels["user"] for labels, _ in m.find("sync_up")})
    assert seen[0] and seen[1] and not seen[0] & seen[1]
    assert seen[0] | seen[1] == set(users)


# --- Terminal: connections, not jobs ------------------------------------------------------


def test_a_connection_is_one_target_whatever_its_history(sim: Sim, workdir: Path) -> None:
    """The hidden-history case: a failed job followed by a completed one is not errored."""
    sim.connection("conn_hist", company="History Haulers", provider="geotab", tags=["hist"])
    sim.job(
        "conn_hist",
        "sync_old_failed",
        job(
            "failed", "2026-10-01T00:00:00.000Z", failureReason="Samsara API said 401", progress=10
        ),
    )
    sim.job(
        "conn_hist",
        "sync_done",
        job("completed", "2026-11-20T00:00:00.000Z", completedAt="2026-11-20T00:40:00.000Z"),
    )
    m = once(workdir / "t.yml", terminal_source(sim, "hist"))
    assert [labels["sync_id"] for labels, _ in m.find("sync_up")] == ["conn_hist"]
    assert m.state(sync_id="conn_hist") == "idle"
    assert not m.has("sync_error_info", sync_id="conn_hist")
    assert m.value("sync_last_synced_timestamp_seconds", sync_id="conn_hist") == at(
        "2026-11-20T00:40:00Z"
    )
    ((info, _),) = m.find("sync_info", sync_id="conn_hist")
    assert (info["name"], info["integration"], info["job_id"]) == (
        "History Haulers",
        "geotab",
        "sync_done",
    )
    assert info["sync_mode"] == "automatic"
    # A new job starts: same series, the new job's id, the same last success.
    sim.job("conn_hist", "sync_next", job("in_progress", "2026-11-21T00:00:00.000Z", progress=40))
    m = once(workdir / "t.yml", terminal_source(sim, "hist"))
    assert [labels["sync_id"] for labels, _ in m.find("sync_up")] == ["conn_hist"]
    assert m.state(sync_id="conn_hist") == "active"
    assert m.value("sync_progress_ratio", sync_id="conn_hist") == 0.4
    assert m.find("sync_info", sync_id="conn_hist")[0][0]["job_id"] == "sync_next"
    assert m.value("sync_last_synced_timestamp_seconds", sync_id="conn_hist") == at(
        "2026-11-20T00:40:00Z"
    )


def test_a_failed_latest_job_errors_the_connection_with_its_reason(sim: Sim, workdir: Path) -> None:
    sim.connection("conn_failing", company="Cascade", tags=["failing"])
    sim.job(
        "conn_failing",
        "sync_ok",
        job("completed", "2026-11-19T00:00:00.000Z", completedAt="2026-11-19T00:30:00.000Z"),
    )
    sim.job(
        "conn_failing",
        "sync_bad",
        job(
            "failed",
            "2026-11-20T00:00:00.000Z",
            failureReason="Provider rejected the credentials",
            progress=12,
        ),
    )
    m = once(workdir / "t.yml", terminal_source(sim, "failing"))
    assert m.state(sync_id="conn_failing") == "errored"
    assert m.has(
        "sync_error_info", sync_id="conn_failing", reason="Provider rejected the credentials"
    )
    assert m.value("sync_last_synced_timestamp_seconds", sync_id="conn_failing") == at(
        "2026-11-19T00:30:00Z"
    )


def test_connection_status_mode_and_staleness_budget(sim: Sim, workdir: Path) -> None:
    done = job("completed", "2026-11-20T00:00:00.000Z", completedAt="2026-11-20T01:00:00.000Z")
    for name, status, mode in (
        ("conn_auto", "connected", "automatic"),
        ("conn_manual", "connected", "manual"),
        ("conn_gone", "disconnected", "automatic"),
        ("conn_archived", "archived", "automatic"),
        ("conn_deleting", "pending_deletion", "automatic"),
    ):
        sim.connection(name, status=status, syncMode=mode, tags=["modes"])
        sim.job(name, f"sync_{name}", done)
    sim.reset_requests()
    m = once(workdir / "t.yml", terminal_source(sim, "modes"))
    assert m.value("sync_interval_seconds", sync_id="conn_auto") == 7200
    assert m.value("sync_stale_threshold_seconds", sync_id="conn_auto") == 3 * 7200 + 900
    assert m.value("sync_last_synced_timestamp_seconds", sync_id="conn_manual") == at(
        "2026-11-20T01:00:00Z"
    )
    assert not m.has("sync_interval_seconds", sync_id="conn_manual")
    assert not m.has("sync_stale_threshold_seconds", sync_id="conn_manual")
    # Terminal's spec: a disconnected connection is no longer authenticated and its user must
    # link the account again: a failure to page on, not a pause.
    assert m.state(sync_id="conn_gone") == "errored"
    assert m.value("sync_provider_status", sync_id="conn_gone", status="disconnected") == 1
    [(labels, _)] = m.find("sync_error_info", sync_id="conn_gone")
    assert "link the account again" in labels["reason"]
    for gone, status in (("conn_archived", "archived"), ("conn_deleting", "pending_deletion")):
        assert m.state(sync_id=gone) == "disabled"
        assert m.value("sync_provider_status", sync_id=gone, status=status) == 1
        assert not m.has("sync_error_info", sync_id=gone)
    # A connection that is not connected has a useless token: no request is made for it.
    assert not any(
        name in path for path in sim.requests() for name in ("conn_gone", "conn_archived")
    )
    configured = once(workdir / "t2.yml", terminal_source(sim, "modes", ", stale_after: 3d"))
    assert configured.value("sync_stale_threshold_seconds", sync_id="conn_manual") == 259200


def test_only_ongoing_issues_count_and_provider_requests_make_no_label(
    sim: Sim, workdir: Path
) -> None:
    issues = [
        {"id": "isu_1", "status": "resolved", "error": {"code": "old", "message": "m"}},
        {
            "id": "isu_2",
            "status": "ongoing",
            "error": {"code": "missing_permissions", "message": "m"},
        },
    ]
    sim.connection("conn_files", tags=["files"])
    sim.job(
        "conn_files",
        "sync_files",
        job(
            "in_progress",
            "2026-11-20T00:00:00.000Z",
            progress=37,
            issues=issues,
            providerRequests=[{"type": "historical_files"}],
        ),
    )
    m = once(workdir / "t.yml", terminal_source(sim, "files"))
    assert m.value("sync_issues", sync_id="conn_files") == 1
    # The job echoes `providerRequests` here (a guess: the spec has it on POST /syncs only):
    # no label users read comes from it.
    assert "provider_requests" not in m.find("sync_info", sync_id="conn_files")[0][0]


def test_the_last_completed_job_is_read_only_when_a_new_job_starts(sim: Sim, workdir: Path) -> None:
    sim.connection("conn_cost", tags=["cost"])
    sim.job(
        "conn_cost",
        "sync_c1",
        job("completed", "2026-11-19T00:00:00.000Z", completedAt="2026-11-19T00:30:00.000Z"),
    )
    sim.job("conn_cost", "sync_c2", job("in_progress", "2026-11-20T00:00:00.000Z", progress=5))
    config = workdir / "t.yml"
    config.write_text(terminal_source(sim, "cost"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(exporter_command(config, port), f"{url}/-/ready", log=workdir / "e.log"):
        sim.reset_requests()
        for _ in range(3):
            m = Exposition(httpx.get(f"{url}/metrics", timeout=30).text)
            assert m.value("sync_last_synced_timestamp_seconds", sync_id="conn_cost") == (
                at("2026-11-19T00:30:00Z")
            )
        # One latest-job read per scrape, and the completed job once, on the first.
        assert sim.requests() == {"/terminal/tsp/v1/syncs": 4}


@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_the_latest_job_is_found_whichever_order_the_log_is_in(
    sim: Sim, workdir: Path, order: str
) -> None:
    # Terminal's spec does not say that `GET /syncs` lists the newest job first.
    name = f"conn_order_{order}"
    sim.connection(name, tags=[f"order-{order}"], logOrder=order)
    for n, day in ((1, 17), (2, 18), (3, 19)):
        requested = f"2026-11-{day}T00:00:00.000Z"
        done = job("completed", requested, completedAt=f"2026-11-{day}T00:30:00.000Z")
        sim.job(name, f"sync_{order}_{n}", done)
    failed = job("failed", "2026-11-20T00:00:00.000Z", failureReason="Token revoked", progress=9)
    sim.job(name, f"sync_{order}_4", failed)
    m = once(workdir / "t.yml", terminal_source(sim, f"order-{order}"))
    assert m.state(sync_id=name) == "errored"
    assert m.has("sync_error_info", sync_id=name, reason="Token revoked")
    assert m.find("sync_info", sync_id=name)[0][0]["job_id"] == f"sync_{order}_4"
    assert m.value("sync_last_synced_timestamp_seconds", sync_id=name) == at("2026-11-19T00:30:00Z")


def test_a_429_without_retry_after_header_backs_off_by_the_body(sim: Sim, workdir: Path) -> None:
    sim.connection("conn_busy", tags=["busy"])
    sim.job("conn_busy", "sync_busy", job("completed", "2026-11-20T00:00:00.000Z"))
    sim.fault(
        "terminal",
        "conn_busy",
        {"status": 429, "retry_after": "90", "retry_after_header": False, "times": 1},
    )
    m = once(workdir / "t.yml", terminal_source(sim, "busy"))
    assert m.value("sync_up", sync_id="conn_busy") == 0
    assert 60 < m.value("sync_exporter_source_backoff_seconds", source="t") <= 90


# --- Sequin: health as data ---------------------------------------------------------------

SEQUIN = {
    "status": "active",
    "name": "Acme - HubSpot",
    "provider": "hubspot",
    "sync_frequency": "continuous",
    "initial_backfill_completed_at": "2023-12-15 01:29:29",
    "external_id": "ext-1",
    "metadata": {"tenant_id": "t-42"},
}


def test_sequin_health_warn_is_visible_and_errors_carry_the_notes(sim: Sim, workdir: Path) -> None:
    sim.create(
        "sequin",
        "s-warn",
        {
            **SEQUIN,
            "health": {
                "status": "warn",
                "credential": {"status": "ok", "notes": []},
                "provider": {"status": "warn", "notes": ["HubSpot answers 5xx to 3% of requests"]},
            },
        },
    )
    sim.create(
        "sequin",
        "s-broken",
        {
            **SEQUIN,
            "health": {
                "status": "error",
                # Sequin's notes are arrays of strings: every one is part of the reason.
                "credential": {
                    "status": "error",
                    "notes": ["Token was revoked by the user", "Reconnect the credential"],
                },
                "provider": {"status": "ok", "notes": []},
            },
        },
    )
    text = (
        f"sources: [{{name: s, provider: sequin, base_url: '{sim.base}/sequin',"
        " auth: {token: sim-sequin-key}, syncs: [s-warn, s-broken],"
        " label_from: {tenant_id: metadata.tenant_id, external: external_id}}]\n"
    )
    m = once(workdir / "s.yml", text)
    assert m.value("sync_health", sync_id="s-warn", status="warn") == 1
    assert m.value("sync_health", sync_id="s-warn", status="healthy") == 0
    assert m.state(sync_id="s-warn") == "active"
    assert not m.has("sync_error_info", sync_id="s-warn")
    assert m.state(sync_id="s-broken") == "errored"
    assert m.has(
        "sync_error_info",
        sync_id="s-broken",
        reason="Token was revoked by the user; Reconnect the credential",
    )
    ((info, _),) = m.find("sync_info", sync_id="s-warn")
    assert (info["tenant_id"], info["external"]) == ("t-42", "ext-1")
    # No last success, so no staleness budget that would mislead.
    assert not m.has("sync_stale_threshold_seconds", source="s")


def test_ready_only_after_the_first_listing(sim: Sim, workdir: Path) -> None:
    config = workdir / "s.yml"
    config.write_text(
        f"sources: [{{name: s, provider: sequin, base_url: '{sim.base}/sequin',"
        " auth: {token: sim-sequin-key}, discover: true}]\n"
    )
    sim.http.put("/_sim/faults/sequin", json={"delay": 3, "times": 1})
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(exporter_command(config, port), f"{url}/-/healthy", log=workdir / "e.log"):
        assert httpx.get(f"{url}/-/ready").status_code == 503
        deadline = time.monotonic() + 20
        while httpx.get(f"{url}/-/ready").status_code != 200:
            assert time.monotonic() < deadline, "never ready"
            time.sleep(0.2)
        m = Exposition(httpx.get(f"{url}/metrics", timeout=30).text)
        assert len(m.find("sync_up", source="s")) >= 6


def sequin_syncs(sim: Sim, prefix: str, count: int) -> list[str]:
    ids = [f"{prefix}-{n}" for n in range(count)]
    for sync_id in ids:
        sim.create("sequin", sync_id, {**SEQUIN, "id": sync_id, "name": sync_id})
    return ids


def sequin_source(sim: Sim, ids: list[str], extra: str = "") -> str:
    return (
        f"sources: [{{name: s, provider: sequin, base_url: '{sim.base}/sequin',"
        f" auth: {{token: sim-sequin-key}}, syncs: [{', '.join(ids)}]{extra}}}]\n"
    )


def test_a_failed_sequin_listing_reads_each_sync_on_its_own(sim: Sim, workdir: Path) -> None:
    ids = sequin_syncs(sim, "s-alone", 3)
    sim.reset_requests()
    # The listing answers 500 once; each sync can still be read with GET /v1/syncs/{id}.
    sim.http.put("/_sim/faults/sequin", json={"status": 500, "times": 1})
    m = once(workdir / "s.yml", sequin_source(sim, ids))
    for sync_id in ids:
        assert m.value("sync_up", sync_id=sync_id) == 1
        assert m.state(sync_id=sync_id) == "active"
    paths = sim.requests()
    assert paths["/sequin/v1/syncs"] == 1
    assert all(paths[f"/sequin/v1/syncs/{sync_id}"] == 1 for sync_id in ids)
    assert m.value("sync_exporter_errors_total", source="s", reason="server_error") == 1


def test_a_refused_sequin_listing_is_not_retried_sync_by_sync(sim: Sim, workdir: Path) -> None:
    ids = sequin_syncs(sim, "s-refused", 2)
    sim.reset_requests()
    # A 401 on the listing would be a 401 on each sync: no request is spent on them.
    sim.http.put("/_sim/faults/sequin", json={"status": 401, "times": 1})
    m = once(workdir / "s.yml", sequin_source(sim, ids))
    assert all(m.value("sync_up", sync_id=sync_id) == 0 for sync_id in ids)
    assert sim.requests() == {"/sequin/v1/syncs": 1}


def test_sequin_syncs_read_one_by_one_stay_within_the_request_budget(
    sim: Sim, workdir: Path
) -> None:
    ids = sequin_syncs(sim, "s-budget", 8)
    sim.reset_requests()
    sim.http.put("/_sim/faults/sequin", json={"status": 503, "times": 1})
    text = sequin_source(sim, ids, ", max_requests_per_second: 2")
    m = once(workdir / "s.yml", "collector: {default_timeout: 1.5}\n" + text)
    read = [sync_id for sync_id in ids if m.value("sync_up", sync_id=sync_id) == 1]
    spent = sum(sim.requests().values())
    # Two requests a second over 1.5 s: the listing and at most three syncs, the rest deferred.
    assert spent <= 4 and 1 <= len(read) <= spent - 1
    assert m.value("sync_exporter_budget_deferred_total", source="s") >= len(ids) - 3
