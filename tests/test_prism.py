"""Terminal's official OpenAPI spec served by Stoplight Prism: an independent fake of Terminal.

Prism validates our requests against the spec (401 without the bearer token or a
Connection-Token of the documented form) and, with `Prefer: dynamic=true`, answers random
but schema-valid bodies, which the exporter must read without crashing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.procs import free_port, run_exporter, running
from tests.tools import ROOT, require, require_file

# Terminal's official spec is third-party text, so it is not in the repository: the test
# reads it from $SYNC_EXPORTER_TERMINAL_SPEC, else from a `shared/specs/` beside the clone.
SPEC_VARIABLE = "SYNC_EXPORTER_TERMINAL_SPEC"
SPEC_DEFAULT = ROOT.parent / "shared" / "specs" / "terminal-openapi.json"
SYNC = "sync_01GV12VR4DJP70GD1ZBK0SDWFH"
AUTH = {"Authorization": "Bearer sk_test", "Connection-Token": "con_tkn_prism"}


@pytest.fixture(scope="module")
def prism(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    spec = require_file("Terminal's OpenAPI spec", SPEC_VARIABLE, SPEC_DEFAULT)
    prism_bin = require("prism")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("prism") / "prism.log"
    command = [prism_bin, "mock", "-h", "127.0.0.1", "-p", str(port), str(spec)]
    with running(
        command,
        f"{base}/syncs/{SYNC}",
        timeout=90,
        log=log,
        env={"SCARF_ANALYTICS": "false", "DO_NOT_TRACK": "1"},
        ready_headers=AUTH,
    ):
        yield base


def once(tmp_path: Path, base: str, auth: str, headers: str = "{}") -> str:
    config = tmp_path / "prism.yml"
    config.write_text(
        f"""
sources:
  - name: prism-terminal
    provider: terminal
    base_url: {base}
    auth: {auth}
    headers: {headers}
    syncs: [{SYNC}, sync_01HZZZZZZZZZZZZZZZZZZZZZZZ]
"""
    )
    result = run_exporter("--config.file", str(config), "--once")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def sample(exposition: str, prefix: str) -> list[str]:
    return [line for line in exposition.splitlines() if line.startswith(prefix)]


def test_exporter_reads_prisms_documented_example(prism: str, tmp_path: Path) -> None:
    out = once(tmp_path, prism, "{token: sk_test, connection_token: con_tkn_prism}")
    up = sample(out, "sync_up{")
    assert len(up) == 2 and all(line.endswith(" 1.0") for line in up), up
    # The spec's example is status "requested", progress 85, one issue, one attempt.
    labels = f'provider="terminal",source="prism-terminal",sync_id="{SYNC}"'
    assert f'sync_state{{{labels},state="initializing"}} 1.0' in out
    assert f'sync_provider_status{{{labels},status="requested"}} 1.0' in out
    assert f"sync_progress_ratio{{{labels}}} 0.85" in out
    assert f"sync_issues{{{labels}}} 1.0" in out
    assert f"sync_attempts{{{labels}}} 1.0" in out
    assert f"sync_requested_timestamp_seconds{{{labels}}} 1.609903493e+09" in out


def test_prism_refuses_a_connection_token_of_the_wrong_form(prism: str, tmp_path: Path) -> None:
    # Prism answers 400 when Connection-Token does not match the spec's `^con_tkn_\S+$`.
    out = once(tmp_path, prism, "{token: sk_test, connection_token: not-a-con-token}")
    assert all(line.endswith(" 0.0") for line in sample(out, "sync_up{"))
    assert 'sync_exporter_upstream_requests_total{code="400",source="prism-terminal"} 2.0' in out
    errors = sample(out, 'sync_exporter_errors_total{reason="bad_response"')
    assert errors and all(line.endswith(" 2.0") for line in errors), errors


def test_dynamic_schema_valid_answers_never_crash(prism: str, tmp_path: Path) -> None:
    states_seen: set[str] = set()
    for _ in range(8):
        out = once(
            tmp_path,
            prism,
            "{token: sk_test, connection_token: con_tkn_prism}",
            headers="{Prefer: dynamic=true}",
        )
        up = sample(out, "sync_up{")
        assert len(up) == 2 and all(line.endswith(" 1.0") for line in up), up
        states = [line for line in sample(out, "sync_state{") if line.endswith(" 1.0")]
        assert len(states) == 2
        states_seen.update(line.split('state="')[1].split('"')[0] for line in states)
        for line in sample(out, "sync_progress_ratio{"):
            assert 0.0 <= float(line.rsplit(" ", 1)[1]) <= 1.0
    assert states_seen <= {"initializing", "active", "idle", "errored"}
    assert len(states_seen) >= 2


def test_listing_connections_from_prisms_example_is_refused_as_a_cursor_cycle(
    prism: str, tmp_path: Path
) -> None:
    """Prism answers every page of `GET /connections` with the spec's example, `next` cursor
    included, so the same cursor comes back forever: the listing fails cleanly instead of
    reading pages without end, and the configured job is still read."""
    config = tmp_path / "connections.yml"
    config.write_text(
        f"""
sources:
  - name: prism-terminal
    provider: terminal
    base_url: {prism}
    auth: {{token: sk_test, connection_token: con_tkn_prism}}
    discover: true
    syncs: [{SYNC}]
"""
    )
    result = run_exporter("--config.file", str(config), "--once")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "the list's next cursor repeats an earlier one" in result.stderr
    up = sample(result.stdout, "sync_up{")
    assert len(up) == 1 and up[0].endswith(" 1.0") and SYNC in up[0]
    # Two pages were asked for (the second repeated the first's cursor), both counted.
    requests = sample(result.stdout, 'sync_exporter_upstream_requests_total{code="200"')
    assert requests and float(requests[0].rsplit(" ", 1)[1]) == 3.0  # two pages and the job
    errors = sample(result.stdout, 'sync_exporter_errors_total{reason="bad_response"')
    assert errors and errors[0].endswith(" 1.0")
