"""The Fivetran, Nango and Airbyte presets against their providers' official OpenAPI specs served
by Stoplight Prism: fakes that we did not write, so they cannot drift into agreeing with us.

Prism (with `--errors`) refuses any request of ours that breaks the spec, which fails these
tests; its static answers are the spec's examples, and with `Prefer: dynamic=true` random
schema-valid bodies, which the presets must read without a crash: each sync up with one
canonical state or down with a named reason, and the exposition valid.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.prism import (
    Pinned,
    check_exposition,
    check_read,
    once,
    pinned,
    prism,
    refused,
    spec_file,
)
from tests.tools import ROOT

ROUNDS = 20
SOURCES = 10
DYNAMIC = {"Prefer": "dynamic=true"}

# The auth of each preset, in one place. Airbyte: the preset's Basic auth for now; when it
# moves to client credentials, change AIRBYTE_AUTH (the spec has no token endpoint: point
# `token_url` at a loopback token server) and AIRBYTE_READY.
AIRBYTE_AUTH: dict[str, Any] = {"username": "airbyte", "password": "prism-password"}
AIRBYTE_READY = {"Authorization": "Basic " + base64.b64encode(b"airbyte:prism-password").decode()}


@dataclass(frozen=True)
class Spec:
    """A preset and the spec Prism serves for it."""

    preset: str
    filename: str
    ready_path: str  # a request the spec answers 200, to know Prism is up
    ready_headers: dict[str, str]
    auth: dict[str, Any]
    # What makes our requests break the spec: credentials of a scheme it does not accept, or a
    # query parameter out of its range.
    breaking: dict[str, Any]
    generic: dict[str, Any] = field(default_factory=dict)  # what a user must add to the preset
    # Syncs configured beside discovery, read whatever the list says (Airbyte asks for each
    # one's jobs: dynamic lists are often empty or hold no active connection).
    syncs: tuple[str, ...] = ()


SPECS = {
    "fivetran": Spec(
        "fivetran",
        "fivetran-openapi.json",
        "/v1/connections",
        {"Authorization": "Basic " + base64.b64encode(b"key:secret").decode()},
        {"username": "key", "password": "prism-secret"},
        {"auth": {"token": "not-basic"}},
    ),
    "nango": Spec(
        "nango",
        "nango-openapi.yaml",
        "/sync/status?provider_config_key=github&syncs=*",
        {"Authorization": "Bearer prism-secret-key"},
        {"token": "prism-secret-key"},
        {"auth": {"username": "not", "password": "bearer"}},
        {"list": {"params": {"provider_config_key": "github"}}},
    ),
    "airbyte": Spec(
        "airbyte",
        "airbyte-openapi.yaml",
        "/connections",
        AIRBYTE_READY,
        AIRBYTE_AUTH,
        {"generic": {"detail": "/jobs?connectionId={id}&limit=1000"}},  # at most 100
        syncs=("9e1ad2b4-1c3f-4c39-8f4b-4d8b0c1e2a10", "0b6a7e52-5d2c-4f7e-9a43-6c1f3e8d9b21"),
    ),
}
# Prism's pages never end: the examples repeat one cursor or link, dynamic ones make up a new one
# on every page (an Airbyte link off base_url's host). Tests that read items read one page.
ONE_PAGE = {"list": {"next": "`null`"}}


@pytest.fixture(scope="module", params=sorted(SPECS))
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Spec, str]]:
    """Prism's mock of one spec, started once for the module."""
    spec = SPECS[request.param]
    path = spec_file(spec.preset, spec.filename)
    logs = tmp_path_factory.mktemp(f"prism-{spec.preset}")
    with prism("mock", path, spec.ready_path, spec.ready_headers, logs) as base:
        yield spec, base


