"""The generic provider: its mapping checked at load time, its reading of any JSON, and the real
exporter reading the simulator's made-up pipelines API (which resembles none of the presets)
over real HTTP: pagination, a detail request, composite states, an unmapped status and
missing fields."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from alerts.generate import render
from alerts.settings import Settings
from dashboards.generate import DASHBOARDS, to_dict
from dashboards.promql import metric_names, substitute
from exporter.config import ConfigError, parse_config
from exporter.exposition.metrics import SYNC_FAMILIES
from exporter.model import State, SyncStatus, normalise
from exporter.providers.base import BadResponse
from exporter.providers.generic import GenericApi, GenericConfig, StatusMap, _origin
from exporter.schema import compile_path, labels_from
from exporter.simulator.providers.generic import KEY, MAPPING, demo_pipelines
from tests.conftest import Sim
from tests.exposition import Exposition
from tests.procs import exporter_command, free_port, run_exporter, running
from tests.snippets import yaml_blocks
from tests.tools import ROOT

PIPELINES = "/generic/v2/pipelines"


def mapping(**generic: Any) -> StatusMap:
    """A compiled mapping: the pipelines API's, with `generic` keys replacing its own."""
    return StatusMap.of(GenericApi.model_validate({**MAPPING, **generic}))


def source(extra: str = "", generic: str = "") -> str:
    """A config of one generic source, `generic` being YAML lines under `generic:`."""
    block = generic or ("      detail: /v2/x/{id}\n      fields: {status: state.phase}\n")
    return (
        "sources:\n"
        "  - name: g\n"
        "    provider: generic\n"
        "    base_url: https://api.example.com\n"
        "    auth: {token: abc}\n"
        "    syncs: [one]\n"
        f"{extra}"
        "    generic:\n"
        f"{block}"
    )


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    """Every problem the loader reports for `text`, without the file name."""
    with pytest.raises(ConfigError) as raised:
        parse_config(text, "g.yml")
    return [line.removeprefix("g.yml: ") for line in str(raised.value).splitlines()]


# --- the mapping is checked at load time -----------------------------------------------------

