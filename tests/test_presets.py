"""The presets: each one against the simulator's fake of its service over real HTTP, laid under a
source's own keys field by field, shipped identical to examples/presets, and robust to any body."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.config import ConfigError, parse_config
from exporter.model import normalise
from exporter.providers.base import BadResponse
from exporter.providers.generic import (
    GenericApi,
    GenericConfig,
    StatusMap,
    merged,
    preset,
    preset_names,
)
from exporter.simulator import World, run_simulator_in_thread
from exporter.simulator.providers import airbyte, census, fivetran, hightouch, merge, nango
from tests import payloads
from tests.conftest import Sim
from tests.exposition import Exposition
from tests.procs import exporter_command, free_port, run_exporter, running
from tests.test_properties import check_status
from tests.tools import ROOT

PRESETS = ("airbyte", "census", "fivetran", "hightouch", "merge", "nango")


def create(sim: Sim, provider: str, sync_id: str, body: dict[str, Any], **extra: Any) -> None:
    """An ad-hoc sync of a fake, with the fake's own fields (token, integration, name...)."""
    response = sim.http.post(f"/_sim/syncs/{provider}", json={"id": sync_id, "body": body, **extra})
    assert response.status_code in (200, 201), response.text


def once(path: Path, sources: list[dict[str, Any]]) -> tuple[Exposition, str]:
    path.write_text(yaml.safe_dump({"sources": sources}, sort_keys=False))
    result = run_exporter("--config.file", str(path), "--once", "--log.level", "debug")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return Exposition(result.stdout), result.stderr


def states(m: Exposition, source: str) -> dict[str, str]:
    """Each read sync's canonical state."""
    return {
        labels["sync_id"]: labels["state"]
        for labels, value in m.find("sync_state", source=source)
        if value == 1
    }


# --- shipped and laid under the source ------------------------------------------------------


def test_the_presets_are_shipped_and_copied_to_examples() -> None:
    shipped = sorted((ROOT / "exporter" / "presets").glob("*.yml"))
    assert [path.stem for path in shipped] == list(PRESETS) == list(preset_names())
    for path in shipped:
        copy = ROOT / "examples" / "presets" / path.name
        assert copy.read_bytes() == path.read_bytes(), f"cp {path} {copy}"
    assert sorted(p.name for p in (ROOT / "examples" / "presets").iterdir()) == [
        p.name for p in shipped
    ]


MINIMAL: dict[str, dict[str, Any]] = {
    "fivetran": {"auth": {"username": "k", "password": "s"}, "discover": True},
    "nango": {
        "auth": {"token": "t"},
        "discover": True,
        "generic": {"list": {"params": {"provider_config_key": "github"}}},
    },
    "merge": {
        "auth": {"token": "t"},
        "syncs": [{"id": "acme", "headers": {"X-Account-Token": "a"}}],
    },
    "airbyte": {"auth": {"username": "airbyte", "password": "p"}, "discover": True},
    "hightouch": {"auth": {"token": "t"}, "discover": True},
    "census": {"auth": {"token": "t"}, "discover": True},
}


@pytest.mark.parametrize("name", PRESETS)
def test_each_preset_loads_with_what_its_header_asks_for(name: str) -> None:
    source: dict[str, Any] = {"name": name, "provider": "generic", "preset": name}
    source.update(MINIMAL[name])
    config = parse_config(yaml.safe_dump({"sources": [source]}), "p.yml")
    loaded = config.sources[0]
    assert loaded.base_url == preset(name)["base_url"].rstrip("/")
    assert f"# Use with: preset: {name}" in (ROOT / "exporter/presets" / f"{name}.yml").read_text()


