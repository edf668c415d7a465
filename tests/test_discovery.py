"""`discover: true`: a source reads every sync its provider lists, plus the configured ones."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import Sim
from tests.exposition import Exposition
from tests.procs import run_exporter

AUTH = {
    "paragon": "{token: sim-paragon-token}",
    "terminal": "{token: sim-terminal-secret, connection_token: con_tkn_simulator}",
    "sequin": "{token: sim-sequin-key}",
}
BASE = {"paragon": "paragon", "terminal": "terminal/tsp/v1", "sequin": "sequin"}


def once(sim: Sim, path: Path, provider: str, extra: str = "") -> subprocess.CompletedProcess[str]:
    path.write_text(
        f"sources: [{{name: found, provider: {provider}, base_url: '{sim.base}/{BASE[provider]}',"
        f" auth: {AUTH[provider]}, discover: true{extra}}}]\n"
    )
    result = run_exporter("--config.file", str(path), "--once")
    assert result.returncode == 0, result.stderr
    return result


def listed(sim: Sim, provider: str) -> set[str]:
    ids: list[str] = sim.http.get("/_sim/syncs").json()[provider]
    return set(ids)


def test_every_listed_sync_is_read(sim: Sim, workdir: Path) -> None:
    for provider in ("paragon", "sequin"):
        m = Exposition(once(sim, workdir / f"{provider}.yml", provider).stdout)
        read = {labels["sync_id"] for labels, _ in m.find("sync_up", source="found")}
        assert read == listed(sim, provider)
        assert len(read) >= 5
        assert m.value("sync_exporter_syncs_configured", source="found") == len(read)


def test_terminal_pages_are_followed(sim: Sim, workdir: Path) -> None:
    for n in range(130):
        sync_id = f"sync_page_{n:03d}"
        sim.create(
            "terminal", sync_id, {"id": sync_id, "status": "completed", "requestedAt": "2021-01-06"}
        )
    sim.reset_requests()
    m = Exposition(once(sim, workdir / "t.yml", "terminal").stdout)
    read = {labels["sync_id"] for labels, _ in m.find("sync_up", source="found")}
    assert read == listed(sim, "terminal") and len(read) > 130
    pages = sum(n for path, n in sim.requests().items() if path.endswith("/tsp/v1/syncs"))
    assert pages == 2


def test_configured_syncs_keep_their_labels_and_survive_a_failed_listing(
    sim: Sim, workdir: Path
) -> None:
    sim.create("sequin", "kept-1", {"status": "disabled"})
    extra = ", syncs: [{id: kept-1, labels: {team: data}}]"
    m = Exposition(once(sim, workdir / "s.yml", "sequin", extra).stdout)
    assert len(m.find("sync_up", sync_id="kept-1")) == 1
    assert m.value("sync_up", sync_id="kept-1", team="data") == 1
    # The first request of a scrape is the listing: make it fail once.
    sim.http.put("/_sim/faults/sequin", json={"status": 500, "times": 1})
    failed = once(sim, workdir / "s.yml", "sequin", extra)
    m = Exposition(failed.stdout)
    assert [labels["sync_id"] for labels, _ in m.find("sync_up")] == ["kept-1"]
    assert m.value("sync_up", sync_id="kept-1") == 1
    assert m.value("sync_exporter_errors_total", source="found", reason="server_error") == 1
    assert "cannot list syncs, keeping the ones known" in failed.stderr