BAD = {
    "bad status path": (
        "      detail: /v2/x/{id}\n      fields: {status: 'state.[phase'}\n",
        "sources[0].generic.fields.status: not a JMESPath expression: 'state.[phase'",
    ),
    "bad rule path": (
        "      detail: /v2/x/{id}\n      fields: {status: s}\n"
        "      state_rules: [{when: ok, state: idle}, {when: 'a ==', state: idle}]\n",
        "sources[0].generic.state_rules[1].when: not a JMESPath expression",
    ),
    "bad shorthand path": (
        "      detail: /v2/x/{id}\n      fields: {status: s, progress: 'p[('}\n",
        "sources[0].generic.fields.progress.path: not a JMESPath expression",
    ),
    "status missing": (
        "      detail: /v2/x/{id}\n      fields: {name: n}\n",
        "sources[0].generic.fields.status: Field required",
    ),
    "unknown canonical state": (
        "      detail: /v2/x/{id}\n      fields: {status: s}\n      states: {RUNNING: busy}\n",
        "sources[0].generic.states.RUNNING: Input should be 'initializing', 'active', 'idle'",
    ),
    "unknown rule state": (
        "      detail: /v2/x/{id}\n      fields: {status: s}\n"
        "      state_rules: [{when: x, state: stale}]\n",
        "sources[0].generic.state_rules[0].state: Input should be 'initializing'",
    ),
    "states differing in case": (
        "      detail: /v2/x/{id}\n      fields: {status: s}\n"
        "      states: {done: idle, DONE: errored}\n",
        "sources[0].generic.states.DONE: differs from 'done' only in case",
    ),
    "misspelt field": (
        "      detail: /v2/x/{id}\n      fields: {status: s, stauts: t}\n",
        "sources[0].generic.fields.stauts: Extra inputs are not permitted",
    ),
    "unknown time format": (
        "      detail: /v2/x/{id}\n"
        "      fields: {status: s, last_success: {path: t, format: rfc}}\n",
        "sources[0].generic.fields.last_success.format: Input should be 'iso', 'epoch' or",
    ),
    "neither list nor detail": (
        "      fields: {status: s}\n",
        "sources[0].generic: set list",
    ),
    "detail with a host": (
        "      detail: https://evil.example/x/{id}\n      fields: {status: s}\n",
        "sources[0].generic.detail: must be a path on base_url starting with '/'",
    ),
    "detail protocol-relative": (
        "      detail: //evil.example/x/{id}\n      fields: {status: s}\n",
        "sources[0].generic.detail: must be a path on base_url",
    ),
    "detail with another placeholder": (
        "      detail: /x/{id}/{token}\n      fields: {status: s}\n",
        "sources[0].generic.detail: only {id} is filled in",
    ),
    "list path ending in a line break": (
        '      list: {path: "/x\\n"}\n      fields: {status: s}\n',
        "sources[0].generic.list.path: must be a path on base_url",
    ),
    "list path without slash": (
        "      list: {path: v2/x}\n      fields: {status: s}\n",
        "sources[0].generic.list.path: must be a path on base_url",
    ),
    "cursor without next": (
        "      list: {path: /x, cursor_param: c}\n      fields: {status: s}\n",
        "sources[0].generic.list.cursor_param: needs next",
    ),
    "detail pages without detail": (
        "      list: {path: /x}\n      detail_pages: {items: r, next: n}\n"
        "      fields: {status: s}\n",
        "sources[0].generic.detail_pages: pages of the detail body: set detail",
    ),
    "detail pages of a nested array": (
        "      detail: /x/{id}\n      detail_pages: {items: a.b, next: n}\n"
        "      fields: {status: s}\n",
        "sources[0].generic.detail_pages.items: must be a top-level key of the body",
    ),
    "detail pages without next": (
        "      detail: /x/{id}\n      detail_pages: {items: r}\n      fields: {status: s}\n",
        "sources[0].generic.detail_pages.next: Field required",
    ),
    "bad warning path": (
        "      detail: /x/{id}\n      fields: {status: s, warning: 'a[?'}\n",
        "sources[0].generic.fields.warning: not a JMESPath expression",
    ),
    "listed detail without id": (
        "      list: {path: /x}\n      detail: /status\n      fields: {status: s}\n",
        "sources[0].generic.detail: must contain {id} when syncs are listed",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_mapping_is_a_config_error_naming_the_field(case: str) -> None:
    block, expected = BAD[case]
    found = problems(source(generic=block))
    assert any(line.startswith(expected) for line in found), found
    assert all("\n" not in line for line in found)


@pytest.mark.parametrize(
    ("extra", "block", "expected"),
    [
        (
            "    discover: true\n",
            "      detail: /x/{id}\n      fields: {status: s}\n",
            "sources[0].discover: needs generic.list",
        ),
        (
            "    syncs: [{id: a, headers: {X-Token: t}}]\n",
            "      list: {path: /x, items: data}\n      fields: {status: s}\n",
            "sources[0].syncs[0].headers: a sync's own headers go with its detail request",
        ),
    ],
)
def test_what_the_source_asks_of_its_mapping_is_checked(
    extra: str, block: str, expected: str
) -> None:
    text = source(generic=block).replace("    syncs: [one]\n", extra)
    assert any(line.startswith(expected) for line in problems(text)), problems(text)


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        ("{}", "sources[0].auth: token or token_file"),
        ("{token: a, username: u, password: p}", "sources[0].auth: set either"),
        ("{username: u}", "sources[0].auth.password: is required with a username"),
        ("{username: 'a:b', password: p}", "sources[0].auth.username: must not contain ':'"),
        ("{header: 'X Key', token: t}", "sources[0].auth.header: invalid HTTP header name"),
        ("{header: X-Key, username: u, password: p}", "sources[0].auth.header: names the header"),
    ],
)
def test_auth_takes_one_clear_form(auth: str, expected: str) -> None:
    text = source().replace("{token: abc}", auth)
    assert any(line.startswith(expected) for line in problems(text)), problems(text)


