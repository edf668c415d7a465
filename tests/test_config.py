"""Bad configs are refused by the real command with one clear message naming file and field."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from exporter.collect.collector import Collector
from exporter.config import ConfigError, load_config, parse_config
from exporter.exposition.metrics import RUN_FAMILIES, SYNC_FAMILIES
from exporter.providers import PROVIDER_FAMILIES, PROVIDERS
from tests.keys import signing_key_pem
from tests.procs import run_exporter

GOOD = """
sources:
  - name: acme-paragon
    provider: paragon
    auth: {token: "${SSE_TEST_TOKEN}"}
    labels: {tenant: acme}
    syncs:
      - id: 8f2c
        labels: {team: data}
        stale_after: 2h
      - 91ab
  - name: acme-terminal
    provider: terminal
    base_url: https://api.withterminal.com/tsp/v1
    auth: {token: "tsk", connection_token_file: "{conn_file}"}
    syncs: [sync_01GV12VR4DJP70GD1ZBK0SDWFH]
  - name: acme-sequin
    provider: sequin
    auth: {token_file: "{token_file}"}
    syncs: [c906b4a4-0cda-4f46-bd80-255f570c195d]
collector:
  request_timeout: 2s
  max_concurrency: 7
"""


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_exporter(*args, env=env)


@pytest.fixture
def secret_files(tmp_path: Path) -> dict[str, str]:
    conn = tmp_path / "conn"
    conn.write_text("con_tkn_filesecret\n")
    token = tmp_path / "sequin"
    token.write_text("sequin-file-secret\n")
    return {"conn_file": str(conn), "token_file": str(token)}


def good_text(files: dict[str, str]) -> str:
    return GOOD.replace("{conn_file}", files["conn_file"]).replace(
        "{token_file}", files["token_file"]
    )


def test_good_config_loads_with_defaults_and_secrets(
    secret_files: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSE_TEST_TOKEN", "paragon-env-secret")
    config = parse_config(good_text(secret_files), "good.yml")
    paragon, terminal, sequin = config.sources
    adapters = [source.adapter for source in Collector(config).sources]
    assert adapters[0].base_url == "https://sync.useparagon.com"
    assert adapters[2].base_url == "https://api.sequin.io"
    assert paragon.auth.token.get_secret_value() == "paragon-env-secret"
    assert terminal.auth.connection_token.get_secret_value() == "con_tkn_filesecret"
    assert sequin.auth.bearer() == "sequin-file-secret"
    assert [s.id for s in paragon.syncs] == ["8f2c", "91ab"]
    assert paragon.syncs[0].stale_after == 7200
    assert config.collector.request_timeout == 2
    assert config.collector.max_concurrency == 7
    assert config.web.listen_address == ":9869"
    shown = repr(config) + str(config)
    for secret in ("paragon-env-secret", "con_tkn_filesecret", "sequin-file-secret", "tsk"):
        assert secret not in shown


def test_config_check_accepts_a_good_file(secret_files: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "good.yml"
    path.write_text(good_text(secret_files))
    result = run_cli("--config.file", str(path), "--config.check", env={"SSE_TEST_TOKEN": "x"})
    assert result.returncode == 0, result.stderr
    assert "valid, 3 sources, 4 syncs" in result.stdout


BAD_CASES = {
    "unknown provider": (
        "sources: [{name: a, provider: zapier, auth: {token: t}, syncs: [x]}]",
        "sources[0].provider: unknown provider 'zapier' "
        "(known: generic, paragon, sequin, terminal)",
    ),
    "missing field": (
        "sources: [{name: a, provider: paragon, syncs: [x]}]",
        "sources[0].auth: Field required",
    ),
    "missing token": (
        "sources: [{name: a, provider: sequin, auth: {}, syncs: [x]}]",
        "sources[0].auth: token or token_file is required",
    ),
    "missing provider": (
        "sources: [{name: a, auth: {token: t}, syncs: [x]}]",
        "sources[0].provider: is required (one of: generic, paragon, sequin, terminal)",
    ),
    "duplicate source name": (
        "sources: [{name: a, provider: paragon, auth: {token: t}, syncs: [x]},"
        " {name: a, provider: sequin, auth: {token: t}, syncs: [y]}]",
        "sources[1].name: source name 'a' is used twice",
    ),
    "unset variable": (
        "sources: [{name: a, provider: paragon, auth: {token: '${SSE_SURELY_UNSET}'}, syncs: [x]}]",
        "sources[0].auth.token: environment variable SSE_SURELY_UNSET is not set",
    ),
    "unreadable token file": (
        "sources: [{name: a, provider: sequin, auth: {token_file: /nonexistent/key}, syncs: [x]}]",
        "sources[0].auth: cannot read token_file '/nonexistent/key': No such file or directory",
    ),
    "empty token": (
        "sources: [{name: a, provider: paragon, auth: {token: '${SSE_EMPTY}'}, syncs: [x]}]",
        "sources[0].auth: token is empty",
    ),
    "terminal jobs without connection token": (
        "sources: [{name: a, provider: terminal, auth: {token: t}, syncs: [x]}]",
        "sources[0].auth.connection_token: is required to read the configured sync job ids",
    ),
    "nothing to read": (
        "sources: [{name: a, provider: sequin, auth: {token: t}}]",
        "sources[0].syncs: no syncs and discover is false: nothing to read",
    ),
    "paragon users without minting": (
        "sources: [{name: a, provider: paragon, auth: {token: t}, users: [u1], discover: true}]",
        "sources[0].users: needs tokens minted per user: set auth.signing_key(_file)",
    ),
    "paragon sync user without minting": (
        "sources: [{name: a, provider: paragon, auth: {token: t}, syncs: [{id: x, user: u}]}]",
        "sources[0].syncs[0].user: needs tokens minted per user (auth.signing_key)",
    ),
    "paragon key that is not a key": (
        "sources: [{name: a, provider: paragon, auth: {signing_key: not-a-pem-k3y,"
        " project_id: p}, users: [u], discover: true}]",
        "sources[0].auth.signing_key: signing_key is not an unencrypted private key in PEM form",
    ),
    "bad label_from path": (
        "sources: [{name: a, provider: sequin, auth: {token: t}, discover: true,"
        " label_from: {tenant: 'metadata.[oops'}}]",
        "sources[0].label_from.tenant: not a JMESPath expression: 'metadata.[oops'",
    ),
    "label_from on a static label": (
        "sources: [{name: a, provider: sequin, auth: {token: t}, discover: true,"
        " labels: {tenant: x}, label_from: {tenant: metadata.tenant}}]",
        "sources[0].label_from: label name 'tenant' is already used",
    ),
    "sync id that is a path segment": (
        "sources: [{name: a, provider: sequin, auth: {token: t}, syncs: ['..']}]",
        "sources[0].syncs[0].id: sync id must not be '.', '..' or contain '/'",
    ),
    "le label": (
        "sources: [{name: a, provider: sequin, auth: {token: t}, labels: {le: x}, syncs: [x]}]",
        "sources[0].labels: label name 'le' is reserved by the exporter",
    ),
    "unknown key": (
        "sources: [{name: a, provider: paragon, auth: {token: t}, syncs: [x], tags: {}}]",
        "sources[0].tags: Extra inputs are not permitted",
    ),
    "bad duration": (
        "sources: [{name: a, provider: paragon, auth: {token: t}, syncs: [x]}]\n"
        "collector: {request_timeout: soon}",
        "collector.request_timeout: not a duration: 'soon'",
    ),
    "reserved label": (
        "sources: [{name: a, provider: paragon, auth: {token: t}, labels: {sync_id: x},"
        " syncs: [x]}]",
        "sources[0].labels: label name 'sync_id' is reserved by the exporter",
    ),
    "duplicate sync": (
        "sources: [{name: a, provider: paragon, auth: {token: t}, syncs: [x, {id: x}]}]",
        "sources[0].syncs[1].id: sync id 'x' is listed twice",
    ),
    "invalid yaml": (
        "sources: [{name: a, provider: paragon",
        # libyaml's wording and position (the end of the text, where the '}' was due)
        "not valid YAML (line 2, column 1): did not find expected ',' or '}'",
    ),
    "not a mapping": ("- just\n- a list", "the top level must be a mapping"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_config_is_refused_with_file_and_field(case: str, tmp_path: Path) -> None:
    text, expected = BAD_CASES[case]
    path = tmp_path / "bad.yml"
    path.write_text(text)
    for extra in (["--config.check"], ["--once"], []):
        result = run_cli("--config.file", str(path), *extra, env={"SSE_EMPTY": ""})
        assert result.returncode == 1
        assert f"{path}: {expected}" in result.stderr
        assert "Traceback" not in result.stderr
        assert result.stdout == ""


# Labels a family writes after a sync's label set: a user label of the same name would
# write one name twice in a sample line, which Prometheus refuses.
FAMILY_LABELS = sorted(
    {label for f in (*SYNC_FAMILIES, *RUN_FAMILIES, *PROVIDER_FAMILIES) for label in f.labels}
    | {label for adapter in PROVIDERS.values() for label in adapter.info_labels}
)


@pytest.mark.parametrize("name", FAMILY_LABELS)
def test_no_user_label_can_take_a_familys_own_label_name(name: str) -> None:
    assert {"state", "status", "reason", "outcome", "name", "job_id"} <= set(FAMILY_LABELS)
    source = "{name: a, provider: sequin, auth: {token: t}"
    for place, text in (
        ("labels", f"sources: [{source}, labels: {{{name}: x}}, syncs: [x]}}]"),
        ("syncs[0].labels", f"sources: [{source}, syncs: [{{id: x, labels: {{{name}: x}}}}]}}]"),
        ("label_from", f"sources: [{source}, label_from: {{{name}: a.b}}, syncs: [x]}}]"),
    ):
        with pytest.raises(ConfigError) as refused:
            parse_config(text, "c.yml")
        assert f"sources[0].{place}: label name {name!r} is reserved" in str(refused.value)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            'auth: {token: t}, labels: {"team\\n": x}',
            "sources[0].labels: invalid label name 'team\\n'",
        ),
        ('auth: {token: t}, headers: {"X-Key\\n": v}', "invalid HTTP header name 'X-Key\\n'"),
        ('auth: {token: "one\\n"}', "sources[0].auth: token contains spaces, line breaks"),
    ],
)
def test_a_trailing_line_break_is_refused_like_any_other(fields: str, expected: str) -> None:
    """A `$`-anchored pattern also matches just before a final newline: these once passed."""
    text = f"sources: [{{name: a, provider: sequin, {fields}, syncs: [x]}}]"
    with pytest.raises(ConfigError) as refused:
        parse_config(text, "c.yml")
    assert expected in str(refused.value)


def test_a_sync_id_with_a_trailing_line_break_is_refused() -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config(
            'sources: [{name: a, provider: sequin, auth: {token: t}, syncs: ["x\\n"]}]', "c"
        )
    assert "sources[0].syncs[0]" in str(refused.value)
    assert "must not contain spaces or control characters" in str(refused.value)


@pytest.mark.parametrize("url", ["https://api.example/v1 x", "https://api.example\\n", "ftp://x"])
def test_a_base_url_is_one_http_url_and_nothing_after_it(url: str) -> None:
    source = f'name: a, provider: sequin, base_url: "{url}", auth: {{token: t}}, syncs: [x]'
    text = f"sources: [{{{source}}}]"
    with pytest.raises(ConfigError) as refused:
        parse_config(text, "c.yml")
    assert "sources[0].base_url: base_url must be an http:// or https:// URL" in str(refused.value)


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    result = run_cli("--config.file", str(tmp_path / "absent.yml"), "--config.check")
    assert result.returncode == 1
    assert f"{tmp_path / 'absent.yml'}: cannot read config file: No such file" in result.stderr


def test_secret_values_never_appear_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.yml"
    path.write_text(
        "sources: [{name: a, provider: paragon, auth: {token: sup3rs3cret, token_file: /x},"
        " syncs: [x]}]"
    )
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert "sup3rs3cret" not in str(error.value)
    assert "set either token or token_file, not both" in str(error.value)


def test_bad_flag_value_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ok.yml"
    path.write_text("sources: [{name: a, provider: paragon, auth: {token: t}, syncs: [x]}]")
    result = run_cli("--config.file", str(path), "--collector.request-timeout", "later")
    assert result.returncode == 2
    assert "not a duration: 'later'" in result.stderr
    result = run_cli("--config.file", str(path), "--web.listen-address", "nowhere")
    assert result.returncode == 2
    assert "invalid listen address 'nowhere'" in result.stderr


MORE_BAD_CASES = {
    "self-referencing alias": (
        "sources: &s [{name: a, provider: paragon, auth: {token: t}, syncs: *s}]",
        "sources[0].syncs: a YAML alias refers to itself",
    ),
    "alias bomb": (
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n"
            for i in range(6)
        )
        + "sources: [*g]",
        "more than 1000000 values (YAML aliases nested too deep?)",
    ),
    "bad listen address in file": (
        "sources: [{name: a, provider: paragon, auth: {token: t}, syncs: [x]}]\n"
        "web: {listen_address: localhost}",
        "web.listen_address: invalid listen address 'localhost', expected [host]:port",
    ),
    "token with a line break": (
        'sources: [{name: a, provider: paragon, auth: {token: "one\\ntwo"}, syncs: [x]}]',
        "sources[0].auth: token contains spaces, line breaks, control or non-ASCII characters",
    ),
    "boolean key": (
        "sources: [{name: a, provider: paragon, auth: {token: t}, labels: {on: x}, syncs: [x]}]",
        "sources[0].labels: key True is not a string; quote it",
    ),
    "numeric sync id": (
        "sources: [{name: a, provider: paragon, auth: {token: t}, syncs: [123]}]",
        "sources[0].syncs[0]: sync id 123 must be a string: quote it in YAML",
    ),
}


@pytest.mark.parametrize("case", sorted(MORE_BAD_CASES))
def test_hostile_configs_are_refused_cleanly(case: str, tmp_path: Path) -> None:
    text, expected = MORE_BAD_CASES[case]
    path = tmp_path / "bad.yml"
    path.write_text(text)
    result = run_cli("--config.file", str(path), "--config.check")
    assert result.returncode == 1
    assert f"{path}: {expected}" in result.stderr
    assert "Traceback" not in result.stderr


def test_token_files_that_are_too_big_or_not_files_are_refused(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_text("x" * 20000)
    path = tmp_path / "zero.yml"
    for token_file, problem in (
        (big, "is larger than 16384 bytes"),
        ("/dev/zero", "is not a regular file"),
    ):
        path.write_text(
            f"sources: [{{name: a, provider: sequin, auth: {{token_file: '{token_file}'}},"
            " syncs: [x]}]"
        )
        with pytest.raises(ConfigError, match=f"token_file '{token_file}' {problem}"):
            load_config(path)


def test_anchor_holders_and_many_problems(tmp_path: Path) -> None:
    config = parse_config(
        "x-auth: &auth {token: t}\n"
        "sources: [{name: a, provider: paragon, auth: *auth, syncs: [x]}]",
        "anchors.yml",
    )
    assert config.sources[0].auth.token.get_secret_value() == "t"
    many = "sources: [" + ", ".join(f"{{name: n{i}, provider: nope}}" for i in range(100)) + "]"
    with pytest.raises(ConfigError) as error:
        parse_config(many, "many.yml")
    lines = str(error.value).splitlines()
    assert len(lines) == 51
    assert lines[-1].startswith("many.yml: ... and ")


def test_flag_values_are_checked_with_the_flag_named(tmp_path: Path) -> None:
    path = tmp_path / "ok.yml"
    path.write_text("sources: [{name: a, provider: paragon, auth: {token: t}, syncs: [x]}]")
    result = run_cli("--config.file", str(path), "--collector.max-concurrency", "0")
    assert result.returncode == 2
    assert "--collector.max-concurrency: not a positive whole number: '0'" in result.stderr


def test_reprs_hide_every_secret(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text(signing_key_pem())
    config = parse_config(
        "sources: [{name: a, provider: terminal, auth: {token: tok-1, connection_token: con-2},"
        " headers: {Proxy-Authorization: hdr-3}, syncs: [x]},"
        f" {{name: b, provider: paragon, auth: {{signing_key_file: '{key}', project_id: p}},"
        " users: [u], discover: true}]",
        "repr.yml",
    )
    sources = Collector(config).sources
    shown = repr(config) + repr(sources) + repr([vars(s.adapter) for s in sources])
    for secret in ("tok-1", "con-2", "hdr-3", "PRIVATE KEY", key.read_text().splitlines()[1]):
        assert secret not in shown