def test_a_source_overrides_its_preset_field_by_field() -> None:
    source: dict[str, Any] = {
        "name": "f",
        "provider": "generic",
        "preset": "fivetran",
        **MINIMAL["fivetran"],
        "headers": {"X-Trace": "on"},
        "generic": {
            "list": {"params": {"limit": 10}},
            "fields": {"name": "service", "error": None},
            "states": {"rescheduled": "idle"},
        },
    }
    loaded = parse_config(yaml.safe_dump({"sources": [source]}), "p.yml").sources[0]
    assert isinstance(loaded, GenericConfig)
    api = loaded.generic
    assert api.listing is not None
    assert api.listing.params == {"limit": 10}
    assert api.listing.items == "data.items" and api.listing.cursor_param == "cursor"
    assert api.fields.name == "service" and api.fields.error is None
    assert api.fields.status == "status.sync_state"
    assert api.states["rescheduled"] == "idle" and api.states["syncing"] == "active"
    assert len(api.state_rules) == len(preset("fivetran")["generic"]["state_rules"])
    assert {k: v.get_secret_value() for k, v in loaded.headers.items()} == {
        "Accept": "application/json;version=2",
        "X-Trace": "on",
    }
    assert merged({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}, "d": 4}) == {
        "a": {"b": 1, "c": 3},
        "d": 4,
    }


def test_a_preset_hole_left_open_is_a_config_error() -> None:
    source: dict[str, Any] = {"name": "n", "provider": "generic", "preset": "nango"}
    source.update(auth={"token": "t"}, discover=True)
    with pytest.raises(ConfigError) as raised:
        parse_config(yaml.safe_dump({"sources": [source]}), "p.yml")
    assert str(raised.value) == (
        "p.yml: sources[0].generic.list.params.provider_config_key: is empty: set it "
        "(the preset leaves it to you)"
    )


# --- each preset against its fake ----------------------------------------------------------


def fivetran_connection(connection_id: str, **status: Any) -> dict[str, Any]:
    fields = {
        key: status.pop(key)
        for key in list(status)
        if key in ("paused", "failed_at", "succeeded_at", "schedule_type")
    }
    return {
        "id": connection_id,
        "service": "salesforce",
        "schema": f"schema_{connection_id}",
        "paused": False,
        "sync_frequency": 60,
        "succeeded_at": "2026-01-01T10:00:00.000Z",
        "failed_at": None,
        **fields,
        "status": {
            "setup_state": "connected",
            "sync_state": "scheduled",
            "update_state": "on_schedule",
            "is_historical_sync": False,
            "tasks": [],
            "warnings": [],
            **status,
        },
    }


def test_fivetran(sim: Sim, tmp_path: Path) -> None:
    cases: dict[str, tuple[dict[str, Any], str]] = {
        "ft_idle": ({}, "idle"),
        "ft_syncing": ({"sync_state": "syncing"}, "active"),
        "ft_first": ({"sync_state": "syncing", "is_historical_sync": True}, "initializing"),
        "ft_paused": ({"sync_state": "paused", "paused": True}, "disabled"),
        "ft_setup": ({"setup_state": "incomplete"}, "initializing"),
        "ft_broken": (
            {"setup_state": "broken", "tasks": [{"code": "reconnect", "message": "Reconnect"}]},
            "errored",
        ),
        "ft_failed": ({"failed_at": "2026-01-01T11:00:00.000Z"}, "errored"),
        # A failure earlier in the same second, its fraction left out: compared as times.
        "ft_recovered": (
            {"failed_at": "2026-01-01T10:00:00Z", "succeeded_at": "2026-01-01T10:00:00.870504Z"},
            "idle",
        ),
        "ft_manual": ({"schedule_type": "manual"}, "idle"),
        "ft_delayed": ({"update_state": "delayed"}, "idle"),
        "ft_quota": (
            {"sync_state": "rescheduled", "rescheduled_for": "2099-01-01T00:00:00.000Z"},
            "rate_limited",
        ),
    }
    for connection_id, (status, _) in cases.items():
        create(sim, "fivetran", connection_id, fivetran_connection(connection_id, **status))
    listed = len(sim.http.get("/_sim/syncs").json()["fivetran"])
    sim.reset_requests()
    source = {
        "name": "ft",
        "provider": "generic",
        "preset": "fivetran",
        "base_url": f"{sim.base}/fivetran",
        "auth": {"username": fivetran.API_KEY, "password_file": str(tmp_path / "secret")},
        "discover": True,
        "generic": {"list": {"params": {"limit": 3}}},
    }
    (tmp_path / "secret").write_text(fivetran.API_SECRET + "\n")
    m, log = once(tmp_path / "ft.yml", [source])
    read = states(m, "ft")
    assert {c: read[c] for c in cases} == {c: state for c, (_, state) in cases.items()}
    assert all(value == 1 for _, value in m.find("sync_up", source="ft"))
    assert m.value("sync_error_info", sync_id="ft_broken", reason="Reconnect") == 1
    assert m.value("sync_last_synced_timestamp_seconds", sync_id="ft_idle") == 1767261600
    assert m.value("sync_interval_seconds", sync_id="ft_idle") == 3600
    assert m.value("sync_rate_limit_backoff_seconds", sync_id="ft_quota") > 0
    # A manual schedule syncs on demand: no staleness budget (as Terminal's manual mode).
    assert m.value("sync_last_synced_timestamp_seconds", sync_id="ft_manual") == 1767261600
    assert not m.has("sync_stale_threshold_seconds", sync_id="ft_manual")
    assert not m.has("sync_interval_seconds", sync_id="ft_manual")
    assert m.value("sync_stale_threshold_seconds", sync_id="ft_idle") > 3600
    # Data late against its schedule: a health warning.
    assert m.value("sync_health", sync_id="ft_delayed", status="warn") == 1
    assert m.value("sync_health", sync_id="ft_idle", status="ok") == 1
    ((labels, _),) = m.find("sync_info", sync_id="ft_idle")
    assert labels["name"] == "schema_ft_idle" and labels["integration"] == "salesforce"
    # Three connections a page, for discovery and once for the scrape: no per-sync requests.
    assert sim.requests() == {"/fivetran/v1/connections": 2 * math.ceil(listed / 3)}
    assert fivetran.API_SECRET not in log and fivetran.API_SECRET not in m.text


