"""`/probe`: one source (or one sync) per scrape, blackbox_exporter's way, over real HTTP, and the
README's scrape config for it checked by promtool and run by a real Prometheus."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from exporter.simulator.providers.fivetran import demo_connections
from exporter.simulator.providers.generic import demo_pipelines
from tests.conftest import Sim
from tests.exposition import Exposition
from tests.procs import exporter_command, free_port, running
from tests.snippets import yaml_blocks
from tests.tools import ROOT, require

TIMEOUT_HEADER = "X-Prometheus-Scrape-Timeout-Seconds"


@pytest.fixture(scope="module")
def exporter(sim: Sim, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo's generic sources; Fivetran's is read only through /probe."""
    config = sim.http.get("/_sim/config").json()
    config["sources"] = [s for s in config["sources"] if s["provider"] == "generic"]
    for source in config["sources"]:
        if source["name"] == "demo-fivetran":
            source["probe_only"] = True
        if source["name"] == "demo-generic":
            # The catalogue's pipelines only: other tests add failing ones to the simulator.
            source["discover"] = False
            source["syncs"] = [pipeline.id for pipeline in demo_pipelines()]
    directory = tmp_path_factory.mktemp("probe")
    path = directory / "config.yml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(exporter_command(path, port), f"{url}/-/ready", log=directory / "log"):
        yield url


def probe(url: str, timeout: str = "10", **params: str) -> httpx.Response:
    return httpx.get(f"{url}/probe", params=params, headers={TIMEOUT_HEADER: timeout}, timeout=30)


def test_a_probe_answers_one_source_and_its_success(exporter: str) -> None:
    response = probe(exporter, source="demo-generic")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    m = Exposition(response.text)
    up = m.find("sync_up")
    assert len(up) == 6 and all(labels["source"] == "demo-generic" for labels, _ in up)
    assert all(value == 1 for _, value in up)
    assert m.value("probe_success") == 1
    assert 0 < m.value("probe_duration_seconds") < 10
    assert m.types["probe_success"] == "gauge"
    assert not [name for name, _, _ in m.samples if name.startswith("sync_exporter_")]


def test_a_probe_of_one_sync_reads_only_that_sync(sim: Sim, exporter: str) -> None:
    sim.reset_requests()
    m = Exposition(probe(exporter, source="demo-generic", sync="pl_sparse").text)
    assert [labels["sync_id"] for labels, _ in m.find("sync_up")] == ["pl_sparse"]
    assert m.state(sync_id="pl_sparse") == "idle"
    assert m.value("probe_success") == 1
    assert sim.requests() == {"/generic/v2/pipelines/pl_sparse": 1}


def test_concurrent_probes_of_syncs_of_a_list_only_source_share_a_listing(
    sim: Sim, exporter: str
) -> None:
    """Fivetran's list answers every connection: probes of several connections at once must
    not each list (one after another, behind a lock), only those asked after a listing
    began may need another."""
    ids = [connection.id for connection in demo_connections()]

    async def probe_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as client:
            asked = (
                client.get(
                    f"{exporter}/probe",
                    params={"source": "demo-fivetran", "sync": sync_id},
                    headers={TIMEOUT_HEADER: "20"},
                )
                for sync_id in ids
            )
            return list(await asyncio.gather(*asked))

    fault = sim.http.put("/_sim/faults/fivetran", json={"delay": 0.5})
    assert fault.status_code == 200, fault.text
    try:
        sim.reset_requests()
        responses = asyncio.run(probe_all())
    finally:
        sim.http.delete("/_sim/faults/fivetran")
    for sync_id, response in zip(ids, responses, strict=True):
        m = Exposition(response.text)
        assert m.value("probe_success") == 1, sync_id
        assert [labels["sync_id"] for labels, _ in m.find("sync_up")] == [sync_id]
    listings = sim.requests()["/fivetran/v1/connections"]
    assert 1 <= listings <= 2 < len(ids)


def test_a_sync_that_cannot_be_read_fails_the_probe_not_the_request(
    sim: Sim, exporter: str
) -> None:
    sim.fault("generic", "pl_archive", {"status": 500})
    try:
        response = probe(exporter, source="demo-generic")
    finally:
        sim.clear_fault("generic", "pl_archive")
    assert response.status_code == 200
    m = Exposition(response.text)
    assert m.value("sync_up", sync_id="pl_archive") == 0
    assert m.value("sync_up", sync_id="pl_crm") == 1
    assert m.value("probe_success") == 0


