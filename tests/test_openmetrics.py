"""OpenMetrics for scrapes that ask for it (Accept: application/openmetrics-text), the text
format otherwise: byte for byte what prometheus_client writes, parsed by its parsers and
promtool, and scraped by a real Prometheus."""

from __future__ import annotations

import contextlib
import gzip
import http.server
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as _parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

from exporter.exposition import metrics
from exporter.exposition.families import Selection
from exporter.exposition.render import header, render_syncs
from exporter.providers import PROVIDER_FAMILIES
from exporter.web.app import openmetrics_version
from tests.conftest import Sim, simulator_process
from tests.procs import exporter_command, free_port, running
from tests.test_render import ADAPTERS, NOW, POLICY, ReferenceCollector, results
from tests.tools import require

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
TEXT = "text/plain; version=0.0.4; charset=utf-8"
# What Prometheus 2.x sends by default.
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


def parse_openmetrics(text: str) -> list[Metric]:
    """prometheus_client's OpenMetrics parser, which refuses anything out of spec."""
    return list(_parse_openmetrics(text))  # type: ignore[no-untyped-call]


UNITS = {family.name: family.unit for family in (*metrics.SYNC_FAMILIES, *PROVIDER_FAMILIES)}


# --- the renderer against prometheus_client -------------------------------------------------------


class WithUnits(ReferenceCollector):
    """The reference families with the units the exporter declares."""

    def collect(self) -> Iterator[Metric]:
        for family in super().collect():
            family.unit = UNITS[family.name]
            yield family


@pytest.mark.parametrize("selection", [Selection(), Selection(deny=("sync_state", "sync_health"))])
def test_openmetrics_is_prometheus_clients_bytes(selection: Selection) -> None:
    pairs = results()
    registry = CollectorRegistry(auto_describe=False)

    class Kept(WithUnits):
        def collect(self) -> Iterator[Metric]:
            return (f for f in super().collect() if selection.keeps(f.name))

    reference = Kept(pairs)
    registry.register(reference)
    expected = reference.in_order(generate_openmetrics(registry).decode())  # type: ignore[no-untyped-call]
    ours = render_syncs(pairs, NOW, POLICY, ADAPTERS, selection, openmetrics=True)
    assert ours + "# EOF\n" == expected
    assert "# UNIT sync_last_synced_timestamp_seconds seconds\n" in ours
    assert "# UNIT sync_progress_ratio ratio\n" in ours
    assert "# UNIT sync_up" not in ours


def test_openmetrics_metadata_escapes_help_as_prometheus_client_does() -> None:
    family = metrics.Family("odd_seconds", 'a "quoted" \\ back\nslash')
    registry = CollectorRegistry(auto_describe=False)

    class One(ReferenceCollector):
        def collect(self) -> Iterator[Metric]:
            yield Metric(family.name, family.help, "gauge", unit="seconds")

    registry.register(One([]))
    expected = generate_openmetrics(registry)  # type: ignore[no-untyped-call]
    assert header(family, openmetrics=True) + b"# EOF\n" == expected


@pytest.mark.parametrize(
    ("accept", "version"),
    [
        ("", None),
        ("text/plain", None),
        ("*/*", None),
        (PROMETHEUS_ACCEPT, "1.0.0"),
        ("application/openmetrics-text", "1.0.0"),
        ("application/openmetrics-text; version=0.0.1", "0.0.1"),
        ("application/openmetrics-text;version=2.0.0", None),
        ("application/openmetrics-text;version=1.0.0;q=0", None),
        ("text/plain;q=0.5,application/openmetrics-text;version=1.0.0;q=0.9", "1.0.0"),
        ("text/plain;version=0.0.4,application/openmetrics-text;version=1.0.0", None),
        ("Application/OpenMetrics-Text; Version=1.0.0", "1.0.0"),
        # Prometheus 3's default, after the protobuf format we do not serve.
        (
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
            "encoding=delimited;q=0.7,application/openmetrics-text;version=1.0.0;"
            "escaping=allow-utf-8;q=0.6,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3",
            "1.0.0",
        ),
    ],
)
def test_negotiation(accept: str, version: str | None) -> None:
    assert openmetrics_version(accept) == version