def test_nango(sim: Sim, tmp_path: Path) -> None:
    def sync(status: str, kind: str = "INCREMENTAL", **fields: Any) -> dict[str, Any]:
        return {
            "connection_id": "c1",
            "name": status.lower(),
            "status": status,
            "type": kind,
            **fields,
        }

    done = "2026-02-01T00:00:00.000Z"
    cases = {
        "ng_initial": (sync("RUNNING", "INITIAL"), "initializing"),
        "ng_running": (sync("RUNNING", finishedAt=done), "active"),
        "ng_full": (sync("RUNNING", "INITIAL", finishedAt=done), "initializing"),
        "ng_done": (
            sync(
                "SUCCESS", finishedAt=done, recordCount={"A": 2, "B": 3}, frequency="every 2 hours"
            ),
            "idle",
        ),
        "ng_error": (sync("ERROR", finishedAt=done, frequency="whenever"), "errored"),
        "ng_paused": (sync("PAUSED", finishedAt=done), "disabled"),
        "ng_stopped": (sync("STOPPED", finishedAt=done), "disabled"),
        "ng_odd": (sync("QUEUED"), "unknown"),
    }
    for sync_id, (body, _) in cases.items():
        create(sim, "nango", sync_id, {"id": sync_id, **body}, integration="it-preset")
    sim.reset_requests()
    source = {
        "name": "ng",
        "provider": "generic",
        "preset": "nango",
        "base_url": f"{sim.base}/nango",
        "auth": {"token": nango.SECRET},
        "discover": True,
        "generic": {"list": {"params": {"provider_config_key": "it-preset"}}},
    }
    m, _ = once(tmp_path / "ng.yml", [source])
    assert states(m, "ng") == {sync_id: state for sync_id, (_, state) in cases.items()}
    assert m.value("sync_records_synced", sync_id="ng_done") == 5
    assert m.value("sync_last_synced_timestamp_seconds", sync_id="ng_done") == 1769904000
    assert not m.has("sync_last_synced_timestamp_seconds", sync_id="ng_error")
    # A running sync's finishedAt (older servers: the job's update) and a paused or stopped
    # one's (the latest run's, maybe failed) are no success.
    for unsure in ("ng_running", "ng_full", "ng_paused", "ng_stopped"):
        assert not m.has("sync_last_synced_timestamp_seconds", sync_id=unsure), unsure
    # The frequency as Nango writes it sets the staleness budget; text it cannot read does not.
    assert m.value("sync_interval_seconds", sync_id="ng_done") == 7200
    assert m.value("sync_stale_threshold_seconds", sync_id="ng_done") > 7200
    assert not m.has("sync_interval_seconds", sync_id="ng_error")
    ((labels, _),) = m.find("sync_info", sync_id="ng_done")
    assert labels["connection_id"] == "c1" and labels["name"] == "success"
    assert sim.requests() == {"/nango/sync/status": 2}