def test_an_expanded_secret_never_shows_in_a_path_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSE_GENERIC_SECRET", "hunter2-very-secret")
    block = "      detail: /v2/x/{id}\n      fields: {status: '${SSE_GENERIC_SECRET}[['}\n"
    (line,) = problems(source(generic=block))
    assert "hunter2" not in line
    assert "<value from ${SSE_GENERIC_SECRET}>" in line


def test_the_command_line_names_file_and_field_for_a_bad_path(tmp_path: Path) -> None:
    config = tmp_path / "g.yml"
    config.write_text(source(generic="      detail: /x/{id}\n      fields: {status: 'a.['}\n"))
    result = run_exporter("--config.file", str(config), "--config.check")
    assert result.returncode == 1
    assert f"{config}: sources[0].generic.fields.status: not a JMESPath expression: 'a.['" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr


def test_sync_header_files_are_read_and_never_shown(tmp_path: Path) -> None:
    token = tmp_path / "account-token"
    token.write_text("account-secret-xyz\n")
    block = "      detail: /status\n      fields: {status: s}\n"
    syncs = (
        f"    syncs:\n      - {{id: a, header_files: {{X-Account-Token: '{token}'}}}}\n"
        "      - {id: b, headers: {X-Account-Token: inline-secret}}\n"
    )
    config = parse_config(source(generic=block).replace("    syncs: [one]\n", syncs), "g.yml")
    first, second = config.sources[0].syncs
    assert first.headers["X-Account-Token"].get_secret_value() == "account-secret-xyz"
    assert second.headers["X-Account-Token"].get_secret_value() == "inline-secret"
    assert "secret" not in repr(config)
    missing = syncs.replace(str(token), str(tmp_path / "nope"))
    (line,) = problems(source(generic=block).replace("    syncs: [one]\n", missing))
    assert line.startswith("sources[0].syncs[0].header_files.X-Account-Token: cannot read")
    shared = "    syncs: [a, b]\n"
    (line,) = problems(source(generic=block).replace("    syncs: [one]\n", shared))
    assert "without {id}, every sync must carry its own headers" in line


# --- reading any JSON --------------------------------------------------------------------------


def test_rules_come_before_states_and_unmapped_is_unknown() -> None:
    pipelines = mapping()
    paused = {"paused": True, "state": {"phase": "SUCCEEDED"}}
    first = {"state": {"phase": "RUNNING"}, "last_success_at": None}
    later = {"state": {"phase": "RUNNING"}, "last_success_at": "2026-01-01T00:00:00Z"}
    assert pipelines.parse(paused).state is State.DISABLED
    assert pipelines.parse(first).state is State.INITIALIZING
    assert pipelines.parse(later).state is State.ACTIVE
    odd = pipelines.parse({"state": {"phase": "MIGRATING"}})
    assert odd.state is State.UNKNOWN and odd.provider_status == "MIGRATING"
    assert pipelines.parse({"state": {"phase": "succeeded"}}).state is State.IDLE


def test_a_path_that_finds_nothing_is_an_absent_value() -> None:
    status = mapping().parse({"state": {"phase": "SUCCEEDED"}, "stats": "not an object"})
    assert status.records_synced is None and status.records_expected is None
    assert status.last_synced_timestamp is None and status.progress_ratio is None
    assert status.info == {"name": "", "integration": ""}
    summed = mapping(fields={"status": "s", "records_synced": "sum(values(counts))"})
    assert summed.parse({"s": "x", "counts": {"a": 2, "b": 3}}).records_synced == 5
    assert summed.parse({"s": "x", "counts": {"a": "two"}}).records_synced is None