# --- over HTTP ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    """This module's own simulator: every demo sync must read, whatever other tests added."""
    yield from simulator_process(tmp_path_factory)


@pytest.fixture(scope="module")
def exporter(sim: Sim, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("openmetrics")
    path = directory / "config.yml"
    path.write_text(yaml.safe_dump(sim.http.get("/_sim/config").json()))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(exporter_command(path, port), f"{url}/-/ready", log=directory / "log"):
        yield url


def get(url: str, accept: str, **headers: str) -> httpx.Response:
    response = httpx.get(url, headers={"Accept": accept, **headers}, timeout=30)
    assert response.status_code == 200, response.text
    return response


def test_openmetrics_when_asked_the_text_format_otherwise(exporter: str) -> None:
    om = get(f"{exporter}/metrics", PROMETHEUS_ACCEPT)
    assert om.headers["Content-Type"] == OPENMETRICS
    assert om.text.endswith("\n# EOF\n") and om.text.count("# EOF") == 1
    families = {family.name: family for family in parse_openmetrics(om.text)}
    errors = families["sync_exporter_errors"]
    assert errors.type == "counter"
    assert {sample.name for sample in errors.samples} == {"sync_exporter_errors_total"}
    assert families["sync_last_synced_timestamp_seconds"].unit == "seconds"
    assert families["sync_exporter_upstream_request_duration_seconds"].unit == "seconds"
    assert "# TYPE sync_exporter_errors counter\n" in om.text
    assert "# TYPE sync_exporter_errors_total" not in om.text
    ups = [s for s in families["sync_up"].samples]
    assert len(ups) > 10 and all(sample.value == 1 for sample in ups)

    text = get(f"{exporter}/metrics", "text/plain;version=0.0.4")
    assert text.headers["Content-Type"] == TEXT
    assert "# EOF" not in text.text and "# UNIT" not in text.text
    parsed = {family.name for family in parse_text(text.text)}
    assert {name for name in families if name.startswith("sync_")} <= parsed
    assert get(f"{exporter}/metrics", "").headers["Content-Type"] == TEXT


def test_openmetrics_version_0_0_1_and_gzip(exporter: str) -> None:
    response = httpx.get(
        f"{exporter}/metrics",
        headers={
            "Accept": "application/openmetrics-text; version=0.0.1",
            "Accept-Encoding": "gzip",
        },
        timeout=30,
    )
    assert response.headers["Content-Type"] == (
        "application/openmetrics-text; version=0.0.1; charset=utf-8"
    )
    assert response.headers["Content-Encoding"] == "gzip"
    assert "Accept" in response.headers["Vary"]
    assert response.text.endswith("# EOF\n")
    with httpx.stream(
        "GET",
        f"{exporter}/metrics",
        headers={"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"},
    ) as streamed:
        raw = b"".join(streamed.iter_raw())
    assert gzip.decompress(raw).endswith(b"# EOF\n")
    assert parse_openmetrics(gzip.decompress(raw).decode())


def test_a_probe_answers_openmetrics_too(exporter: str) -> None:
    response = httpx.get(
        f"{exporter}/probe",
        params={"source": "demo-nango"},
        headers={"Accept": PROMETHEUS_ACCEPT},
        timeout=30,
    )
    assert response.headers["Content-Type"] == OPENMETRICS
    families = {family.name: family for family in parse_openmetrics(response.text)}
    assert families["probe_success"].samples[0].value == 1
    assert families["probe_duration_seconds"].unit == "seconds"
    assert response.text.endswith("\n# EOF\n")


def promtool_check(body: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [require("promtool"), "check", "metrics"], input=body, capture_output=True, timeout=60
    )


def test_promtool_accepts_the_text_format_and_reads_openmetrics(exporter: str) -> None:
    """promtool check metrics reads the text format only: the text answer passes clean; the
    OpenMetrics one parses (`# UNIT` and `# EOF` are comments to it), but it lints each
    counter's `_total` samples as a family without help, its metadata naming the family
    without `_total`."""
    text = promtool_check(get(f"{exporter}/metrics", "text/plain").content)
    assert text.returncode == 0 and not text.stdout.strip(), text.stdout + text.stderr
    om = promtool_check(get(f"{exporter}/metrics", PROMETHEUS_ACCEPT).content)
    complaints = (om.stdout + om.stderr).decode().splitlines()
    assert om.returncode == 3 and complaints, complaints
    for line in complaints:
        name, _, problem = line.partition(" ")
        assert name.endswith("_total") and problem == "no help text", line


# --- a real Prometheus ----------------------------------------------------------------------------


def prometheus_supports_scrape_protocols(tmp_path: Path) -> bool:
    config = tmp_path / "probe-config.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "scrape_configs": [
                    {
                        "job_name": "x",
                        "scrape_protocols": ["PrometheusText0.0.4"],
                        "static_configs": [{"targets": ["127.0.0.1:1"]}],
                    }
                ]
            }
        )
    )
    result = subprocess.run(
        [require("promtool"), "check", "config", str(config)], capture_output=True, timeout=60
    )
    return result.returncode == 0