def test_nango_remembers_the_last_success_across_readings(sim: Sim, tmp_path: Path) -> None:
    """A reading without a success keeps the last one; it never moves backwards nor to a far
    future; a full-refresh sync (INITIAL on every run) is initializing only before its first."""
    integration = "it-memory"

    def put(sync_id: str, status: str, kind: str = "INCREMENTAL", **fields: Any) -> None:
        body = {"id": sync_id, "connection_id": "c9", "name": sync_id, "status": status}
        create(sim, "nango", sync_id, {**body, "type": kind, **fields}, integration=integration)

    first, later, older = (
        "2026-02-01T00:00:00.000Z",
        "2026-02-01T01:00:00.000Z",
        "2026-01-01T00:00:00.000Z",
    )
    put("mem_inc", "SUCCESS", finishedAt=first)
    put("mem_full", "RUNNING", "INITIAL")
    config = tmp_path / "memory.yml"
    source = {
        "name": "mem",
        "provider": "generic",
        "preset": "nango",
        "base_url": f"{sim.base}/nango",
        "auth": {"token": nango.SECRET},
        "discover": True,
        "generic": {"list": {"params": {"provider_config_key": integration}}},
    }
    config.write_text(yaml.safe_dump({"sources": [source]}, sort_keys=False))
    port = free_port()
    url = f"http://127.0.0.1:{port}"

    def scrape() -> Exposition:
        return Exposition(httpx.get(f"{url}/metrics", timeout=30).text)

    def last(m: Exposition, sync_id: str) -> float | None:
        found = m.find("sync_last_synced_timestamp_seconds", sync_id=sync_id)
        return found[0][1] if found else None

    lifecycle = exporter_command(config, port, "--web.enable-lifecycle")
    with running(lifecycle, f"{url}/-/ready"):
        m = scrape()
        assert last(m, "mem_inc") == 1769904000
        assert states(m, "mem") == {"mem_inc": "idle", "mem_full": "initializing"}
        # Running (no finishedAt), then as an older server (the job's update as finishedAt).
        put("mem_inc", "RUNNING")
        put("mem_full", "SUCCESS", "INITIAL", finishedAt=later)
        m = scrape()
        assert last(m, "mem_inc") == 1769904000, "a run in progress keeps the last success"
        assert m.has("sync_stale_threshold_seconds", sync_id="mem_inc")
        assert last(m, "mem_full") == 1769907600
        put("mem_inc", "RUNNING", finishedAt="2026-02-01T00:30:00.000Z")
        put("mem_full", "RUNNING", "INITIAL")
        m = scrape()
        assert last(m, "mem_inc") == 1769904000
        assert states(m, "mem") == {"mem_inc": "active", "mem_full": "active"}
        # Paused after a failed run, an older time, a time far ahead: the last success stays.
        put("mem_inc", "PAUSED", finishedAt=later)
        put("mem_full", "SUCCESS", "INITIAL", finishedAt=older)
        m = scrape()
        assert last(m, "mem_inc") == 1769904000
        assert last(m, "mem_full") == 1769907600, "never backwards"
        put("mem_inc", "SUCCESS", finishedAt="2099-01-01T00:00:00.000Z")
        m = scrape()
        assert last(m, "mem_inc") == 1769904000, "a time far in the future is not kept"
        put("mem_inc", "SUCCESS", finishedAt=later)
        assert last(scrape(), "mem_inc") == 1769907600
        # A reload that keeps the listing keeps what was learnt.
        put("mem_inc", "RUNNING")
        config.write_text(
            yaml.safe_dump({"sources": [{**source, "labels": {"team": "a"}}]}, sort_keys=False)
        )
        assert httpx.post(f"{url}/-/reload", timeout=30).status_code == 200
        m = scrape()
        assert m.find("sync_up", team="a"), "the reload took"
        assert last(m, "mem_inc") == 1769907600, "a reload keeps the last success"