def test_no_status_is_a_bad_response_naming_the_path() -> None:
    with pytest.raises(BadResponse, match=r"the status path 'state\.phase' found no string"):
        mapping().parse({"state": {}})
    with pytest.raises(BadResponse, match="expected a JSON object or array"):
        mapping().parse("RUNNING")
    assert mapping(fields={"status": "code"}).parse({"code": 3}).provider_status == "3"


def test_formats_units_and_scales() -> None:
    fields = {
        "status": "s",
        "last_success": {"path": "t", "format": "epoch_ms"},
        "interval": {"path": "every", "unit": "h"},
        "progress": {"path": "pct", "scale": 100},
        "backoff_until": {"path": "resume", "format": "epoch"},
    }
    read = mapping(fields=fields, states={"WAIT": "rate_limited"}, state_rules=[])
    status = read.parse(
        {"s": "WAIT", "t": 1_700_000_000_500, "every": "2", "pct": 40, "resume": 130}, now=100.0
    )
    assert status.last_synced_timestamp == 1_700_000_000.5
    assert status.interval_seconds == 7200.0
    assert status.progress_ratio == 0.4
    assert status.rate_limit_backoff_seconds == 30.0
    other = read.parse({"s": "OK", "every": "1h30m", "t": "soon", "resume": 130}, now=100.0)
    assert other.interval_seconds == 5400.0 and other.last_synced_timestamp is None
    assert other.rate_limit_backoff_seconds == 0.0, "no back-off unless rate limited"


def test_rules_use_jmespath_truth() -> None:
    rules = [{"when": "count", "state": "errored"}, {"when": "tasks", "state": "disabled"}]
    read = mapping(fields={"status": "s"}, states={}, state_rules=rules)
    assert read.parse({"s": "x", "count": 0}).state is State.ERRORED, "0 is true in JMESPath"
    assert read.parse({"s": "x", "count": None, "tasks": []}).state is State.UNKNOWN
    assert read.parse({"s": "x", "tasks": [{}]}).state is State.DISABLED
    newer = mapping(
        fields={"status": "s"}, states={}, state_rules=[{"when": "a > b", "state": "errored"}]
    )
    later = {"s": "x", "a": "2026-02-01T00:00:00Z", "b": "2026-01-31T23:59:59Z"}
    assert newer.parse(later).state is State.ERRORED, "ISO times of one format compare"
    timed = mapping(
        fields={"status": "s"},
        states={},
        state_rules=[{"when": "to_epoch(a) > to_epoch(b)", "state": "errored"}],
    )
    # 11:30 at +02:00 is before 10:00 UTC: as text it would look later.
    earlier = {"s": "x", "a": "2026-01-01T11:30:00+02:00", "b": "2026-01-01T10:00:00Z"}
    assert timed.parse(earlier).state is State.UNKNOWN
    assert timed.parse({**earlier, "b": "2026-01-01T09:00:00.5Z"}).state is State.ERRORED
    assert timed.parse({"s": "x", "a": "soon", "b": True}).state is State.UNKNOWN
    epoch = {"path": "to_epoch(t)", "format": "epoch"}
    seconds = mapping(fields={"status": "s", "last_success": epoch}, states={})
    assert seconds.parse({"s": "x", "t": "1970-01-01T00:01:00Z"}).last_synced_timestamp == 60


def test_a_function_that_overflows_or_a_document_too_deep_gives_an_absent_value() -> None:
    """`ceil` of a sum past 1e308 overflows and `to_string` of a deep document recurses: the
    path finds nothing, as for any wrong type, and the sync is still read."""
    read = mapping(
        fields={"status": "s", "records_synced": "ceil(sum(values(rc)))"}, states={"A": "idle"}
    )
    status = read.parse({"s": "A", "rc": {"a": 1e308, "b": 1e308}})
    assert status.state is State.IDLE and status.records_synced is None
    assert read.parse({"s": "A", "rc": {"a": 2.5, "b": 1}}).records_synced == 4
    deep: Any = "bottom"
    for _ in range(5_000):
        deep = [deep]
    found = labels_from({"meta": deep}, [("meta", compile_path("to_string(meta)"))])
    assert found == {"meta": ""}