# What a Prometheus with `scrape_protocols: [<protocol>]` asks for.
ACCEPTS = {
    "PrometheusText0.0.4": "text/plain;version=0.0.4",
    "OpenMetricsText1.0.0": "application/openmetrics-text;version=1.0.0",
}


@contextlib.contextmanager
def accept_hop(target: str, accept: str) -> Iterator[str]:
    """A loopback hop that sends every scrape on asking for `accept`: what a Prometheus with
    `scrape_protocols` would send, for a Prometheus too old to have the setting (Debian's)."""

    class Hop(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            headers = {"Accept": accept}
            timeout = self.headers.get("X-Prometheus-Scrape-Timeout-Seconds")
            if timeout is not None:
                headers["X-Prometheus-Scrape-Timeout-Seconds"] = timeout
            answer = httpx.get(target + self.path, headers=headers, timeout=30)
            body = answer.content
            self.send_response(answer.status_code)
            self.send_header("Content-Type", answer.headers["Content-Type"])
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hop)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("protocol", ["default", "PrometheusText0.0.4", "OpenMetricsText1.0.0"])
def test_a_real_prometheus_scrapes_it(exporter: str, tmp_path: Path, protocol: str) -> None:
    """Prometheus before 2.49 has no scrape_protocols and always asks for OpenMetrics first:
    there the forced protocols go through a hop that asks as a newer Prometheus would. The
    unit in Prometheus's metadata tells which format it ingested (the text format has none)."""
    prometheus = require("prometheus")
    with contextlib.ExitStack() as stack:
        target = exporter
        job: dict[str, Any] = {
            "job_name": "sync-status-exporter",
            "scrape_interval": "1s",
            "scrape_timeout": "1s",
        }
        if protocol != "default":
            if prometheus_supports_scrape_protocols(tmp_path):
                job["scrape_protocols"] = [protocol]
            else:
                target = stack.enter_context(accept_hop(exporter, ACCEPTS[protocol]))
        job["static_configs"] = [{"targets": [target.removeprefix("http://")]}]
        scrape_with_prometheus(prometheus, job, tmp_path, protocol)


def scrape_with_prometheus(
    prometheus: str, job: dict[str, Any], tmp_path: Path, protocol: str
) -> None:
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
        found: list[Any] = []
        while time.monotonic() < deadline and not found:
            found = httpx.get(
                f"{url}/api/v1/query", params={"query": "sync_up == 1"}, timeout=10
            ).json()["data"]["result"]
            time.sleep(0.5)
        assert len(found) > 10
        errors = httpx.get(
            f"{url}/api/v1/query", params={"query": "sync_exporter_errors_total"}, timeout=10
        ).json()["data"]["result"]
        assert errors, "counters arrive under their _total sample names"
        metadata = httpx.get(
            f"{url}/api/v1/targets/metadata",
            params={"metric": "sync_last_synced_timestamp_seconds"},
            timeout=10,
        ).json()["data"]
        targets = httpx.get(f"{url}/api/v1/targets", timeout=10).json()["data"]
    assert [t["health"] for t in targets["activeTargets"]] == ["up"], targets
    unit = metadata[0]["unit"]
    assert unit == ("" if protocol == "PrometheusText0.0.4" else "seconds"), metadata
