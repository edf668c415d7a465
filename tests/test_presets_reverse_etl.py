"""The reverse-ETL presets, Hightouch and Census, against the simulator's fakes over real HTTP:
every state their documents name, the latest run read for records and errors, and their
pagination (offset with `hasMore`, page numbers) followed to the end."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from exporter.config import ConfigError, parse_config
from exporter.simulator.providers import census, hightouch
from tests.conftest import Sim
from tests.test_presets import create, once, states


def ht_run(status: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": 1,
        "status": status,
        "createdAt": "2026-05-01T09:59:55.000Z",
        "startedAt": "2026-05-01T10:00:00.000Z",
        "finishedAt": "2026-05-01T10:05:00.000Z",
        "completionRatio": 1,
        "plannedRows": hightouch.rows(90, 10),
        "successfulRows": hightouch.rows(85, 10),
        "failedRows": hightouch.rows(5),
        "error": None,
        **fields,
    }


def ht_sync(sync_id: str, status: str, **fields: Any) -> dict[str, Any]:
    return {"id": sync_id, "slug": f"slug-{sync_id}", "status": status, "disabled": False, **fields}


def test_hightouch(sim: Sim, tmp_path: Path) -> None:
    object_error = {"message": "Destination said no"}
    cases: dict[str, tuple[str, list[dict[str, Any]], str]] = {
        "ht_ok": ("success", [ht_run("success")], "idle"),
        "ht_warn": ("warning", [ht_run("warning")], "idle"),
        "ht_query": (
            "querying",
            [ht_run("querying", finishedAt=None, completionRatio=0)],
            "active",
        ),
        "ht_send": (
            "processing",
            [ht_run("processing", finishedAt=None, completionRatio=0.25)],
            "active",
        ),
        "ht_queued": ("queued", [], "active"),
        "ht_report": ("reporting", [ht_run("reporting", finishedAt=None)], "active"),
        "ht_failed": ("failed", [ht_run("failed", error=object_error)], "errored"),
        # Read both ways: the error as an object with a message, or as a plain string.
        "ht_failed_text": ("failed", [ht_run("failed", error="Query timed out")], "errored"),
        "ht_pending": ("pending", [], "initializing"),
        "ht_cancelled": ("cancelled", [ht_run("cancelled")], "idle"),
        "ht_interrupted": ("interrupted", [ht_run("interrupted")], "idle"),
        "ht_off": ("disabled", [ht_run("success")], "disabled"),
    }
    for sync_id, (status, runs, _) in cases.items():
        create(sim, "hightouch", sync_id, ht_sync(sync_id, status), runs=runs)
    create(sim, "hightouch", "ht_turned_off", ht_sync("ht_turned_off", "success", disabled=True))
    every = sim.http.get("/_sim/syncs").json()["hightouch"]
    sim.reset_requests()
    source = {
        "name": "ht",
        "provider": "generic",
        "preset": "hightouch",
        "base_url": f"{sim.base}/hightouch/api/v1",
        "auth": {"token_file": str(tmp_path / "key")},
        "discover": True,
        "generic": {"list": {"params": {"limit": 4}}},
    }
    (tmp_path / "key").write_text(hightouch.TOKEN + "\n")
    m, log = once(tmp_path / "ht.yml", [source])
    read = states(m, "ht")
    assert sorted(read) == sorted(every), "every page of the offset listing was followed"
    assert {c: read[c] for c in cases} == {c: state for c, (_, _, state) in cases.items()}
    assert read["ht_turned_off"] == "disabled"
    assert all(value == 1 for _, value in m.find("sync_up", source="ht"))
    assert m.value("sync_provider_status", sync_id="ht_warn", status="warning") == 1
    assert m.value("sync_health", sync_id="ht_warn", status="warn") == 1
    assert m.value("sync_health", sync_id="ht_ok", status="warn") == 0
    assert m.value("sync_records_synced", sync_id="ht_ok") == 95
    assert m.value("sync_records_expected", sync_id="ht_ok") == 100
    assert m.value("sync_progress_ratio", sync_id="ht_send") == 0.25
    assert m.value("sync_last_synced_timestamp_seconds", sync_id="ht_ok") == 1777629900
    assert m.value("sync_last_synced_timestamp_seconds", sync_id="ht_warn") == 1777629900
    assert not m.has("sync_last_synced_timestamp_seconds", sync_id="ht_failed")
    assert m.value("sync_error_info", sync_id="ht_failed", reason="Destination said no") == 1
    assert m.value("sync_error_info", sync_id="ht_failed_text", reason="Query timed out") == 1
    ((labels, _),) = m.find("sync_info", sync_id="ht_ok")
    assert labels["name"] == "slug-ht_ok"
    pages = math.ceil(len(every) / 4)
    reads = {f"/hightouch/api/v1/syncs/{i}/runs": 1 for i in every}
    # Discovery lists every page once; then one run request per sync.
    assert sim.requests() == {"/hightouch/api/v1/syncs": pages, **reads}
    assert hightouch.TOKEN not in log and hightouch.TOKEN not in m.text


def census_run(status: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": 3,
        "status": status,
        "records_processed": 40,
        "records_updated": 38,
        "records_failed": 2,
        "created_at": "2026-05-01T10:00:00.000Z",
        "completed_at": "2026-05-01T10:02:00.000Z",
        "error_message": None,
        **fields,
    }


def test_census(sim: Sim, tmp_path: Path) -> None:
    cases: dict[str, tuple[list[dict[str, Any]], bool, str]] = {
        "c_done": ([census_run("completed")], False, "idle"),
        "c_working": ([census_run("working", completed_at=None)], False, "active"),
        "c_queued": ([census_run("queued", completed_at=None)], False, "active"),
        "c_skipped": ([census_run("skipped", completed_at=None)], False, "active"),
        "c_failed": ([census_run("failed", error_message="Bad key")], False, "errored"),
        "c_ready": ([], False, "initializing"),
        "c_paused": ([census_run("completed")], True, "disabled"),
    }
    for sync_id, (runs, paused, _) in cases.items():
        body = {
            "id": sync_id,
            "label": f"Label {sync_id}",
            "status": "up to date",
            "paused": paused,
        }
        create(sim, "census", sync_id, body, runs=runs)
    every = sim.http.get("/_sim/syncs").json()["census"]
    sim.reset_requests()
    source = {
        "name": "cs",
        "provider": "generic",
        "preset": "census",
        "base_url": f"{sim.base}/census/api/v1",
        "auth": {"token": census.TOKEN},
        "discover": True,
        "generic": {"list": {"params": {"per_page": 3}}},
    }
    m, log = once(tmp_path / "cs.yml", [source])
    read = states(m, "cs")
    assert sorted(read) == sorted(every), "every page number was followed"
    assert {c: read[c] for c in cases} == {c: state for c, (_, _, state) in cases.items()}
    assert all(value == 1 for _, value in m.find("sync_up", source="cs"))
    assert m.value("sync_records_synced", sync_id="c_done") == 38
    assert m.value("sync_records_expected", sync_id="c_done") == 40
    assert m.value("sync_last_synced_timestamp_seconds", sync_id="c_done") == 1777629720
    assert not m.has("sync_last_synced_timestamp_seconds", sync_id="c_failed")
    assert m.value("sync_error_info", sync_id="c_failed", reason="Bad key") == 1
    ((labels, _),) = m.find("sync_info", sync_id="c_done")
    assert labels["name"] == "Label c_done"
    reads = {f"/census/api/v1/syncs/{i}/sync_runs": 1 for i in every}
    assert sim.requests() == {"/census/api/v1/syncs": math.ceil(len(every) / 3), **reads}
    assert census.TOKEN not in log and census.TOKEN not in m.text


def test_the_demo_syncs_of_both_fakes_read_as_their_lifecycles_say(
    sim: Sim, tmp_path: Path
) -> None:
    sources = [
        {
            "name": "ht",
            "provider": "generic",
            "preset": "hightouch",
            "base_url": f"{sim.base}/hightouch/api/v1",
            "auth": {"token": hightouch.TOKEN},
            "syncs": [hightouch.CHURN, hightouch.LEGACY, hightouch.FRESH],
        },
        {
            "name": "cs",
            "provider": "generic",
            "preset": "census",
            "base_url": f"{sim.base}/census/api/v1",
            "auth": {"token": census.TOKEN},
            "syncs": [census.USAGE, census.ARCHIVE, census.FRESH],
        },
    ]
    m, _ = once(tmp_path / "demo.yml", sources)
    assert states(m, "ht") == {
        hightouch.CHURN: "errored",
        hightouch.LEGACY: "disabled",
        hightouch.FRESH: "initializing",
    }
    assert states(m, "cs") == {
        census.USAGE: "errored",
        census.ARCHIVE: "disabled",
        census.FRESH: "initializing",
    }


def offset_source(**listing: Any) -> dict[str, Any]:
    return {
        "sources": [
            {
                "name": "x",
                "provider": "generic",
                "base_url": "https://api.example.com",
                "auth": {"token": "t"},
                "generic": {"list": {"path": "/syncs", **listing}, "fields": {"status": "s"}},
            }
        ]
    }


@pytest.mark.parametrize(
    ("listing", "problem"),
    [
        ({"offset_param": "offset"}, "generic.list.offset_param: needs more"),
        ({"more": "hasMore"}, "generic.list.more: needs offset_param"),
        (
            {"offset_param": "offset", "more": "hasMore", "next": "n"},
            "generic.list.offset_param: set either offset_param (with more) or next",
        ),
        ({"offset_param": " ", "more": "hasMore"}, "generic.list.offset_param: is empty"),
    ],
)
def test_offset_paging_is_checked_at_load(listing: dict[str, Any], problem: str) -> None:
    import yaml

    with pytest.raises(ConfigError) as raised:
        parse_config(yaml.safe_dump(offset_source(**listing)), "o.yml")
    assert f"o.yml: sources[0].{problem}" in str(raised.value)
