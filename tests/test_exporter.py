"""The exporter as users run it: a real process scraping the simulator over real HTTP."""

from __future__ import annotations

import gzip
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Sim
from tests.exposition import Exposition
from tests.procs import exporter_command, free_port, run_exporter, running
from tests.tools import require

PARAGON_FULL: dict[str, object] = {
    "status": "IDLE",
    "summary": {
        "totalRecords": 200,
        "syncedRecordsCount": 50,
        "lastSyncedAt": "2023-11-07T05:31:56.250Z",
        "latestCursor": "cursor-1",
    },
    "credentialId": "cred-1",
    "incrementalAccumulatorFrequency": "5m",
    "rateLimitBackoffMs": 0,
}
PARAGON: dict[str, dict[str, object]] = {
    "p-full": PARAGON_FULL,
    "p-initializing": {"status": "INITIALIZING", "summary": {"totalRecords": 0}},
    "p-active": {"status": "ACTIVE", "summary": {"totalRecords": 10, "syncedRecordsCount": 3}},
    "p-rate-limited": {"status": "RATE_LIMITED", "summary": {}, "rateLimitBackoffMs": 30000},
    "p-disabled": {"status": "DISABLED", "summary": {}},
    "p-errored": {
        "status": "ERRORED",
        "summary": {},
        "reason": 'Credential ID [abc] is "no longer valid"\nor deleted. ' + "x" * 300,
    },
    "p-unknown": {"status": "MIGRATING", "summary": {}},
    "p-legacy": {
        "status": "paused",
        "summary": {
            "total_records": 8,
            "synced_records_count": 2,
            "last_synced_at": "2023-11-07T07:31:56+02:00",
        },
    },
}
TERMINAL: dict[str, dict[str, object]] = {
    "sync_01GV12VR4DJP70GD1ZBK0SDWFH": {
        "id": "sync_01GV12VR4DJP70GD1ZBK0SDWFH",
        "status": "in_progress",
        "requestedAt": "2021-01-06T03:24:53.000Z",
        "progress": 42.5,
        "issues": ["isu_01D8ZQFGHVJ858NBF2Q7DV9MNC", "isu_01D8ZQFGHVJ858NBF2Q7DV9MND"],
        "attempts": 2,
    },
    "sync_failed": {
        "id": "sync_failed",
        "status": "failed",
        "requestedAt": "2021-01-06T03:24:53.000Z",
        "completedAt": "2021-01-06T03:34:53.500Z",
        "failureReason": "Provider API returned 403",
        "progress": 10,
        "issues": [],
        "attempts": 3,
    },
    "sync_done": {
        "id": "sync_done",
        "status": "completed",
        "requestedAt": "2021-01-06T03:24:53.000Z",
        "completedAt": "2021-01-06T03:44:53.000Z",
        "progress": 100,
    },
    "sync_requested": {"id": "sync_requested", "status": "requested", "requestedAt": "2021-01-06"},
}
SEQUIN_BASE: dict[str, Any] = {
    "status": "active",
    "name": "Choam Corp - HubSpot Production",
    "provider": "hubspot",
    "health": {"status": "healthy"},
    "collection_ids": ["hubspot:contact", "hubspot:company"],
    "rate_limit": {"allowed_requests": 1000, "interval": 60, "max_concurrent_requests": 0},
    "credential_id": "27879937-bd5d-490b-a943-edf486b04300",
    "sync_frequency": "continuous",
    "initial_backfill_completed_at": "2023-12-15 01:29:29",
}
SEQUIN: dict[str, dict[str, object]] = {
    "s-active": SEQUIN_BASE,
    "s-4h": {**SEQUIN_BASE, "sync_frequency": "4h", "health": {"status": "warn"}},
    "s-disabled": {**SEQUIN_BASE, "status": "disabled"},
    "s-error": {**SEQUIN_BASE, "health": {"status": "error"}},
    "s-init": {**SEQUIN_BASE, "initial_backfill_completed_at": None},
}
FAULTS: dict[str, dict[str, Any]] = {
    "f-401": {"status": 401},
    "f-404": {"status": 404},
    "f-500": {"status": 500},
    "f-malformed": {"malformed": True},
    "f-wrong-shape": {"wrong_shape": "missing_status"},
    "f-slow": {"delay": 5.0},
}
SECRETS = ("sim-terminal-secret", "con_tkn_simulator", "sim-sequin-key", "PRIVATE KEY")


