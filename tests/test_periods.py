"""A lifecycle period of zero, under a second or not a duration is refused by both commands
with what is wrong with it; a zero duration flag is "not positive", not "not a duration"."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

COMMANDS = {
    "demo": [sys.executable, "-m", "exporter", "demo"],
    "simulator": [sys.executable, "-m", "exporter.simulator", "--print-config"],
}
REFUSED = {
    "0s": "must be positive: '0s'",
    "0": "must be positive: '0'",
    "-5": "must be positive: '-5'",
    "500ms": "must be at least 1s: '500ms'",
    "0.5": "must be at least 1s: '0.5'",
    "soon": "not a duration: 'soon'",
    "inf": "not a duration: 'inf'",
    "nan": "not a duration: 'nan'",
}


def run(command: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("period", sorted(REFUSED))
def test_bad_periods_are_refused_saying_why(command: str, period: str) -> None:
    result = run(COMMANDS[command], f"--period={period}")
    assert result.returncode == 2
    assert f"argument --period: {REFUSED[period]}" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("period", ["1s", "1", "90", "2m"])
def test_the_simulator_takes_seconds_or_a_duration_from_one_second(period: str) -> None:
    result = run(COMMANDS["simulator"], "--period", period)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("sources:")


def test_a_zero_duration_flag_is_not_positive_rather_than_not_a_duration(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text("sources: [{name: a, provider: sequin, auth: {token: t}, syncs: [x]}]")
    for value, problem in (("0s", "must be positive: '0s'"), ("later", "not a duration: 'later'")):
        result = run(
            [sys.executable, "-m", "exporter"],
            "--config.file", str(config), "--config.check", "--web.read-header-timeout", value,
        )  # fmt: skip
        assert result.returncode == 2
        assert f"argument --web.read-header-timeout: {problem}" in result.stderr