@pytest.mark.parametrize("older", [False, True], ids=["current", "older-server"])
def test_nango_running_syncs_of_either_server_have_no_success(older: bool, tmp_path: Path) -> None:
    """Current servers leave finishedAt out while a sync runs; older ones (a guess) send the
    running job's update: either way a running sync's last success is not that time."""
    with run_simulator_in_thread(World.demo(period=600.0, nango_older_server=older)) as running:
        http = httpx.Client(base_url=running.base_url, timeout=10, trust_env=False)
        http.put("/_sim/clock", json={"elapsed": 0, "period": 600.0}).raise_for_status()
        answer = http.get(
            "/nango/sync/status",
            params={"provider_config_key": nango.INTEGRATION, "syncs": "*"},
            headers={"Authorization": f"Bearer {nango.SECRET}"},
        ).json()["syncs"]
        active = {entry["id"] for entry in answer if entry["status"] == "RUNNING"}
        assert active, "the demo has a running sync at its start"
        assert all(("finishedAt" in e) is older for e in answer if e["status"] == "RUNNING")
        assert all("finishedAt" in e for e in answer if e["status"] != "RUNNING")
        config = http.get("/_sim/config").json()
        sources = [s for s in config["sources"] if s["name"] == "demo-nango"]
        m, _ = once(tmp_path / "n.yml", sources)
    for sync_id in active:
        assert not m.has("sync_last_synced_timestamp_seconds", sync_id=sync_id), sync_id
    assert states(m, "demo-nango")


def merge_model(
    name: str, status: str, finished: str | None = "2026-03-01T00:00:00Z", **more: Any
) -> dict[str, Any]:
    return {
        "model_name": name,
        "model_id": f"hris.{name}",
        "last_sync_start": "2026-02-28T23:00:00Z",
        "next_sync_start": "2026-03-02T00:00:00Z",
        "last_sync_result": more.pop("result", status),
        "last_sync_finished": finished,
        "status": status,
        "is_initial_sync": more.pop("initial", False),
        "selective_sync_configurations_usage": "IN_LAST_SYNC",
    }


def test_merge(sim: Sim, tmp_path: Path) -> None:
    accounts = {
        "mg_failed": (
            [merge_model("Employee", "DONE"), merge_model("TimeOff", "FAILED")],
            "errored",
        ),
        "mg_partial": (
            [merge_model("Employee", "PARTIALLY_SYNCED"), merge_model("Team", "DONE")],
            "idle",
        ),
        "mg_done": (
            [
                merge_model("Employee", "DONE", "2026-03-01T00:00:00Z"),
                merge_model("Team", "DONE", "2026-02-27T00:00:00Z"),
                merge_model("TimeOff", "DISABLED", "2020-01-01T00:00:00Z", result="DONE"),
            ],
            "idle",
        ),
        "mg_first": (
            [merge_model("Employee", "SYNCING", None, result=None, initial=True)],
            "initializing",
        ),
        "mg_again": ([merge_model("Employee", "SYNCING", result="DONE")], "active"),
        "mg_paused": (
            [merge_model("Employee", "PAUSED"), merge_model("Team", "PAUSED")],
            "disabled",
        ),
        # Paused after two weeks of failed syncs: a failure, not a pause.
        "mg_paused_failing": (
            [merge_model("Employee", "PAUSED", result="FAILED"), merge_model("Team", "PAUSED")],
            "errored",
        ),
        # More models than a page holds: the failure is on the second page.
        "mg_many": (
            [merge_model(f"M{n:03}", "DONE") for n in range(129)] + [merge_model("M129", "FAILED")],
            "errored",
        ),
    }
    syncs = []
    for account, (models, _) in accounts.items():
        token = f"tok-{account}-secret"
        create(sim, "merge", account, {"results": models}, token=token)
        (tmp_path / account).write_text(token)
        syncs.append({"id": account, "header_files": {"X-Account-Token": str(tmp_path / account)}})
    create(
        sim,
        "merge",
        "mg_ats",
        {"results": [merge_model("Candidate", "DONE")]},
        token="tok-ats",
        category="ats",
    )
    syncs.append({"id": "mg_wrong", "headers": {"X-Account-Token": "not-a-token"}})
    base = {"provider": "generic", "preset": "merge", "base_url": f"{sim.base}/merge"}
    auth = {"token": merge.API_KEY}
    ats = {
        **base,
        "name": "mg-ats",
        "auth": auth,
        "generic": {"detail": "/api/ats/v1/sync-status?page_size=100"},
        "syncs": [{"id": "mg_ats", "headers": {"X-Account-Token": "tok-ats"}}],
    }
    sim.reset_requests()
    m, log = once(tmp_path / "mg.yml", [{**base, "name": "mg", "auth": auth, "syncs": syncs}, ats])
    read = states(m, "mg")
    assert read == {account: state for account, (_, state) in accounts.items()}
    assert m.value("sync_up", sync_id="mg_wrong") == 0
    assert m.value("sync_exporter_errors_total", source="mg", reason="unauthorized") == 1
    assert m.value("sync_error_info", sync_id="mg_failed", reason="TimeOff") == 1
    assert not m.has("sync_error_info", sync_id="mg_partial")
    # Partly synced is Merge's soft warning: health warn (SyncHealthWarning), not a page.
    assert m.value("sync_health", sync_id="mg_partial", status="warn") == 1
    assert m.value("sync_health", sync_id="mg_done", status="ok") == 1
    assert m.value("sync_provider_status", sync_id="mg_partial", status="PARTIALLY_SYNCED") == 1
    assert m.value("sync_last_synced_timestamp_seconds", sync_id="mg_partial") == 1772323200
    assert m.value("sync_error_info", sync_id="mg_paused_failing", reason="Employee") == 1
    assert m.value("sync_error_info", sync_id="mg_many", reason="M129") == 1
    # The oldest successful finish among the models still syncing (a disabled one is left out).
    assert m.value("sync_last_synced_timestamp_seconds", sync_id="mg_done") == 1772150400
    assert states(m, "mg-ats") == {"mg_ats": "idle"}
    # page_size=100: one request an account, two for the account of 130 models.
    assert sim.requests() == {
        "/merge/api/hris/v1/sync-status": len(accounts) + 2,
        "/merge/api/ats/v1/sync-status": 1,
    }
    for account in accounts:
        assert f"tok-{account}-secret" not in log + m.text