def test_the_probe_keeps_the_scrapes_deadline(sim: Sim, exporter: str) -> None:
    sim.fault("generic", "pl_legacy", {"delay": 5.0})
    try:
        started = time.monotonic()
        m = Exposition(probe(exporter, "2", source="demo-generic", sync="pl_legacy").text)
        took = time.monotonic() - started
    finally:
        sim.clear_fault("generic", "pl_legacy")
    assert took < 3.0, f"answered after {took:.1f}s, past its 2s scrape timeout"
    assert m.value("sync_up", sync_id="pl_legacy") == 0
    assert m.value("probe_success") == 0


def test_probe_only_sources_are_left_out_of_metrics(exporter: str) -> None:
    metrics = Exposition(httpx.get(f"{exporter}/metrics", timeout=30).text)
    sources = {labels["source"] for labels, _ in metrics.find("sync_up")}
    assert "demo-fivetran" not in sources and "demo-generic" in sources
    assert metrics.has("sync_exporter_build_info") and not metrics.has("probe_success")
    probed = Exposition(probe(exporter, source="demo-fivetran").text)
    assert len(probed.find("sync_up", source="demo-fivetran")) >= 6
    assert probed.value("probe_success") == 1


def test_a_probe_is_compressed_for_prometheus(exporter: str) -> None:
    response = httpx.get(
        f"{exporter}/probe",
        params={"source": "demo-nango"},
        headers={"Accept-Encoding": "gzip"},
        timeout=30,
    )
    assert response.headers["Content-Encoding"] == "gzip"
    assert Exposition(response.text).value("probe_success") == 1


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("source=acme", "unknown source 'acme' (configured: demo-generic, demo-fivetran,"),
        (
            "source=demo-generic&sync=pl_nope",
            "source 'demo-generic' has no sync 'pl_nope' (neither configured nor listed",
        ),
        ("source=demo-generic&sync=../../x", "source 'demo-generic' has no sync '../../x'"),
        ("", "the source parameter is required: /probe?source=NAME[&sync=ID]"),
        ("target=http://127.0.0.1:1/&module=x", "unknown parameter 'module': /probe takes"),
        ("source=demo-generic&source=demo-nango", "source and sync may each be given once"),
        ("source=http://evil.example/", "unknown source 'http://evil.example/'"),
    ],
)
def test_anything_but_a_configured_source_or_sync_is_refused(
    sim: Sim, exporter: str, query: str, message: str
) -> None:
    sim.reset_requests()
    response = httpx.get(f"{exporter}/probe?{query}", timeout=10)
    assert response.status_code == 400
    assert response.text.startswith(message), response.text
    assert sim.requests() == {}, "a refused probe asks no provider anything"


# --- the README's scrape config ---------------------------------------------------------------


def readme_probe_job() -> dict[str, Any]:
    (job,) = [
        job
        for block in yaml_blocks(ROOT / "README.md")
        if isinstance(block, dict)
        for job in block.get("scrape_configs", [])
        if job.get("metrics_path") == "/probe"
    ]
    return dict(job)


def test_the_readme_probe_config_passes_promtool(tmp_path: Path) -> None:
    promtool = require("promtool")
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({"scrape_configs": [readme_probe_job()]}))
    result = subprocess.run(
        [promtool, "check", "config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_scrapes_each_source_as_its_own_target(exporter: str, tmp_path: Path) -> None:
    """The README's relabelling, run by Prometheus: the source is the target's instance, the
    job is the one the rules and dashboards select, and each probe reads only its source."""
    prometheus = require("prometheus")
    job = readme_probe_job()
    job.update(scrape_interval="1s", scrape_timeout="1s")
    job["static_configs"] = [{"targets": ["demo-fivetran", "demo-airbyte"]}]
    address = exporter.removeprefix("http://")
    for rule in job["relabel_configs"]:
        if rule.get("target_label") == "__address__":
            rule["replacement"] = address
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({"scrape_configs": [job]}))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        prometheus,
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with running(command, f"{url}/-/ready", log=tmp_path / "prometheus.log"):
        deadline = time.monotonic() + 30
        found: list[dict[str, Any]] = []
        while time.monotonic() < deadline and len(found) < 2:
            answer = httpx.get(
                f"{url}/api/v1/query", params={"query": "probe_success == 1"}, timeout=10
            ).json()
            found = answer["data"]["result"]
            time.sleep(0.5)
        assert {(r["metric"]["job"], r["metric"]["instance"]) for r in found} == {
            ("sync-status-exporter", "demo-fivetran"),
            ("sync-status-exporter", "demo-airbyte"),
        }
        series = httpx.get(
            f"{url}/api/v1/query",
            params={"query": 'count by (instance, source) (sync_up{job="sync-status-exporter"})'},
            timeout=10,
        ).json()["data"]["result"]
        assert {(r["metric"]["instance"], r["metric"]["source"]) for r in series} == {
            ("demo-fivetran", "demo-fivetran"),
            ("demo-airbyte", "demo-airbyte"),
        }