def config_text(sim: Sim, extra: str = "") -> str:
    def ids(syncs: dict[str, Any]) -> str:
        return "[" + ", ".join(syncs) + "]"

    minting = sim.paragon_auth()
    return f"""
sources:
  - name: acme-paragon
    provider: paragon
    base_url: {sim.base}/paragon
    auth: {minting}
    labels: {{tenant: acme}}
    syncs:
      - id: p-full
        user: sim-user
        labels: {{team: data}}
        stale_after: 2h
{"".join(f"      - {{id: {sync_id}, user: sim-user}}" + chr(10) for sync_id in list(PARAGON)[1:])}
  - name: acme-terminal
    provider: terminal
    base_url: {sim.base}/terminal/tsp/v1
    auth: {{token: sim-terminal-secret, connection_token: con_tkn_simulator}}
    syncs: {ids(TERMINAL)}
  - name: acme-sequin
    provider: sequin
    base_url: {sim.base}/sequin
    auth: {{token: sim-sequin-key}}
    syncs: {ids(SEQUIN)}
  - name: faulty
    provider: paragon
    base_url: {sim.base}/paragon
    auth: {{token: {sim.paragon_token("sim-user")}}}
    request_timeout: 1s
    syncs: [{", ".join(FAULTS)}, p-active]
  - name: wrong-key
    provider: sequin
    base_url: {sim.base}/sequin
    auth: {{token: not-the-key}}
    syncs: [s-active]
  - name: unreachable
    provider: sequin
    base_url: http://127.0.0.1:1
    auth: {{token: sim-sequin-key}}
    syncs: [s-active]
{extra}
"""