def airbyte_job(connection: str, status: str, **fields: Any) -> dict[str, Any]:
    return {
        "jobId": 7,
        "status": status,
        "jobType": "sync",
        "startTime": "2026-04-01T00:00:00Z",
        "connectionId": connection,
        "lastUpdatedAt": "2026-04-01T00:10:00Z",
        "duration": "PT10M",
        "bytesSynced": 100,
        "rowsSynced": 12,
        **fields,
    }


def airbyte_source(sim: Sim, **extra: Any) -> dict[str, Any]:
    return {
        "name": "ab",
        "provider": "generic",
        "preset": "airbyte",
        "base_url": f"{sim.base}/airbyte/v1",
        "auth": {"username": airbyte.USER, "password": airbyte.PASSWORD},
        "discover": True,
        **extra,
    }


def test_airbyte(sim: Sim, tmp_path: Path) -> None:
    sim.http.post("/_sim/reset")
    cases = {
        "ab_running": ("running", "active"),
        "ab_pending": ("pending", "active"),
        "ab_queued": ("queued", "active"),
        "ab_ok": ("succeeded", "idle"),
        "ab_failed": ("failed", "errored"),
        "ab_retrying": ("incomplete", "errored"),
        "ab_cancelled": ("cancelled", "idle"),
        "ab_new": (None, "initializing"),
    }
    for connection, (status, _) in cases.items():
        job = {} if status is None else airbyte_job(connection, status)
        create(sim, "airbyte", connection, job, name=f"Name {connection}")
    connections = {
        "ab_off": ("inactive", None, "disabled"),
        "ab_old": ("deprecated", None, "disabled"),
        "ab_locked": ("locked", "invented: out of credits", "errored"),
    }
    for connection, (status, reason, _) in connections.items():
        extra: dict[str, Any] = {"status": status}
        if reason is not None:
            extra["statusReason"] = reason
        create(sim, "airbyte", connection, airbyte_job(connection, "succeeded"), **extra)
    every = sim.http.get("/_sim/syncs").json()["airbyte"]
    auth = (airbyte.USER, airbyte.PASSWORD)
    latest = {
        c: sim.http.get(
            "/airbyte/v1/jobs", params={"connectionId": c, "limit": 1}, auth=auth
        ).json()["data"][:1]
        for c in every
    }
    succeeded = [c for c, jobs in latest.items() if jobs and jobs[0]["status"] == "succeeded"]
    sim.reset_requests()
    m, _ = once(
        tmp_path / "ab.yml", [airbyte_source(sim, generic={"list": {"params": {"limit": 2}}})]
    )
    read = states(m, "ab")
    assert sorted(read) == sorted(every), "every connection is watched, whatever its status"
    assert {c: read[c] for c in cases} == {c: state for c, (_, state) in cases.items()}
    assert {c: read[c] for c in connections} == {c: s for c, (_, _, s) in connections.items()}
    assert read[airbyte.OLD] == "disabled" and read[airbyte.LOCKED] == "errored"
    ((labels, _),) = m.find("sync_error_info", sync_id="ab_locked")
    assert labels["reason"] == "invented: out of credits"
    assert not m.has("sync_error_info", sync_id="ab_failed") or all(
        labels["reason"] == "" for labels, _ in m.find("sync_error_info", sync_id="ab_failed")
    )
    assert m.value("sync_records_synced", sync_id="ab_running") == 12
    assert m.value("sync_last_synced_timestamp_seconds", sync_id="ab_ok") == 1775002200
    assert not m.has("sync_last_synced_timestamp_seconds", sync_id="ab_new")
    ((labels, _),) = m.find("sync_info", sync_id="ab_ok")
    assert labels["name"] == "Name ab_ok"
    # Two connections a page, following Airbyte's next-page URLs; a job request each, and one
    # for the last succeeded job where the latest is not it.
    assert "ab_ok" in succeeded and "ab_cancelled" not in succeeded
    assert sim.requests() == {
        "/airbyte/v1/connections": math.ceil(len(every) / 2),
        "/airbyte/v1/jobs": 2 * len(every) - len(succeeded),
    }