def test_negative_counts_and_intervals_are_not_values() -> None:
    """A `-1` meaning "manual" or "unknown" must not become a count or a staleness budget of
    every provider, so the one normalisation drops them."""
    read = mapping(
        fields={
            "status": "s",
            "records_synced": "r",
            "records_expected": "re",
            "interval": {"path": "i", "unit": "m"},
        },
        states={"A": "idle"},
    )
    status = normalise(read.parse({"s": "A", "r": -3, "re": -7, "i": -5}))
    assert (status.records_synced, status.records_expected, status.interval_seconds) == (
        None,
        None,
        None,
    )
    assert normalise(read.parse({"s": "A", "i": 0})).interval_seconds == 0, "continuous"
    kept = normalise(read.parse({"s": "A", "r": 0, "re": 10, "i": 5}))
    assert (kept.records_synced, kept.records_expected, kept.interval_seconds) == (0, 10, 300)
    negative = SyncStatus(state=State.IDLE, provider_status="x", records_synced=-0.5)
    assert normalise(negative).records_synced is None


def test_a_next_page_on_base_urls_host_is_compared_as_an_origin() -> None:
    """The host's case and a default port do not make another origin; anything else does."""
    base = _origin("https://api.airbyte.com/v1")
    assert base is not None
    for same in ("https://API.Airbyte.com/v1/x?o=2", "https://api.airbyte.com:443/v1/x"):
        assert _origin(same) == base, same
    for other in (
        "http://api.airbyte.com/v1/x",
        "https://api.airbyte.com:8443/v1/x",
        "https://evil.example/v1/x",
        "https://api.airbyte.com.evil.example/v1",
        "https://api.airbyte.com:99999/v1",
        "v1/x",
    ):
        assert _origin(other) != base, other


def test_null_removes_a_presets_key_and_the_source_falls_back_to_the_default() -> None:
    text = (
        "sources:\n"
        "  - name: n\n"
        "    provider: generic\n"
        "    preset: nango\n"
        "    auth: {token: abc}\n"
        "    discover: true\n"
        "    label_from: {connection_id: null, owner: metadata.owner}\n"
        "    generic:\n"
        "      list: {params: {provider_config_key: github, syncs: null}}\n"
        "      fields: {name: null}\n"
        "  - name: f\n"
        "    provider: generic\n"
        "    preset: fivetran\n"
        "    auth: {username: k, password: s}\n"
        "    discover: true\n"
        "    headers: null\n"
    )
    nango, fivetran = parse_config(text, "g.yml").sources
    assert isinstance(nango, GenericConfig)
    assert list(nango.label_from) == ["owner"]
    assert nango.generic.listing is not None
    assert dict(nango.generic.listing.params) == {"provider_config_key": "github"}
    assert nango.generic.fields.name is None
    assert not fivetran.headers


# --- the real exporter against the pipelines API -------------------------------------------------


def pipeline(sim: Sim, pipeline_id: str, body: dict[str, Any], **summary: Any) -> None:
    """An ad-hoc pipeline: its detail body, and what the list says about it."""
    response = sim.http.post(
        "/_sim/syncs/generic",
        json={"id": pipeline_id, "body": {"pipeline_id": pipeline_id, **body}, "summary": summary},
    )
    assert response.status_code in (200, 201), response.text


def pipelines_source(sim: Sim, generic: dict[str, Any] = MAPPING, **options: Any) -> str:
    """A config of one source reading the pipelines API with `generic` as its mapping."""
    source = {
        "name": "pipes",
        "provider": "generic",
        "base_url": f"{sim.base}/generic",
        "auth": {"header": "X-Api-Key", "token": KEY},
        "discover": True,
        "label_from": {"owner_team": "owner.team"},
        **options,
        "generic": generic,
    }
    return yaml.safe_dump({"sources": [source]}, sort_keys=False)


