"""`discover: true`: a source reads every sync its provider lists, plus the configured ones."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import Sim
from tests.exposition import Exposition
from tests.procs import run_exporter

BASE = {"paragon": "paragon", "terminal": "terminal/tsp/v1", "sequin": "sequin"}


def auth(sim: Sim, provider: str, directory: Path) -> str:
    if provider == "paragon":
        return sim.paragon_auth()
    if provider == "terminal":
        return "{token: sim-terminal-secret}"
    return "{token: sim-sequin-key}"


def once(sim: Sim, path: Path, provider: str, extra: str = "") -> subprocess.CompletedProcess[str]:
    path.write_text(
        f"sources: [{{name: found, provider: {provider}, base_url: '{sim.base}/{BASE[provider]}',"
        f" auth: {auth(sim, provider, path.parent)}, discover: true{extra}}}]\n"
    )
    result = run_exporter("--config.file", str(path), "--once")
    assert result.returncode == 0, result.stderr
    return result


def test_every_listed_sync_is_read(sim: Sim, workdir: Path) -> None:
    users = sim.paragon()["users"]
    everyone = ", ".join(users)
    m = Exposition(once(sim, workdir / "paragon.yml", "paragon", f", users: [{everyone}]").stdout)
    read = {(labels["user"], labels["sync_id"]) for labels, _ in m.find("sync_up", source="found")}
    assert read == {(user, sync_id) for user, ids in users.items() for sync_id in ids}
    assert len(read) >= 5
    m = Exposition(once(sim, workdir / "sequin.yml", "sequin").stdout)
    read_ids = {labels["sync_id"] for labels, _ in m.find("sync_up", source="found")}
    assert read_ids == set(sim.http.get("/_sim/syncs").json()["sequin"])
    assert m.value("sync_exporter_syncs_configured", source="found") == len(read_ids)


def test_terminal_connection_pages_are_followed(sim: Sim, workdir: Path) -> None:
    for n in range(130):
        sim.connection(f"conn_page_{n:03d}", company=f"Fleet {n}", tags=["paged"])
    sim.reset_requests()
    m = Exposition(once(sim, workdir / "t.yml", "terminal", ", connections: {tag: paged}").stdout)
    read = {labels["sync_id"] for labels, _ in m.find("sync_up", source="found")}
    assert read == {f"conn_page_{n:03d}" for n in range(130)}
    pages = sum(n for path, n in sim.requests().items() if path.endswith("/tsp/v1/connections"))
    assert pages == 2


def test_configured_syncs_keep_their_labels_and_survive_a_failed_listing(
    sim: Sim, workdir: Path
) -> None:
    sim.create("sequin", "kept-1", {"status": "disabled"})
    extra = ", syncs: [{id: kept-1, labels: {team: data}}]"
    m = Exposition(once(sim, workdir / "s.yml", "sequin", extra).stdout)
    assert len(m.find("sync_up", sync_id="kept-1")) == 1
    assert m.value("sync_up", sync_id="kept-1", team="data") == 1
    # The first request of a run is the listing: make it fail once.
    sim.http.put("/_sim/faults/sequin", json={"status": 500, "times": 1})
    failed = once(sim, workdir / "s.yml", "sequin", extra)
    m = Exposition(failed.stdout)
    assert [labels["sync_id"] for labels, _ in m.find("sync_up")] == ["kept-1"]
    assert m.value("sync_up", sync_id="kept-1") == 1
    assert m.value("sync_exporter_errors_total", source="found", reason="server_error") == 1
    assert "cannot list syncs, keeping the ones known" in failed.stderr