def test_airbyte_last_success_is_the_last_succeeded_sync_job(sim: Sim, tmp_path: Path) -> None:
    """Asked of the job log while the latest sync job is not a success, and again only when a
    new job appears; reset and clear jobs never count."""
    sim.http.post("/_sim/reset")
    earlier = airbyte_job("ab_run", "succeeded", jobId=5, lastUpdatedAt="2026-03-31T12:00:00Z")
    reset = airbyte_job("ab_run", "succeeded", jobId=6, jobType="reset")
    current = airbyte_job("ab_run", "running", jobId=8, lastUpdatedAt="2026-04-01T00:20:00Z")
    create(sim, "airbyte", "ab_run", current, jobs=[reset, earlier])
    cleared = airbyte_job("ab_clear", "failed", jobId=3, jobType="clear")
    synced = airbyte_job("ab_clear", "failed", jobId=2, lastUpdatedAt="2026-03-30T00:00:00Z")
    create(sim, "airbyte", "ab_clear", cleared, jobs=[synced])
    config = tmp_path / "ab.yml"
    source = airbyte_source(sim, discover=False, syncs=["ab_run", "ab_clear"])
    config.write_text(yaml.safe_dump({"sources": [source]}, sort_keys=False))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(exporter_command(config, port), f"{url}/-/ready"):
        sim.reset_requests()
        m = Exposition(httpx.get(f"{url}/metrics", timeout=30).text)
        # The reset job (newer, succeeded) is not the connection's last sync.
        assert m.value("sync_last_synced_timestamp_seconds", sync_id="ab_run") == 1774958400
        assert m.state(sync_id="ab_run") == "active"
        # The clear job is not the latest sync job: the failed sync job is.
        assert m.state(sync_id="ab_clear") == "errored"
        assert not m.has("sync_last_synced_timestamp_seconds", sync_id="ab_clear")
        assert sim.requests()["/airbyte/v1/jobs"] == 4
        m = Exposition(httpx.get(f"{url}/metrics", timeout=30).text)
        assert m.value("sync_last_synced_timestamp_seconds", sync_id="ab_run") == 1774958400
        assert sim.requests()["/airbyte/v1/jobs"] == 6, "the latest jobs did not change"
        # A new job (failed, this time) asks the log again.
        failed = airbyte_job("ab_run", "failed", jobId=9, lastUpdatedAt="2026-04-01T00:30:00Z")
        create(sim, "airbyte", "ab_run", failed, jobs=[current, reset, earlier])
        m = Exposition(httpx.get(f"{url}/metrics", timeout=30).text)
        assert sim.requests()["/airbyte/v1/jobs"] == 9
        assert m.value("sync_last_synced_timestamp_seconds", sync_id="ab_run") == 1774958400
        assert m.state(sync_id="ab_run") == "errored"