def once(config: Path, text: str) -> tuple[Exposition, str]:
    config.write_text(text)
    result = run_exporter("--config.file", str(config), "--once", "--log.level", "debug")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return Exposition(result.stdout), result.stderr


@pytest.fixture(scope="module")
def pipelines(
    sim: Sim, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Exposition, str, dict[str, int]]:
    pipeline(
        sim,
        "t_paused",
        {"state": {"phase": "SUCCEEDED"}, "last_success_at": "2026-01-01T00:00:00Z"},
        paused=True,
        display_name="Paused one",
    )
    pipeline(
        sim,
        "t_first",
        {"state": {"phase": "RUNNING"}, "progress_pct": 25},
        display_name="First run",
    )
    pipeline(
        sim,
        "t_again",
        {
            "state": {"phase": "RUNNING"},
            "last_success_at": "2026-01-01T00:00:00.250Z",
            "schedule_minutes": 60,
        },
        display_name="Again",
        connector={"kind": "mysql"},
        owner={"team": "core"},
    )
    pipeline(sim, "t_odd", {"state": {"phase": "REBALANCING"}})
    pipeline(sim, "t_bare", {"state": {"phase": "SUCCEEDED"}})
    pipeline(
        sim,
        "t_failed",
        {
            "state": {"phase": "FAILED", "error": {"message": "bad credentials"}},
            "stats": {"rows_done": 7, "rows_total": 10},
        },
    )
    pipeline(
        sim,
        "t_throttled",
        {"state": {"phase": "THROTTLED"}, "throttle": {"retry_in_ms": 4500}},
    )
    pipeline(sim, "t_nostatus", {"state": {"error": None}})
    sim.reset_requests()
    directory = tmp_path_factory.mktemp("generic")
    m, log = once(directory / "pipes.yml", pipelines_source(sim))
    return m, log, sim.requests()


def test_every_listed_pipeline_is_read_through_its_detail(
    sim: Sim, pipelines: tuple[Exposition, str, dict[str, int]]
) -> None:
    m, _, requests = pipelines
    listed = [labels["sync_id"] for labels, _ in m.find("sync_up", source="pipes")]
    ids = sim.http.get("/_sim/syncs").json()["generic"]
    assert sorted(listed) == sorted(ids)
    # Two pipelines a page: every page once, then one detail request per pipeline.
    assert requests[PIPELINES] == math.ceil(len(ids) / 2)
    assert all(requests[f"{PIPELINES}/{sync_id}"] == 1 for sync_id in ids)
    assert sum(count for path, count in requests.items() if path.startswith("/generic")) == (
        math.ceil(len(ids) / 2) + len(ids)
    )


def test_composite_states_unmapped_statuses_and_absent_fields(
    pipelines: tuple[Exposition, str, dict[str, int]],
) -> None:
    m, _, _ = pipelines
    assert m.state(sync_id="t_paused") == "disabled"
    assert m.state(sync_id="t_first") == "initializing"
    assert m.state(sync_id="t_again") == "active"
    assert m.state(sync_id="t_odd") == "unknown"
    assert m.value("sync_provider_status", sync_id="t_odd", status="REBALANCING") == 1
    assert m.state(sync_id="t_failed") == "errored"
    assert m.value("sync_error_info", sync_id="t_failed", reason="bad credentials") == 1
    assert m.state(sync_id="t_throttled") == "rate_limited"
    assert m.value("sync_rate_limit_backoff_seconds", sync_id="t_throttled") == 4.5
    assert m.value("sync_progress_ratio", sync_id="t_first") == 0.25
    assert m.value("sync_last_synced_timestamp_seconds", sync_id="t_again") == 1767225600.25
    assert m.value("sync_interval_seconds", sync_id="t_again") == 3600
    assert m.value("sync_records_synced", sync_id="t_failed") == 7
    # A pipeline without the optional fields is read, with those series absent.
    assert m.value("sync_up", sync_id="t_bare") == 1
    for name in (
        "sync_records_synced",
        "sync_progress_ratio",
        "sync_last_synced_timestamp_seconds",
    ):
        assert not m.has(name, sync_id="t_bare"), name


