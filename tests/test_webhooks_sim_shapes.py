"""The simulator's webhooks for Paragon, Terminal, Fivetran and Merge: their shapes (Terminal's
against its official spec), their signatures (computed here from the documented schemes),
and that a time which only moves with the clock sends nothing.

The guesses are checked both ways where the exporter reads them: Merge's outcome of a
completed sync with and without a failed model, Terminal's event name in `type` (the spec)
and in `event` (the older guess).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import jmespath
import pytest
import yaml

from exporter.simulator.providers import PROVIDERS, fivetran, merge
from exporter.simulator.providers.paragon import webhooks as paragon_hooks
from exporter.simulator.providers.terminal import webhooks as terminal_hooks
from exporter.simulator.world import World
from tests.test_simulator_terminal import spec_validator

ROOT = Path(__file__).resolve().parent.parent
HOUR = 3600.0


def _events(world: World, provider: str, start: float, steps: int, step: float) -> list[Any]:
    """Every event the provider sends as `world` runs from `start`, looked at every `step`."""
    sim = PROVIDERS[provider]
    seen: dict[str, Any] = {}
    found: list[Any] = []
    for i in range(steps):
        now = start + i * step
        for sync_id in world.ids(provider, now):
            body = world.body(provider, sync_id, now)
            if body is None:
                continue
            found += sim.webhook_events_in(world, sync_id, seen.get(sync_id), body, now)
            seen[sync_id] = body
    return found


@pytest.fixture
def world() -> World:
    return World.demo(period=HOUR, started_at=1_700_000_000.0)


def test_a_day_of_demo_runs_sends_runs_not_clock_ticks(world: World) -> None:
    start = world.started_at
    # Looking every minute for three periods: the ends of cycling runs, never one a minute.
    for provider in ("fivetran", "merge", "paragon"):
        events = _events(world, provider, start, 180, 60.0)
        assert len(events) < 60, (provider, len(events))
    ends = [e for e in _events(world, "fivetran", start, 180, 60.0) if e["event"] == "sync_end"]
    assert {e["data"]["status"] for e in ends} == {"SUCCESSFUL"}
    assert {e["connector_id"] for e in ends} >= {fivetran.SALESFORCE}
    initial = _events(world, "paragon", start, 180, 60.0)
    assert [e["event"] for e in initial][:1] == ["sync_complete"], initial
    assert initial[0]["data"]["syncedAt"] and initial[0]["data"]["model"]


def test_terminal_events_validate_against_terminals_spec(world: World) -> None:
    events = _events(world, "terminal", world.started_at, 180, 60.0)
    kinds = {event["type"] for event in events}
    assert "sync.completed" in kinds
    for event in events:
        schema = "SyncCompleted" if event["type"] == "sync.completed" else "SyncFailed"
        errors = list(spec_validator(schema).iter_errors(event))
        assert not errors, (event, errors[0].message)
        wanted = {"sync.completed": "completed", "sync.failed": "failed"}[event["type"]]
        assert event["detail"]["sync"]["status"] == wanted


def test_a_paragon_sync_that_errors_sends_sync_errored(world: World) -> None:
    now = world.started_at + 60
    statuses = {
        i: (world.body("paragon", i, now) or {})["status"] for i in world.ids("paragon", now)
    }
    sync_id = next(i for i, status in statuses.items() if status.upper() != "ERRORED")
    before = world.body("paragon", sync_id, now)
    world.override("paragon", sync_id, {"status": "ERRORED", "reason": "revoked"}, now)
    after = world.body("paragon", sync_id, now)
    assert before is not None and after is not None
    (event,) = PROVIDERS["paragon"].webhook_events_in(world, sync_id, before, after, now)
    assert event["event"] == "sync_errored"
    assert event["syncInstanceId"] == sync_id
    assert event["user"]["id"] and event["sync"]
    assert event["error"] == {"message": "revoked"}


def test_signatures_are_the_documented_hmacs() -> None:
    body = json.dumps({"event": "sync_end"}).encode()
    digest = hmac.new(fivetran.WEBHOOK_SECRET.encode(), body, hashlib.sha256).digest()
    (value,) = PROVIDERS["fivetran"].webhook_headers(body).values()
    assert bytes.fromhex(value) == digest
    merge_key = merge.WEBHOOK_SECRET.encode()
    digest = hmac.new(merge_key, body, hashlib.sha256).digest()
    headers = PROVIDERS["merge"].webhook_headers(body)
    assert base64.urlsafe_b64decode(headers["X-Merge-Webhook-Signature"]) == digest
    # Paragon and Terminal document no signature: the URL they are given carries the secret.
    assert PROVIDERS["paragon"].webhook_headers(body) == {}
    assert PROVIDERS["terminal"].webhook_headers(body) == {}
    assert paragon_hooks.WEBHOOK_SECRET and terminal_hooks.WEBHOOK_SECRET


def _preset_webhook(name: str) -> dict[str, Any]:
    preset = yaml.safe_load((ROOT / "exporter" / "presets" / f"{name}.yml").read_text())
    webhook: dict[str, Any] = preset["webhook"]
    return webhook


@pytest.mark.parametrize(
    ("results", "outcome"),
    [(["DONE", "DONE"], "succeeded"), (["DONE", "FAILED"], "failed"), ([], "succeeded")],
)
def test_merges_outcome_guess_both_ways(results: list[str], outcome: str) -> None:
    webhook = _preset_webhook("merge")
    status = {f"hris.M{i}": {"last_sync_result": r} for i, r in enumerate(results)}
    event = {
        "hook": {"event": "LinkedAccount.sync_completed"},
        "linked_account": {"id": "acme"},
        "data": {"sync_status": status},
    }
    assert jmespath.search(webhook["outcome"], event) == outcome
    assert jmespath.search(webhook["id"], event) == "acme"
    other = {**event, "hook": {"event": "LinkedAccount.linked"}}
    assert not jmespath.search(webhook["outcome"], other)


def test_a_disconnected_connection_sends_connection_disconnected(world: World) -> None:
    now = world.started_at + 60
    terminal = PROVIDERS["terminal"]
    before = dict(terminal.webhook_subjects(world, now))
    key, body = next((k, b) for k, b in before.items() if b["status"] == "connected")
    after = {**body, "status": "disconnected"}
    (event,) = terminal.webhook_events_in(world, key, body, after, now)
    assert event["type"] == "connection.disconnected"
    errors = list(spec_validator("ConnectionDisconnected").iter_errors(event))
    assert not errors, errors[0].message
    assert terminal.webhook_events_in(world, key, after, after, now) == []