@pytest.fixture(scope="module")
def exporter(sim: Sim, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    for sync_id, body in PARAGON.items():
        sim.create("paragon", sync_id, body)
    for sync_id, body in TERMINAL.items():
        sim.create("terminal", sync_id, body)
    for sync_id, body in SEQUIN.items():
        sim.create("sequin", sync_id, body)
    for sync_id, fault in FAULTS.items():
        sim.create("paragon", sync_id, PARAGON_FULL)
        sim.fault("paragon", sync_id, fault)
    directory = tmp_path_factory.mktemp("exporter")
    config = directory / "config.yml"
    config.write_text(config_text(sim))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = directory / "exporter.log"
    with running(exporter_command(config, port), f"{url}/-/ready", log=log):
        yield url
    logged = log.read_text()
    for secret in SECRETS:
        assert secret not in logged


def scrape(url: str, **headers: str) -> Exposition:
    response = httpx.get(f"{url}/metrics", headers=headers, timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return Exposition(response.text)


def test_paragon_fields(exporter: str) -> None:
    m = scrape(exporter)
    full = {"source": "acme-paragon", "sync_id": "p-full"}
    assert m.value("sync_up", **full) == 1
    assert m.state(**full) == "idle"
    assert m.value("sync_provider_status", status="IDLE", **full) == 1
    assert m.find("sync_info", **full)[0][0] == {
        "source": "acme-paragon",
        "provider": "paragon",
        "sync_id": "p-full",
        "tenant": "acme",
        "team": "data",
        "user": "sim-user",
        # From Paragon's list (configurationName, integration, pipeline): the status lacks them.
        "name": "p-full",
        "integration": "custom",
        "pipeline": "custom",
        "credential_id": "cred-1",
        "frequency": "5m",
    }
    assert m.value("sync_records_expected", **full) == 200
    assert m.value("sync_records_synced", **full) == 50
    assert m.value("sync_progress_ratio", **full) == 0.25
    assert m.value("sync_last_synced_timestamp_seconds", **full) == 1699335116.25
    age = m.value("sync_last_synced_age_seconds", **full)
    assert abs(age - (time.time() - 1699335116.25)) < 60
    assert m.value("sync_rate_limit_backoff_seconds", **full) == 0
    assert m.value("sync_interval_seconds", **full) == 300
    assert m.value("sync_stale_threshold_seconds", **full) == 7200
    assert not m.has("sync_error_info", **full)
    limited = {"source": "acme-paragon", "sync_id": "p-rate-limited"}
    assert m.value("sync_rate_limit_backoff_seconds", **limited) == 30
    # No last success yet: no staleness budget either.
    assert not m.has("sync_stale_threshold_seconds", **limited)
    legacy = {"source": "acme-paragon", "sync_id": "p-legacy"}
    assert m.state(**legacy) == "disabled"
    assert m.value("sync_provider_status", status="paused", **legacy) == 1
    assert m.value("sync_progress_ratio", **legacy) == 0.25
    assert m.value("sync_last_synced_timestamp_seconds", **legacy) == 1699335116
    assert not m.has("sync_progress_ratio", source="acme-paragon", sync_id="p-initializing")


def test_every_canonical_state(exporter: str) -> None:
    m = scrape(exporter)
    expected = {
        ("acme-paragon", "p-initializing"): "initializing",
        ("acme-paragon", "p-active"): "active",
        ("acme-paragon", "p-full"): "idle",
        ("acme-paragon", "p-rate-limited"): "rate_limited",
        ("acme-paragon", "p-disabled"): "disabled",
        ("acme-paragon", "p-errored"): "errored",
        ("acme-paragon", "p-unknown"): "unknown",
        ("acme-terminal", "sync_requested"): "initializing",
        ("acme-terminal", "sync_01GV12VR4DJP70GD1ZBK0SDWFH"): "active",
        ("acme-terminal", "sync_done"): "idle",
        ("acme-terminal", "sync_failed"): "errored",
        ("acme-sequin", "s-init"): "initializing",
        ("acme-sequin", "s-active"): "active",
        ("acme-sequin", "s-4h"): "active",
        ("acme-sequin", "s-disabled"): "disabled",
        ("acme-sequin", "s-error"): "errored",
    }
    for (source, sync_id), state in expected.items():
        assert m.state(source=source, sync_id=sync_id) == state, (source, sync_id)
    assert m.value("sync_provider_status", sync_id="p-unknown", status="MIGRATING") == 1


def test_error_reasons_are_cut_and_cleaned(exporter: str) -> None:
    m = scrape(exporter)
    ((labels, value),) = m.find("sync_error_info", sync_id="p-errored")
    assert value == 1
    assert labels["reason"].startswith('Credential ID [abc] is "no longer valid" or deleted. xxx')
    assert len(labels["reason"]) == 200
    ((labels, _),) = m.find("sync_error_info", sync_id="sync_failed")
    assert labels["reason"] == "Provider API returned 403"
    assert m.has("sync_error_info", sync_id="s-error", reason="")


def test_terminal_fields(exporter: str) -> None:
    m = scrape(exporter)
    job = {"source": "acme-terminal", "sync_id": "sync_01GV12VR4DJP70GD1ZBK0SDWFH"}
    assert m.value("sync_progress_ratio", **job) == 0.425
    assert m.value("sync_attempts", **job) == 2
    assert m.value("sync_issues", **job) == 2
    assert m.value("sync_requested_timestamp_seconds", **job) == 1609903493
    assert not m.has("sync_completed_timestamp_seconds", **job)
    failed = {"source": "acme-terminal", "sync_id": "sync_failed"}
    assert m.value("sync_completed_timestamp_seconds", **failed) == 1609904093.5
    assert m.value("sync_issues", **failed) == 0
    assert m.value("sync_progress_ratio", source="acme-terminal", sync_id="sync_done") == 1


def test_sequin_fields(exporter: str) -> None:
    m = scrape(exporter)
    sync = {"source": "acme-sequin", "sync_id": "s-active"}
    assert m.value("sync_interval_seconds", **sync) == 0
    assert m.value("sync_interval_seconds", source="acme-sequin", sync_id="s-4h") == 14400
    assert m.value("sync_initial_backfill_completed_timestamp_seconds", **sync) == 1702603769
    assert m.value("sync_rate_limit_allowed_requests", **sync) == 1000
    assert m.value("sync_rate_limit_interval_seconds", **sync) == 60
    assert m.value("sync_rate_limit_max_concurrent_requests", **sync) == 0
    assert m.value("sync_collections", **sync) == 2
    assert m.find("sync_info", **sync)[0][0]["integration"] == "hubspot"
    # Sequin reports no last success: no staleness budget either (SyncStale stays quiet).
    assert not m.has("sync_last_synced_timestamp_seconds", **sync)
    assert not m.has("sync_stale_threshold_seconds", source="acme-sequin")
    assert not m.has("sync_initial_backfill_completed_timestamp_seconds", sync_id="s-init")


def test_failures_mark_only_their_own_syncs_down(exporter: str) -> None:
    before = scrape(exporter)
    after = scrape(exporter)
    reasons = {
        "f-401": "unauthorized",
        "f-404": "not_found",
        "f-500": "server_error",
        "f-malformed": "bad_response",
        "f-wrong-shape": "bad_response",
        "f-slow": "timeout",
    }
    for sync_id in reasons:
        assert after.value("sync_up", source="faulty", sync_id=sync_id) == 0
        assert not after.has("sync_state", source="faulty", sync_id=sync_id)
    assert after.value("sync_up", source="faulty", sync_id="p-active") == 1
    for reason in set(reasons.values()):
        expected = sum(1 for r in reasons.values() if r == reason)
        grew = after.value("sync_exporter_errors_total", source="faulty", reason=reason) - (
            before.value("sync_exporter_errors_total", source="faulty", reason=reason)
        )
        assert grew == expected, reason
    assert after.value("sync_exporter_errors_total", source="faulty", reason="connect") == 0
    assert after.value("sync_up", source="wrong-key", sync_id="s-active") == 0
    assert after.value("sync_exporter_errors_total", source="wrong-key", reason="unauthorized") > 0
    assert after.value("sync_up", source="unreachable", sync_id="s-active") == 0
    assert after.value("sync_exporter_errors_total", source="unreachable", reason="connect") > 0
    for code in ("401", "404", "500", "200"):
        assert after.value("sync_exporter_upstream_requests_total", source="faulty", code=code) > 0
    assert after.value("sync_exporter_syncs_configured", source="faulty", provider="paragon") == 7
    assert after.value("sync_exporter_collection_duration_seconds") > 0
    assert after.has("sync_exporter_build_info", version="0.1.0")
    assert after.value("sync_exporter_upstream_request_duration_seconds_count", source="faulty") > 0


def test_secrets_never_reach_the_exposition_or_the_page(exporter: str) -> None:
    texts = [
        httpx.get(f"{exporter}/metrics").text,
        httpx.get(f"{exporter}/").text,
    ]
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


def test_promtool_accepts_the_exposition(exporter: str) -> None:
    promtool = require("promtool")
    body = httpx.get(f"{exporter}/metrics").content
    result = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == b"" and result.stderr.strip() == b""


def test_gzip_refused_with_q_zero(exporter: str) -> None:
    response = httpx.get(f"{exporter}/metrics", headers={"Accept-Encoding": "gzip;q=0"})
    assert "Content-Encoding" not in response.headers
    assert response.headers["Vary"] == "Accept, Accept-Encoding"


def test_gzip_when_asked(exporter: str) -> None:
    response = httpx.get(f"{exporter}/metrics", headers={"Accept-Encoding": "gzip"})
    assert response.headers["Content-Encoding"] == "gzip"
    assert "sync_up{" in response.text
    raw = httpx.get(f"{exporter}/metrics", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in raw.headers
    with httpx.stream("GET", f"{exporter}/metrics", headers={"Accept-Encoding": "gzip"}) as r:
        compressed = b"".join(r.iter_raw())
    assert gzip.decompress(compressed).startswith(b"# HELP sync_up ")


def test_concurrent_scrapes_share_one_collection(exporter: str, sim: Sim) -> None:
    sim.reset_requests()
    results: list[Exposition] = []

    def one() -> None:
        results.append(scrape(exporter))

    # The faulty source's slow sync keeps each collection open for a second.
    threads = [threading.Thread(target=one) for _ in range(3)]
    for thread in threads:
        thread.start()
        time.sleep(0.05)
    for thread in threads:
        thread.join()
    paths = sim.requests()
    assert paths["/paragon/api/syncs/p-full"] == 1
    # Sequin's list carries every sync's status: one request answers a whole source (here
    # acme-sequin and wrong-key), whatever its number of syncs.
    assert paths["/sequin/v1/syncs"] == 2
    assert not any(path.startswith("/sequin/v1/syncs/") for path in paths)
    assert len(results) == 3 and results[0].text == results[1].text == results[2].text


def test_landing_page_and_health(exporter: str, sim: Sim) -> None:
    page = httpx.get(f"{exporter}/")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert '<a href="metrics">' in page.text and "0.1.0" in page.text
    assert "<td>acme-terminal</td><td>terminal</td><td>sync_done</td>" in page.text
    assert "Demo mode" not in page.text
    assert httpx.get(f"{exporter}/-/healthy").status_code == 200
    assert httpx.get(f"{exporter}/-/ready").status_code == 200
    assert httpx.get(f"{exporter}/nope").status_code == 404


def run_once(config: Path) -> subprocess.CompletedProcess[str]:

    return run_exporter("--config.file", str(config), "--once")


def test_once_prints_the_exposition(sim: Sim, workdir: Path) -> None:
    sim.create("sequin", "s-once", SEQUIN_BASE)
    config = workdir / "once.yml"
    config.write_text(
        f"sources: [{{name: s, provider: sequin, base_url: '{sim.base}/sequin',"
        " auth: {token: sim-sequin-key}, syncs: [s-once, s-missing]}]"
    )
    result = run_once(config)
    assert result.returncode == 0
    m = Exposition(result.stdout)
    assert m.value("sync_up", sync_id="s-once") == 1
    assert m.value("sync_up", sync_id="s-missing") == 0
    assert m.value("sync_exporter_errors_total", source="s", reason="not_found") == 1
    assert "sim-sequin-key" not in result.stdout + result.stderr
    assert "reason=not_found" in result.stderr


def test_rate_limited_source_is_not_called_until_retry_after(sim: Sim, workdir: Path) -> None:
    for sync_id in ("r-1", "r-2", "r-3"):
        sim.create("paragon", sync_id, PARAGON_FULL)
    sim.fault("paragon", "r-1", {"status": 429, "retry_after": "2.5", "times": 1})
    config = workdir / "limited.yml"
    config.write_text(
        f"sources: [{{name: limited, provider: paragon, base_url: '{sim.base}/paragon',"
        f" auth: {{token: {sim.paragon_token()}}}, max_concurrency: 1, syncs: [r-1, r-2, r-3]}},"
        f" {{name: other, provider: sequin, base_url: '{sim.base}/sequin',"
        " auth: {token: sim-sequin-key}, syncs: [s-active]}]"
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(exporter_command(config, port), f"{url}/-/ready"):
        sim.reset_requests()
        first = scrape(url)
        assert sim.requests().get("/paragon/api/syncs/r-1") == 1
        assert "/paragon/api/syncs/r-2" not in sim.requests()
        for sync_id in ("r-1", "r-2", "r-3"):
            assert first.value("sync_up", sync_id=sync_id) == 0
        assert first.value("sync_up", source="other") == 1
        assert (
            first.value("sync_exporter_errors_total", source="limited", reason="rate_limited") == 1
        )
        assert first.value("sync_exporter_upstream_requests_skipped_total", source="limited") == 2
        assert 0 < first.value("sync_exporter_source_backoff_seconds", source="limited") <= 2.5
        second = scrape(url)
        assert sim.requests().get("/paragon/api/syncs/r-1") == 1
        assert second.value("sync_exporter_upstream_requests_skipped_total", source="limited") == 5
        assert (
            second.value("sync_exporter_upstream_requests_total", source="limited", code="429") == 1
        )
        time.sleep(2.6)
        third = scrape(url)
        assert all(third.value("sync_up", sync_id=s) == 1 for s in ("r-1", "r-2", "r-3"))
        assert third.value("sync_exporter_source_backoff_seconds", source="limited") == 0


def test_scrape_timeout_header_bounds_the_collection(sim: Sim, workdir: Path) -> None:
    source = paragon_source(sim, "slow", ["slow-1", "fast"], ", request_timeout: 60s")
    sim.fault("paragon", "slow-1", {"delay": 30.0})
    config = workdir / "slow.yml"
    config.write_text(f"sources: [{source}]\ncollector: {{default_timeout: 60s}}")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(exporter_command(config, port), f"{url}/-/ready"):
        started = time.monotonic()
        m = scrape(url, **{"X-Prometheus-Scrape-Timeout-Seconds": "2"})
        # Far below the 30 s the slow sync would take: the deadline came from the header.
        assert time.monotonic() - started < 20
        assert m.value("sync_up", sync_id="slow-1") == 0
        assert m.value("sync_up", sync_id="fast") == 1
        assert m.value("sync_exporter_errors_total", source="slow", reason="timeout") == 1
    sim.clear_fault("paragon", "slow-1")


def test_reload_applies_a_good_config_and_refuses_a_bad_one(sim: Sim, workdir: Path) -> None:
    config = workdir / "reload.yml"
    source = (
        "{{name: {name}, provider: sequin, base_url: '" + sim.base + "/sequin',"
        " auth: {{token: sim-sequin-key}}, syncs: [s-active]}}"
    )
    config.write_text(f"sources: [{source.format(name='before')}]")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = workdir / "exporter.log"
    command = exporter_command(config, port, "--web.enable-lifecycle")
    with running(command, f"{url}/-/ready", log=log) as process:
        assert scrape(url).has("sync_up", source="before")
        config.write_text(f"sources: [{source.format(name='after')}]")
        response = httpx.post(f"{url}/-/reload")
        assert response.status_code == 200, response.text
        m = scrape(url)
        assert m.has("sync_up", source="after") and not m.has("sync_up", source="before")
        assert not m.has("sync_exporter_syncs_configured", source="before")
        assert not m.has("sync_exporter_upstream_requests_total", source="before")
        assert "_created" not in m.text
        assert m.value("sync_exporter_config_last_reload_successful") == 1
        config.write_text("sources: [{name: broken, provider: nope}]")
        response = httpx.post(f"{url}/-/reload")
        assert response.status_code == 500
        assert f"{config}: sources[0].provider: unknown provider 'nope'" in response.text
        m = scrape(url)
        assert m.has("sync_up", source="after")
        assert m.value("sync_exporter_config_last_reload_successful") == 0
        config.write_text(f"sources: [{source.format(name='by-sighup')}]")
        process.send_signal(1)
        deadline = time.monotonic() + 10
        while not scrape(url).has("sync_up", source="by-sighup"):
            assert time.monotonic() < deadline, "SIGHUP did not reload"
            time.sleep(0.2)
    assert "config reload failed" in log.read_text()


def paragon_source(sim: Sim, name: str, syncs: list[str], extra: str = "") -> str:
    """A Paragon source (flow YAML) reading `syncs` one by one with the simulator's token."""
    for sync_id in syncs:
        sim.create("paragon", sync_id, PARAGON_FULL)
    return (
        f"{{name: {name}, provider: paragon, base_url: '{sim.base}/paragon',"
        f" auth: {{token: {sim.paragon_token()}}}, syncs: [{', '.join(syncs)}]{extra}}}"
    )


def slow_source_config(sim: Sim, path: Path, extra: str = "") -> Path:
    source = paragon_source(sim, "slow", ["slowish", "fast"], ", request_timeout: 30s")
    sim.fault("paragon", "slowish", {"delay": 2.0})
    path.write_text(f"sources: [{source}]\ncollector: {{default_timeout: 30s{extra}}}")
    return path


def test_reload_during_a_scrape_does_not_break_it(sim: Sim, workdir: Path) -> None:
    config = slow_source_config(sim, workdir / "c.yml")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(exporter_command(config, port, "--web.enable-lifecycle"), f"{url}/-/ready"):
        results: list[Exposition] = []
        thread = threading.Thread(target=lambda: results.append(scrape(url)))
        thread.start()
        time.sleep(0.5)
        assert httpx.post(f"{url}/-/reload").status_code == 200
        thread.join()
        (m,) = results
        assert m.value("sync_up", sync_id="slowish") == 1
        assert m.value("sync_exporter_errors_total", source="slow", reason="connect") == 0
    sim.clear_fault("paragon", "slowish")


def test_a_scrape_with_a_shorter_timeout_does_not_wait_for_a_longer_one(
    sim: Sim, workdir: Path
) -> None:
    config = slow_source_config(sim, workdir / "c.yml")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(exporter_command(config, port), f"{url}/-/ready"):
        patient: list[Exposition] = []
        thread = threading.Thread(
            target=lambda: patient.append(
                scrape(url, **{"X-Prometheus-Scrape-Timeout-Seconds": "20"})
            )
        )
        thread.start()
        time.sleep(0.3)
        hurried = scrape(url, **{"X-Prometheus-Scrape-Timeout-Seconds": "1"})
        thread.join()
        assert hurried.value("sync_up", sync_id="slowish") == 0
        assert hurried.value("sync_up", sync_id="fast") == 1
        assert patient[0].value("sync_up", sync_id="slowish") == 1
        # The other way round: a patient scrape never shares a hurried collection, so a
        # client asking for 1 s timeouts cannot cut short Prometheus's answer.
        hurried_results: list[Exposition] = []
        thread = threading.Thread(
            target=lambda: hurried_results.append(
                scrape(url, **{"X-Prometheus-Scrape-Timeout-Seconds": "1"})
            )
        )
        thread.start()
        time.sleep(0.1)
        patient_now = scrape(url, **{"X-Prometheus-Scrape-Timeout-Seconds": "20"})
        thread.join()
        assert hurried_results[0].value("sync_up", sync_id="slowish") == 0
        assert patient_now.value("sync_up", sync_id="slowish") == 1
    sim.clear_fault("paragon", "slowish")


def test_an_endless_retry_after_is_capped(sim: Sim, workdir: Path) -> None:
    source = paragon_source(sim, "capped", ["inf-429"])
    sim.fault("paragon", "inf-429", {"status": 429, "retry_after": "inf", "times": 1})
    config = workdir / "c.yml"
    config.write_text(f"sources: [{source}]\ncollector: {{max_retry_after: 2s}}")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(exporter_command(config, port), f"{url}/-/ready"):
        first = scrape(url)
        assert 0 < first.value("sync_exporter_source_backoff_seconds", source="capped") <= 2
        time.sleep(2.1)
        assert scrape(url).value("sync_up", sync_id="inf-429") == 1
