"""Every problem of a config file in one report: no second round after the first is fixed.

Checks across fields (source names used twice, a source that reads nothing, minting rules,
shard bounds) used to wait until every field was valid; here each of many independent
problems is reported beside all the others, and an unknown key gets the closest known one.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.config import ConfigError, load_config, parse_config
from tests.keys import signing_key_pem
from tests.procs import run_exporter

Patch = Callable[[dict[str, Any]], None]


def base_config(key_file: str) -> dict[str, Any]:
    """A valid config with one source per kind of check, each touched by its own problems."""
    return {
        "sources": [
            {"name": "s-a", "provider": "sequin", "auth": {"token": "t"}, "syncs": ["x1", "x2"]},
            {
                "name": "p-b",
                "provider": "paragon",
                "auth": {"signing_key_file": key_file, "project_id": "p"},
                "users": ["u1"],
                "discover": True,
            },
            {
                "name": "t-c",
                "provider": "terminal",
                "auth": {"token": "t", "connection_token": "c"},
                "labels": {"team": "a"},
                "syncs": ["j1"],
            },
            {
                "name": "p-d",
                "provider": "paragon",
                "auth": {"signing_key_file": key_file, "project_id": "p"},
                "syncs": [{"id": "y1", "user": "u1"}],
            },
        ],
        "collector": {"total_shards": 2, "shard": 1},
        "web": {"listen_address": "127.0.0.1:9869"},
        "log": {"level": "info"},
    }


def _set(path: str, value: Any) -> Patch:
    *parents, last = path.split(".")

    def patch(config: dict[str, Any]) -> None:
        node: Any = config
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if value is _DELETE:
            del node[last]
        else:
            node[last] = value

    return patch


_DELETE = object()

# Problems that do not hide one another: (change, the line that must report it).
PROBLEMS: dict[str, tuple[Patch, str]] = {
    "bad duration": (
        _set("sources.0.stale_after", "soon"),
        "sources[0].stale_after: not a duration: 'soon'",
    ),
    "typo in a key": (
        _set("sources.0.sycs", ["x3"]),
        "sources[0].sycs: Extra inputs are not permitted (did you mean 'syncs'?)",
    ),
    "reads nothing": (
        _set("sources.0.syncs", []),
        "sources[0].syncs: no syncs and discover is false: nothing to read",
    ),
    "source name used twice": (
        _set("sources.1.name", "s-a"),
        "sources[1].name: source name 's-a' is used twice",
    ),
    "no project id": (
        _set("sources.1.auth.project_id", _DELETE),
        "sources[1].auth.project_id: is required with a signing key",
    ),
    "token lifetime": (
        _set("sources.1.auth.token_ttl", "5s"),
        "sources[1].auth.token_ttl: must be from 10s to 24h",
    ),
    "reserved label": (
        _set("sources.1.labels", {"sync_id": "x"}),
        "sources[1].labels: label name 'sync_id' is reserved by the exporter",
    ),
    "sync id listed twice": (
        _set("sources.2.syncs", ["j1", "j1"]),
        "sources[2].syncs[1].id: sync id 'j1' is listed twice",
    ),
    "no connection token": (
        _set("sources.2.auth.connection_token", _DELETE),
        "sources[2].auth.connection_token: is required to read the configured sync job ids",
    ),
    "label_from on a static label": (
        _set("sources.2.label_from", {"team": "metadata.team"}),
        "sources[2].label_from: label name 'team' is already used by a static label",
    ),
    "bad interval": (
        _set("sources.2.sync_interval", "0s"),
        "sources[2].sync_interval: Input should be greater than 0",
    ),
    "sync without its user": (
        _set("sources.3.syncs", [{"id": "y1"}]),
        "sources[3].syncs[0].user: is required with minted tokens",
    ),
    "bad header name": (
        _set("sources.3.headers", {"bad name": "x"}),
        "sources[3].headers: invalid HTTP header name 'bad name'",
    ),
    "shard out of range": (
        _set("collector.shard", 2),
        "collector.shard: must be below total_shards (2 >= 2)",
    ),
    "bad timeout": (
        _set("collector.request_timeout", "never"),
        "collector.request_timeout: not a duration: 'never'",
    ),
    "bad address": (
        _set("web.listen_address", "nowhere"),
        "web.listen_address: invalid listen address 'nowhere'",
    ),
    "bad level": (_set("log.level", "loud"), "log.level: Input should be 'debug'"),
}


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("key") / "signing-key.pem"
    path.write_text(signing_key_pem())
    return str(path)


def with_problems(key_file: str, names: list[str]) -> str:
    config = copy.deepcopy(base_config(key_file))
    for name in names:
        PROBLEMS[name][0](config)
    return yaml.safe_dump(config, sort_keys=False)


def reported(text: str) -> list[str]:
    try:
        parse_config(text, "many.yml")
    except ConfigError as exc:
        return str(exc).splitlines()
    return []


def assert_reports_exactly(lines: list[str], names: list[str], origin: str) -> None:
    expected = [f"{origin}: {PROBLEMS[name][1]}" for name in names]
    for line in expected:
        assert any(found.startswith(line) for found in lines), f"missing {line!r} in {lines}"
    assert len(lines) == len(expected), lines


def test_the_base_config_is_valid(key_file: str) -> None:
    assert reported(with_problems(key_file, [])) == []


@settings(max_examples=60, deadline=None)
@given(st.sets(st.sampled_from(sorted(PROBLEMS)), min_size=1))
def test_any_set_of_independent_problems_is_reported_in_one_pass(
    key_file: str, chosen: set[str]
) -> None:
    names = sorted(chosen)
    assert_reports_exactly(reported(with_problems(key_file, names)), names, "many.yml")


def test_the_command_reports_every_problem_at_once_and_nothing_after(
    key_file: str, tmp_path: Path
) -> None:
    path = tmp_path / "many.yml"
    path.write_text(with_problems(key_file, sorted(PROBLEMS)))
    result = run_exporter("--config.file", str(path), "--config.check")
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0] == "sync-status-exporter: invalid configuration"
    assert_reports_exactly(lines[1:], sorted(PROBLEMS), str(path))
    assert "Traceback" not in result.stderr
    # Problems come in the file's order: sources by index, then collector, web, log.
    order = [line.split(": ")[1].split(".")[0].split("[")[0] for line in lines[1:]]
    assert order == sorted(order, key=["sources", "collector", "web", "log"].index)
    path.write_text(with_problems(key_file, []))
    result = run_exporter("--config.file", str(path), "--config.check")
    assert result.returncode == 0, result.stderr


TYPOS = {
    "a source's key": ("sources.0.sycs", ["x"], "sources[0].sycs", "syncs"),
    "a sync's key": ("sources.0.syncs", [{"id": "x", "stale_afer": "1h"}], None, "stale_after"),
    "a paragon source's own key": ("sources.1.usres", ["u2"], "sources[1].usres", "users"),
    "a paragon auth key": (
        "sources.1.auth.project",
        "p",
        "sources[1].auth.project",
        "project_id",
    ),
    "a terminal source's own key": (
        "sources.2.conections",
        {"tag": "x"},
        "sources[2].conections",
        "connections",
    ),
    "a terminal filter's key": (
        "sources.2.connections",
        {"stauts": "connected"},
        "sources[2].connections.stauts",
        "status",
    ),
    "a collector key": (
        "collector.request_timout",
        "5s",
        "collector.request_timout",
        "request_timeout",
    ),
    "a top-level key": ("sourcse", [], "sourcse", "sources"),
}


@pytest.mark.parametrize("case", sorted(TYPOS))
def test_an_unknown_key_names_the_closest_field_of_its_model(key_file: str, case: str) -> None:
    where, value, path, suggestion = TYPOS[case]
    config = base_config(key_file)
    _set(where, value)(config)
    lines = reported(yaml.safe_dump(config))
    path = path or "sources[0].syncs[0].stale_afer"
    assert lines == [
        f"many.yml: {path}: Extra inputs are not permitted (did you mean {suggestion!r}?)"
    ]


def test_no_suggestion_when_nothing_is_close(key_file: str) -> None:
    config = base_config(key_file)
    config["sources"][2]["users"] = ["u"]  # a Paragon key on a Terminal source
    config["log"]["colour"] = "on"
    assert reported(yaml.safe_dump(config)) == [
        "many.yml: sources[2].users: Extra inputs are not permitted",
        "many.yml: log.colour: Extra inputs are not permitted",
    ]


def test_unset_variables_come_with_the_other_problems_but_not_their_consequences(
    key_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSE_UNSET_TOKEN", raising=False)
    monkeypatch.delenv("SSE_UNSET_SHARD", raising=False)
    config = base_config(key_file)
    config["sources"][0]["auth"] = {"token": "${SSE_UNSET_TOKEN}"}
    config["sources"][0]["stale_after"] = "soon"
    config["collector"]["shard"] = "${SSE_UNSET_SHARD}"
    assert reported(yaml.safe_dump(config, sort_keys=False)) == [
        "many.yml: sources[0].auth.token: environment variable SSE_UNSET_TOKEN is not set",
        "many.yml: sources[0].stale_after: not a duration: 'soon' (use e.g. 500ms, 10s, 5m, 1h)",
        "many.yml: collector.shard: environment variable SSE_UNSET_SHARD is not set",
    ]


def test_flags_are_checked_with_the_file_in_one_pass(key_file: str, tmp_path: Path) -> None:
    config = base_config(key_file)
    config["sources"][0]["stale_after"] = "soon"
    config["log"]["level"] = "loud"  # wrong in the file, even though the flag replaces it
    path = tmp_path / "flags.yml"
    path.write_text(yaml.safe_dump(config))
    result = run_exporter(
        "--config.file", str(path), "--config.check",
        "--collector.shard", "5", "--log.level", "debug",
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.splitlines()[1:] == [
        f"{path}: sources[0].stale_after: not a duration: 'soon' (use e.g. 500ms, 10s, 5m, 1h)",
        "flag --collector.shard: must be below total_shards (5 >= 2)",
        f"{path}: log.level: Input should be 'debug', 'info', 'warn' or 'error'",
    ]


def test_a_flag_that_clashes_with_the_file_is_reported_and_good_flags_apply(
    key_file: str, tmp_path: Path
) -> None:
    path = tmp_path / "flags.yml"
    path.write_text(yaml.safe_dump(base_config(key_file)))  # shard 1 of 2
    result = run_exporter(
        "--config.file", str(path), "--config.check", "--collector.total-shards", "1"
    )
    assert result.returncode == 1
    assert result.stderr.splitlines()[1:] == [
        f"{path}: collector.shard: must be below total_shards (1 >= 1) (with the flags given)"
    ]
    config = load_config(path, {("collector", "total_shards"): ("--collector.total-shards", 4)})
    assert (config.collector.shard, config.collector.total_shards) == (1, 4)
    assert config.sources[0].name == "s-a"