def test_names_come_from_the_list_item_under_the_detail_body(
    pipelines: tuple[Exposition, str, dict[str, int]],
) -> None:
    m, _, _ = pipelines
    ((labels, _),) = m.find("sync_info", sync_id="t_again")
    assert labels["name"] == "Again" and labels["integration"] == "mysql"
    assert labels["owner_team"] == "core"
    ((labels, _),) = m.find("sync_info", sync_id="t_odd")
    assert labels["name"] == "" and labels["owner_team"] == ""


def test_a_pipeline_without_status_is_down_and_says_which_path(
    pipelines: tuple[Exposition, str, dict[str, int]],
) -> None:
    m, log, _ = pipelines
    assert m.value("sync_up", sync_id="t_nostatus") == 0
    assert m.value("sync_exporter_errors_total", source="pipes", reason="bad_response") == 1
    assert "the status path 'state.phase' found no string" in log
    assert KEY not in log and KEY not in m.text


def test_a_refused_key_fails_every_pipeline_as_unauthorized(sim: Sim, tmp_path: Path) -> None:
    text = pipelines_source(sim, discover=False, syncs=["t_bare", "t_odd"])
    text = text.replace(KEY, "wrong-key")
    m, log = once(tmp_path / "wrong.yml", text)
    assert [value for _, value in m.find("sync_up", source="pipes")] == [0, 0]
    # The two reads, and the listing that names the configured pipelines.
    assert m.value("sync_exporter_errors_total", source="pipes", reason="unauthorized") == 3
    assert "wrong-key" not in log


def test_the_list_alone_answers_every_sync_in_one_request(sim: Sim, tmp_path: Path) -> None:
    """Without a detail request the list items carry the statuses: one listing a scrape."""
    listed = {**MAPPING, "detail": None, "fields": {"id": "pipeline_id", "status": "display_name"}}
    listed["list"] = {**MAPPING["list"], "params": {"page_size": 50}}
    text = pipelines_source(sim, listed, discover=False, syncs=["t_again", "t_bare", "gone"])
    sim.reset_requests()
    m, log = once(tmp_path / "bulk.yml", text)
    assert m.value("sync_provider_status", sync_id="t_again", status="Again") == 1
    assert m.value("sync_up", sync_id="gone") == 0
    assert "the list does not carry this sync" in log
    # One listing for the scrape (and none for discovery, which adds nothing here): the sync
    # the list lacks is answered from the same listing.
    assert sim.requests() == {PIPELINES: 1}


def test_one_unreadable_item_never_fails_the_rest_of_a_bulk_read(sim: Sim, tmp_path: Path) -> None:
    """An item whose counts overflow, whose next-page cursor is `false`, beside good ones."""
    pipeline(sim, "t_big", {}, display_name="Big", rc={"a": 1e308, "b": 1e308})
    pipeline(sim, "t_small", {}, display_name="Small", rc={"a": 2, "b": 3})
    listed = {
        **MAPPING,
        "detail": None,
        "fields": {
            "id": "pipeline_id",
            "status": "display_name",
            "records_synced": "ceil(sum(values(rc)))",
        },
        "states": {},
        "state_rules": [],
    }
    # The API's null at the end, read as `false`: a false cursor ends the list too.
    listed["list"] = {**MAPPING["list"], "next": "data.next_cursor || `false`"}
    text = pipelines_source(sim, listed, discover=False, syncs=["t_big", "t_small"])
    sim.reset_requests()
    m, log = once(tmp_path / "bulk.yml", text)
    assert m.value("sync_up", sync_id="t_big") == 1
    assert m.value("sync_up", sync_id="t_small") == 1
    assert m.value("sync_records_synced", sync_id="t_small") == 5
    assert not m.find("sync_records_synced", sync_id="t_big")
    assert "cursor" not in log, "the last page's false cursor ends the list"
    assert list(sim.requests()) == [PIPELINES], "the list alone answers"


