"""Log lines: one per event, logfmt or JSON, level selectable, never a secret."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.procs import run_exporter


def once(config: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return run_exporter("--config.file", str(config), "--once", *flags)


def failing_config(tmp_path: Path) -> Path:
    config = tmp_path / "config.yml"
    config.write_text(
        "sources: [{name: down, provider: sequin, base_url: 'http://127.0.0.1:1',"
        " auth: {token: log-secret-token}, syncs: [a, b]}]"
    )
    return config


def test_json_lines(tmp_path: Path) -> None:
    result = once(failing_config(tmp_path), "--log.format", "json")
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert {line["sync_id"] for line in lines} == {"a", "b"}
    for line in lines:
        assert line["level"] == "warn"
        assert line["msg"] == "cannot read sync status"
        assert line["source"] == "down" and line["reason"] == "connect"
        assert line["ts"].endswith("Z")
    assert "log-secret-token" not in result.stderr


def test_logfmt_lines_and_level(tmp_path: Path) -> None:
    result = once(failing_config(tmp_path))
    lines = result.stderr.splitlines()
    assert len(lines) == 2
    assert all(" level=warn " in line and 'msg="cannot read sync status"' in line for line in lines)
    assert all(" source=down " in line and " reason=connect " in line for line in lines)
    quiet = once(failing_config(tmp_path), "--log.level", "error")
    assert quiet.stderr == ""