def source(spec: Spec, base: str, *extra: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A source of the preset on `base`, discovering its syncs, with `extra` generic keys."""
    generic: dict[str, Any] = {}
    for part in (spec.generic, *extra):
        for key, value in part.items():
            both = isinstance(value, dict) and isinstance(generic.get(key), dict)
            generic[key] = {**generic[key], **value} if both else value
    entry: dict[str, Any] = {
        "name": f"prism-{spec.preset}",
        "provider": "generic",
        "preset": spec.preset,
        "base_url": base,
        "auth": spec.auth,
        "discover": True,
    }
    if spec.syncs:
        entry["syncs"] = list(spec.syncs)
    if generic:
        entry["generic"] = generic
    return {**entry, **fields}


def test_the_shipped_preset_refuses_the_examples_endless_pages(
    served: tuple[Spec, str], tmp_path: Path
) -> None:
    """Nango's list has no pages; Fivetran's example repeats its cursor and Airbyte's links to
    api.airbyte.com: each listing fails with its reason, never followed off loopback."""
    spec, base = served
    run = once(tmp_path / "c.yml", [source(spec, base)])
    name = f"prism-{spec.preset}"
    states = check_read(run, name)
    check_exposition(run)
    failed = {
        "fivetran": "the list's next cursor repeats an earlier one",
        "airbyte": "the next page's URL is not on base_url's host",
    }
    if spec.preset in failed:
        assert failed[spec.preset] in run.log
        assert run.m.value("sync_exporter_errors_total", source=name, reason="bad_response") == 1
    # Only the configured syncs are read (Airbyte's, through the jobs example: running).
    expected = (
        {"string": "active"} if spec.preset == "nango" else dict.fromkeys(spec.syncs, "active")
    )
    assert states == expected


def test_the_preset_reads_the_specs_examples(served: tuple[Spec, str], tmp_path: Path) -> None:
    spec, base = served
    name = f"prism-{spec.preset}"
    run = once(tmp_path / "c.yml", [source(spec, base, ONE_PAGE)])
    states = check_read(run, name)
    check_exposition(run)
    if spec.preset == "fivetran":
        # One connection, its `tasks` not empty: errored, with the task's message as reason.
        assert states == {"connection_id": "errored"}
        assert run.m.has("sync_error_info", source=name, reason="string")
        info = [labels for labels, _ in run.m.find("sync_info", source=name)]
        assert [(i["integration"], i["name"]) for i in info] == [("google_sheets", "gsheets.table")]
    elif spec.preset == "nango":
        assert states == {"string": "active"}  # RUNNING
    else:
        # The spec's connection example is six fragments, none with a `connectionId`: none read
        # but the configured syncs, through the jobs example (its job is running).
        assert states == dict.fromkeys(spec.syncs, "active")
        assert run.m.value("sync_exporter_syncs_dropped", source=name, reason="invalid_id") >= 1


def test_dynamic_payloads_are_read_or_refused_by_name(
    served: tuple[Spec, str], tmp_path: Path
) -> None:
    """ROUNDS random payloads, as SOURCES sources of one run each reading its own pass-through
    (one exporter start for SOURCES rounds keeps the suite fast)."""
    spec, _ = served
    seen: dict[str, int] = {}
    for run_index in range(ROUNDS // SOURCES):
        with _pass_throughs(served, SOURCES) as throughs:
            entries = [
                source(
                    spec, through.url, ONE_PAGE, name=f"prism-{spec.preset}-{i}", headers=DYNAMIC
                )
                for i, through in enumerate(throughs)
            ]
            run = once(tmp_path / f"run{run_index}.yml", entries)
            check_exposition(run)
            for entry, through in zip(entries, throughs, strict=True):
                for sync_id, state in check_read(run, entry["name"]).items():
                    if state == "unknown" and spec.preset == "fivetran":
                        # sync_state is a free string in Fivetran's spec: Prism makes up values.
                        # Only one outside the four its description documents may be unknown.
                        raws = _fivetran_sync_states(through)
                        assert sync_id in raws, (sync_id, raws)
                        assert raws[sync_id] not in _fivetran_documented_states(), raws[sync_id]
                        state = "unknown, undocumented"
                    seen[state] = seen.get(state, 0) + 1
                assert through.statuses and all(code == 200 for _, code in through.statuses)
    assert sum(seen.values()) >= 3 and len(seen) >= 2, seen
    # Every status the spec enumerates (or documents) is mapped: none reads as unknown.
    assert "unknown" not in seen, seen


def _fivetran_documented_states() -> set[str]:
    """The sync_state values the description of Fivetran's spec lists (`- scheduled - ...`)."""
    spec = json.loads(spec_file("fivetran", SPECS["fivetran"].filename).read_text())
    schema = spec["components"]["schemas"]["ConnectorStatusResponse"]["properties"]["sync_state"]
    return set(re.findall(r"- (\w+) - ", schema["description"]))


def _fivetran_sync_states(through: Pinned) -> dict[str, Any]:
    """Each listed connection's raw status.sync_state, from the answers this round served."""
    states: dict[str, Any] = {}
    for _, _, body in through.answers.values():
        with contextlib.suppress(ValueError, AttributeError, TypeError, KeyError):
            for item in json.loads(body)["data"]["items"]:
                states[item["id"]] = (item.get("status") or {}).get("sync_state")
    return states


def test_the_fivetran_preset_maps_every_documented_sync_state() -> None:
    """The four values the spec's description lists each map to a canonical state."""
    documented = _fivetran_documented_states()
    assert documented == {"scheduled", "syncing", "paused", "rescheduled"}
    preset = yaml.safe_load((ROOT / "exporter" / "presets" / "fivetran.yml").read_text())
    assert documented <= set(preset["generic"]["states"])


@contextmanager
def _pass_throughs(served: tuple[Spec, str], count: int) -> Iterator[list[Pinned]]:
    with ExitStack() as stack:
        yield [stack.enter_context(pinned(served[1])) for _ in range(count)]


def test_a_request_that_breaks_the_spec_fails_the_check(
    served: tuple[Spec, str], tmp_path: Path
) -> None:
    """Prism refuses a request that breaks the spec, and check_read fails on that."""
    spec, base = served
    name = f"prism-{spec.preset}"
    breaking = dict(spec.breaking)
    entry = source(spec, base, ONE_PAGE, breaking.pop("generic", {}), **breaking)
    run = once(tmp_path / "c.yml", [entry])
    codes = [line.split(" x ")[0] for line in refused(run, name)]
    assert codes and all(code.startswith("4") for code in codes), codes
    with pytest.raises(AssertionError):
        check_read(run, name)


def test_pinned_rounds_repeat_within_and_change_between(served: tuple[Spec, str]) -> None:
    """The pass-through the dynamic rounds use keeps a round's payload and no other."""
    spec, base = served
    with pinned(base) as through:
        ask = dict(spec.ready_headers, Prefer="dynamic=true")
        first = through.answer(spec.ready_path, ask)
        assert through.answer(spec.ready_path, ask) == first
        bodies = {first[2]}
        for _ in range(3):
            through.clear()
            bodies.add(through.answer(spec.ready_path, ask)[2])
        assert len(bodies) > 1