def test_a_reload_keeps_listings_only_while_nothing_that_lists_changes(
    sim: Sim, tmp_path: Path
) -> None:
    """A label change keeps the listing (no gap); a new mapping lists afresh, and when its
    listing fails the syncs of the old mapping's listing are not kept as the last good set."""
    config = tmp_path / "reload.yml"
    config.write_text(pipelines_source(sim))
    port = free_port()
    url = f"http://127.0.0.1:{port}"

    def listed(**labels: str) -> set[str]:
        m = Exposition(httpx.get(f"{url}/metrics", timeout=30).text)
        return {found["sync_id"] for found, _ in m.find("sync_up", **labels)}

    with running(exporter_command(config, port, "--web.enable-lifecycle"), f"{url}/-/ready"):
        before = listed()
        assert {pipeline.id for pipeline in demo_pipelines()} <= before
        config.write_text(pipelines_source(sim, labels={"team": "a"}))
        assert httpx.post(f"{url}/-/reload", timeout=30).status_code == 200
        assert listed(team="a") == before
        broken = {**MAPPING, "list": {**MAPPING["list"], "items": "data.missing"}}
        config.write_text(pipelines_source(sim, broken))
        assert httpx.post(f"{url}/-/reload", timeout=30).status_code == 200
        deadline = time.monotonic() + 10
        while listed():
            assert time.monotonic() < deadline, "the old mapping's listing was kept"
            time.sleep(0.2)


# --- the alerts and dashboards work unchanged -----------------------------------------------


def test_generic_syncs_have_every_series_the_rules_and_dashboards_read(
    sim: Sim, tmp_path: Path
) -> None:
    """The demo's generic sources (the pipelines API and the four presets) fill every core
    family the alert rules and dashboards select."""
    config = sim.http.get("/_sim/config").json()
    config["sources"] = [s for s in config["sources"] if s["provider"] == "generic"]
    assert {s["name"] for s in config["sources"]} >= {"demo-generic", "demo-fivetran"}
    m, _ = once(tmp_path / "demo.yml", yaml.safe_dump(config))
    exported = {name for name, labels, _ in m.samples if labels.get("provider") == "generic"}
    used: set[str] = set()
    for group in yaml.safe_load(render(Settings()))["groups"]:
        for rule in group["rules"]:
            used |= metric_names(rule["expr"])
    for spec in DASHBOARDS:
        for panel in to_dict(spec.build())["panels"]:
            for target in panel.get("targets", []):
                used |= metric_names(substitute(target["expr"], {}))
    per_sync = {family.name for family in SYNC_FAMILIES}
    assert used & per_sync, "the rules and dashboards read per-sync families"
    assert (used & per_sync) <= exported, sorted((used & per_sync) - exported)
    assert per_sync <= exported, sorted(per_sync - exported)


# --- the README's examples ---------------------------------------------------------------------


def readme_sources() -> list[dict[str, Any]]:
    """Every generic source the README shows."""
    return [
        source
        for block in yaml_blocks(ROOT / "README.md")
        if isinstance(block, list)
        for source in block
        if isinstance(source, dict) and source.get("provider") == "generic"
    ]


def test_the_readme_examples_load_and_show_the_simulators_mapping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown = readme_sources()
    assert {source.get("preset") for source in shown} == {None, "fivetran"}
    secret = tmp_path / "secret"
    secret.write_text("s3cret")
    for source in shown:
        auth = source["auth"]
        for key in [key for key in auth if key.endswith("_file")]:
            auth[key] = str(secret)
    for name in ("ACME_TOKEN", "FIVETRAN_API_KEY"):
        monkeypatch.setenv(name, "from-env")
    config = parse_config(yaml.safe_dump({"sources": shown}), "README.md")
    assert [source.name for source in config.sources] == [s["name"] for s in shown]
    (example,) = [source for source in shown if "preset" not in source]
    assert example["generic"] == MAPPING, "the README shows the demo's pipelines mapping"
