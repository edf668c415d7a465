"""`--once` prints the exposition and exits 0 whatever it says; `--once.fail-on-down` makes a
smoke check of it, exiting 3 when a sync could not be read or a listing failed."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Sim
from tests.exposition import Exposition
from tests.procs import run_exporter

DEAD = "http://127.0.0.1:1"  # nothing listens on port 1: every request is refused at once


def write(tmp_path: Path, sources: str) -> Path:
    path = tmp_path / "config.yml"
    path.write_text(f"sources:\n{sources}log: {{level: error}}\n")
    return path


def dead_source(name: str = "dead") -> str:
    return (
        f"  - {{name: {name}, provider: sequin, base_url: '{DEAD}', auth: {{token: t}},"
        " syncs: [a, 'we\"ird\\id']}\n"
    )


def sim_source(sim: Sim) -> str:
    return (
        f"  - {{name: live, provider: sequin, base_url: '{sim.base}/sequin',"
        " auth: {token: sim-sequin-key}, discover: true}\n"
    )


def up_values(stdout: str) -> list[float]:
    exposition = Exposition(stdout)
    return [value for _, value in exposition.find("sync_up")]


def test_once_exits_0_even_when_every_sync_is_down(tmp_path: Path) -> None:
    result = run_exporter("--config.file", str(write(tmp_path, dead_source())), "--once")
    assert result.returncode == 0, result.stderr
    assert up_values(result.stdout) == [0.0, 0.0]
    assert "down" not in result.stderr


def test_fail_on_down_exits_3_and_names_the_syncs_not_read(tmp_path: Path) -> None:
    config = write(tmp_path, dead_source())
    result = run_exporter("--config.file", str(config), "--once", "--once.fail-on-down")
    assert result.returncode == 3
    assert up_values(result.stdout) == [0.0, 0.0]
    assert result.stderr.splitlines() == [
        'sync-status-exporter: 2 of 2 syncs down: dead/a, dead/we"ird\\id'
    ]


def test_fail_on_down_names_down_syncs_whose_ids_hold_unicode_line_separators(
    tmp_path: Path,
) -> None:
    # U+2028 and U+2029 end a line for str.splitlines(), never for the exposition format.
    source = (
        f"  - {{name: dead, provider: sequin, base_url: '{DEAD}', auth: {{token: t}},"
        ' syncs: ["a\\u2028b", "c\\u2029d"]}\n'
    )
    result = run_exporter(
        "--config.file", str(write(tmp_path, source)), "--once", "--once.fail-on-down"
    )
    assert result.returncode == 3
    assert up_values(result.stdout) == [0.0, 0.0]
    assert result.stderr.split("\n") == [
        "sync-status-exporter: 2 of 2 syncs down: dead/a\u2028b, dead/c\u2029d",
        "",
    ]


def test_fail_on_down_exits_0_when_every_sync_is_read(sim: Sim, tmp_path: Path) -> None:
    config = write(tmp_path, sim_source(sim))
    result = run_exporter("--config.file", str(config), "--once", "--once.fail-on-down")
    assert result.returncode == 0, result.stderr
    values = up_values(result.stdout)
    assert len(values) >= 3 and set(values) == {1.0}
    assert result.stderr == ""


def test_fail_on_down_fails_when_any_one_sync_is_down(sim: Sim, tmp_path: Path) -> None:
    config = write(tmp_path, sim_source(sim) + dead_source())
    result = run_exporter("--config.file", str(config), "--once", "--once.fail-on-down")
    assert result.returncode == 3
    values = up_values(result.stdout)
    (line,) = result.stderr.splitlines()
    assert line == (f'sync-status-exporter: 2 of {len(values)} syncs down: dead/a, dead/we"ird\\id')


def test_fail_on_down_fails_when_a_listing_fails(sim: Sim, tmp_path: Path) -> None:
    listing = (
        f"  - {{name: unlisted, provider: sequin, base_url: '{DEAD}', auth: {{token: t}},"
        " discover: true}\n"
    )
    config = write(tmp_path, sim_source(sim) + listing)
    result = run_exporter("--config.file", str(config), "--once", "--once.fail-on-down")
    assert result.returncode == 3
    assert set(up_values(result.stdout)) == {1.0}
    assert result.stderr.splitlines() == [
        "sync-status-exporter: source unlisted: listing failed (connect)"
    ]


def test_fail_on_down_needs_once(tmp_path: Path) -> None:
    result = run_exporter(
        "--config.file", str(write(tmp_path, dead_source())), "--once.fail-on-down"
    )
    assert result.returncode == 2
    assert "--once.fail-on-down needs --once" in result.stderr