@pytest.mark.parametrize(
    ("since", "expected"),
    [
        (
            {"path": "/jobs?c=x", "time": "t"},
            "generic.last_success_from.path: must be a path on base_url starting with '/' and "
            "holding {id}",
        ),
        (
            {"path": "https://evil.example/{id}", "time": "t"},
            "generic.last_success_from.path: must be a path",
        ),
        ({"path": "/j/{id}", "time": "a.["}, "generic.last_success_from.time: not a JMESPath"),
        (
            {"path": "/j/{id}", "time": "t", "again_when": "[["},
            "generic.last_success_from.again_when: not a JMESPath",
        ),
        ({"path": "/j/{id}", "time": None}, "generic.last_success_from.time: Field required"),
    ],
)
def test_a_bad_last_success_request_is_named_by_field(since: dict[str, Any], expected: str) -> None:
    source = airbyte_source_config(generic={"last_success_from": since})
    with pytest.raises(ConfigError) as raised:
        parse_config(yaml.safe_dump({"sources": [source]}), "ab.yml")
    assert f"ab.yml: sources[0].{expected}" in str(raised.value)


def test_a_last_success_request_needs_a_detail_request() -> None:
    source = airbyte_source_config(generic={"detail": None})
    with pytest.raises(ConfigError) as raised:
        parse_config(yaml.safe_dump({"sources": [source]}), "ab.yml")
    assert "sources[0].generic.last_success_from: needs detail" in str(raised.value)


def airbyte_source_config(**extra: Any) -> dict[str, Any]:
    return {
        "name": "ab",
        "provider": "generic",
        "preset": "airbyte",
        "auth": {"username": "u", "password": "p"},
        "discover": True,
        **extra,
    }


# --- any body ------------------------------------------------------------------------------------


def documents(name: str) -> list[Any]:
    """What the preset's paths read, as the fake of its service serves it over a period."""
    world = World.demo(period=100.0, started_at=0.0)
    found: list[Any] = []
    for step in range(0, 200, 9):
        for sync_id in world.ids(name, step):
            body = world.body(name, sync_id, float(step))
            if name == "airbyte":
                state = world.state(name)
                assert isinstance(state, airbyte.AirbyteWorld)
                body = {**state.summary(sync_id), "data": [body] if body else []}
            elif name in ("hightouch", "census"):
                state = world.state(name)
                assert isinstance(state, hightouch.HightouchWorld | census.CensusWorld)
                m = world.moment(float(step))
                body = {**(body or {}), "data": state.runs(sync_id, m)[:1]}
            found.append(body)
    return found


PROFILE = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.parametrize("name", PRESETS)
def test_any_body_is_read_or_refused_by_each_preset(name: str) -> None:
    holes = {"list": {"params": {"provider_config_key": "x"}}} if name == "nango" else {}
    read = StatusMap.of(GenericApi.model_validate(merged(preset(name)["generic"], holes)))
    seeds = documents(name)
    outcomes = {"read": 0, "refused": 0}
    mutated = st.sampled_from(seeds).flatmap(payloads.mutated)

    # Mostly the service's own bodies, broken field by field; some JSON of any shape.
    @PROFILE
    @given(st.one_of(mutated, mutated, mutated, payloads.ANY_JSON, payloads.HOSTILE))
    def check(body: Any) -> None:
        try:
            status = normalise(read.parse(body))
        except BadResponse:
            outcomes["refused"] += 1
            return
        outcomes["read"] += 1
        check_status(status)

    for seed in seeds:
        check_status(normalise(read.parse(seed)))
    check()
    assert outcomes["read"] > 30 and outcomes["refused"] > 0, outcomes
