"""Log lines: one per event, logfmt or JSON, level selectable, never a secret."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.procs import run_exporter


def once(config: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return run_exporter("--config.file", str(config), "--once", *flags)


def failing_config(tmp_path: Path, syncs: int = 2) -> Path:
    config = tmp_path / "config.yml"
    ids = ", ".join(f"s{n:04d}" for n in range(syncs))
    config.write_text(
        "sources: [{name: down, provider: sequin, base_url: 'http://127.0.0.1:1',"
        f" auth: {{token: log-secret-token}}, syncs: [{ids}]}}]"
    )
    return config


def test_json_lines(tmp_path: Path) -> None:
    result = once(failing_config(tmp_path), "--log.format", "json")
    (line,) = [json.loads(line) for line in result.stderr.splitlines()]
    assert line["level"] == "warn"
    assert line["msg"] == "cannot read sync status"
    assert line["source"] == "down" and line["reason"] == "connect"
    assert line["syncs"] == 2 and line["example"] in ("s0000", "s0001")
    assert line["ts"].endswith("Z")
    assert "log-secret-token" not in result.stderr


def test_one_line_per_source_and_reason_however_many_syncs_fail(tmp_path: Path) -> None:
    result = once(failing_config(tmp_path, syncs=1000))
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines[:5]
    assert " level=warn " in lines[0] and 'msg="cannot read sync status"' in lines[0]
    assert " source=down " in lines[0] and " reason=connect " in lines[0]
    assert " syncs=1000 " in lines[0]
    debug = once(failing_config(tmp_path, syncs=3), "--log.level", "debug").stderr.splitlines()
    per_sync = [line for line in debug if " level=debug " in line and "sync_id=" in line]
    assert len(per_sync) == 3
    quiet = once(failing_config(tmp_path), "--log.level", "error")
    assert quiet.stderr == ""
