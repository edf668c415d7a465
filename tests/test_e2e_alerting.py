"""End to end: simulator -> exporter -> real Prometheus -> real Alertmanager -> our webhook.

Everything listens on 127.0.0.1 and is started here, in its own process, and stopped at
teardown. Prometheus scrapes and evaluates every second. It loads a test-only copy of the
alerting rules written by the same generator as alerts/sync-status-exporter.rules.yml with
three settings shortened so the test takes seconds instead of minutes: `errored_for=3s`
(10m), `read_gap=5s` (10m) and `keep_firing_for=0s` (5m). Expressions, labels and annotations
are otherwise those of the committed file.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from alerts.generate import render
from alerts.settings import RUNBOOK_BASE, Settings
from dashboards.generate import DASHBOARDS, to_dict
from dashboards.promql import substitute
from tests.procs import exporter_command, free_port, running
from tests.tools import require

JOB = "sync-status-exporter"
FLIP = "e2e-flip"
MISSING = "e2e-missing"
REASON = "token revoked"
TEST_SETTINGS = Settings(errored_for="3s", read_gap="5s", keep_firing_for="0s")
STARTUP_TIMEOUT = 30.0
ALERT_TIMEOUT = 45.0
DATA_TIMEOUT = 30.0
# Grafana would pick about 4 scrape intervals; 1 s scrapes make 15s plenty for rate().
VARIABLES = {"job": JOB, "__rate_interval": "15s"}


@dataclass
class Webhook:
    """Alertmanager's webhook receiver: keeps every notification POSTed to it."""

    server: ThreadingHTTPServer
    received: list[dict[str, Any]] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    @property
    def url(self) -> str:
        """Where Alertmanager posts."""
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/alerts"

    def add(self, notification: dict[str, Any]) -> None:
        """Store one notification and wake waiters."""
        with self.changed:
            self.received.append(notification)
            self.changed.notify_all()

    def wait_for_alert(
        self, match: Callable[[dict[str, Any]], bool], timeout: float
    ) -> dict[str, Any]:
        """The first alert of any notification for which `match` holds, within `timeout`."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self.changed:
            while True:
                for notification in self.received[seen:]:
                    alerts: list[dict[str, Any]] = notification["alerts"]
                    for alert in alerts:
                        if match(alert):
                            return alert
                seen = len(self.received)
                left = deadline - time.monotonic()
                if left <= 0:
                    summary = [
                        (a["status"], a["labels"].get("alertname"), a["labels"].get("sync_id"))
                        for n in self.received
                        for a in n["alerts"]
                    ]
                    raise AssertionError(f"no matching alert within {timeout}s; got {summary}")
                self.changed.wait(left)


def start_webhook() -> Webhook:
    """A threaded HTTP server on 127.0.0.1 collecting the JSON bodies POSTed to it."""

    class Handler(BaseHTTPRequestHandler):
        hook: Webhook

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            self.hook.add(json.loads(self.rfile.read(length)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Keep the test output clean."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook = Webhook(server)
    Handler.hook = hook
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return hook


@dataclass(frozen=True)
class Stack:
    """The running programs' addresses."""

    simulator: str
    exporter: str
    prometheus: str
    alertmanager: str
    webhook: Webhook


def paragon_body(status: str, synced: int, **extra: Any) -> dict[str, Any]:
    """A Paragon Get Sync Status body, as the real API writes it."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    body: dict[str, Any] = {
        "status": status,
        "summary": {"totalRecords": 1000, "syncedRecordsCount": synced, "lastSyncedAt": now},
        "configurationName": f"E2E {status.lower()}",
        "integration": "salesforce",
        "credentialId": "e2e-credential",
        "incrementalAccumulatorFrequency": "5m",
    }
    return body | extra


def write_configs(
    directory: Path, *, exporter_port: int, alertmanager_port: int, webhook: Webhook
) -> tuple[Path, Path, Path]:
    """The test-only rules, Prometheus's config and Alertmanager's config."""
    rules = directory / "rules.yml"
    rules.write_text(render(TEST_SETTINGS), encoding="utf-8")
    prometheus = directory / "prometheus.yml"
    prometheus.write_text(
        yaml.safe_dump(
            {
                "global": {
                    "scrape_interval": "1s",
                    "scrape_timeout": "1s",
                    "evaluation_interval": "1s",
                },
                "rule_files": [str(rules)],
                "alerting": {
                    "alertmanagers": [
                        {"static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}
                    ]
                },
                "scrape_configs": [
                    {
                        "job_name": JOB,
                        "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}],
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    alertmanager = directory / "alertmanager.yml"
    alertmanager.write_text(
        yaml.safe_dump(
            {
                "route": {
                    "receiver": "test",
                    "group_by": ["..."],
                    "group_wait": "1s",
                    "group_interval": "1s",
                    "repeat_interval": "1h",
                },
                "receivers": [
                    {
                        "name": "test",
                        "webhook_configs": [{"url": webhook.url, "send_resolved": True}],
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    return rules, prometheus, alertmanager


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Simulator, exporter, Alertmanager, webhook and Prometheus, wired together."""
    prometheus_bin = require("prometheus")
    alertmanager_bin = require("prometheus-alertmanager", "alertmanager")
    directory = tmp_path_factory.mktemp("e2e")
    ports = {name: free_port() for name in ("sim", "exporter", "prometheus", "alertmanager")}
    simulator = f"http://127.0.0.1:{ports['sim']}"
    exporter = f"http://127.0.0.1:{ports['exporter']}"
    prometheus = f"http://127.0.0.1:{ports['prometheus']}"
    alertmanager = f"http://127.0.0.1:{ports['alertmanager']}"
    webhook = start_webhook()
    with ExitStack() as stack:
        stack.callback(webhook.server.server_close)
        stack.callback(webhook.server.shutdown)
        stack.enter_context(
            running(
                [
                    sys.executable,
                    "-m",
                    "exporter.simulator",
                    "--listen",
                    f"127.0.0.1:{ports['sim']}",
                    "--period",
                    "3600",
                ],
                f"{simulator}/_sim/requests",
                timeout=STARTUP_TIMEOUT,
                log=directory / "simulator.log",
            )
        )
        with httpx.Client(base_url=simulator, timeout=10) as client:
            for sync_id, body in (
                (FLIP, paragon_body("IDLE", 1000)),
                ("e2e-rate-limited", paragon_body("RATE_LIMITED", 400, rateLimitBackoffMs=90_000)),
                ("e2e-active", paragon_body("ACTIVE", 250)),
            ):
                response = client.post("/_sim/syncs/paragon", json={"id": sync_id, "body": body})
                assert response.status_code in (200, 201), response.text
            config = client.get("/_sim/config").json()
        paragon = next(s for s in config["sources"] if s["provider"] == "paragon")
        # The ad-hoc syncs above belong to the simulator's default user, listed with the others.
        assert "sim-user" in paragon["users"]
        # Never existed: sync_up 0, HTTP 404.
        paragon.setdefault("syncs", []).append({"id": MISSING, "user": "sim-user"})
        config_file = directory / "exporter.yml"
        config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
        stack.enter_context(
            running(
                exporter_command(config_file, ports["exporter"]),
                f"{exporter}/-/ready",
                timeout=STARTUP_TIMEOUT,
                log=directory / "exporter.log",
            )
        )
        _, prometheus_config, alertmanager_config = write_configs(
            directory,
            exporter_port=ports["exporter"],
            alertmanager_port=ports["alertmanager"],
            webhook=webhook,
        )
        stack.enter_context(
            running(
                [
                    alertmanager_bin,
                    f"--config.file={alertmanager_config}",
                    f"--storage.path={directory / 'alertmanager-data'}",
                    f"--web.listen-address=127.0.0.1:{ports['alertmanager']}",
                    "--cluster.listen-address=",
                ],
                f"{alertmanager}/-/ready",
                timeout=STARTUP_TIMEOUT,
                log=directory / "alertmanager.log",
            )
        )
        stack.enter_context(
            running(
                [
                    prometheus_bin,
                    f"--config.file={prometheus_config}",
                    f"--storage.tsdb.path={directory / 'prometheus-data'}",
                    f"--web.listen-address=127.0.0.1:{ports['prometheus']}",
                    "--enable-feature=extra-scrape-metrics",
                ],
                f"{prometheus}/-/ready",
                timeout=STARTUP_TIMEOUT,
                log=directory / "prometheus.log",
            )
        )
        yield Stack(simulator, exporter, prometheus, alertmanager, webhook)


def instant(prometheus: str, expr: str) -> list[dict[str, Any]]:
    """The result of an instant query; fails on a query error."""
    response = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10)
    body = response.json()
    assert body["status"] == "success", f"{expr}: {body}"
    result = body["data"]["result"]
    if body["data"]["resultType"] == "scalar":
        return [{"value": result}]
    assert isinstance(result, list)
    return result


def wait_for_data(prometheus: str, expr: str, timeout: float) -> list[dict[str, Any]]:
    """Poll an instant query until it returns something, at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = instant(prometheus, expr)
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


def is_flip(status: str) -> Callable[[dict[str, Any]], bool]:
    """Matches the SyncErrored alert of the flipped sync in `status`."""

    def match(alert: dict[str, Any]) -> bool:
        labels = alert["labels"]
        return bool(
            alert["status"] == status
            and labels.get("alertname") == "SyncErrored"
            and labels.get("sync_id") == FLIP
        )

    return match


def test_errored_sync_pages_and_recovers(stack: Stack) -> None:
    read = wait_for_data(
        stack.prometheus, f'sync_up{{job="{JOB}", sync_id="{FLIP}"}} == 1', STARTUP_TIMEOUT
    )
    assert read, "Prometheus never saw the sync read by the exporter"
    errored = f'sync_state{{job="{JOB}", sync_id="{FLIP}", state="errored"}}'
    assert instant(stack.prometheus, errored)[0]["value"][1] == "0"

    flip = httpx.put(
        f"{stack.simulator}/_sim/syncs/paragon/{FLIP}",
        json={"status": "ERRORED", "reason": REASON},
        timeout=10,
    )
    assert flip.status_code == 200, flip.text
    started = time.monotonic()
    alert = stack.webhook.wait_for_alert(is_flip("firing"), ALERT_TIMEOUT)
    took = time.monotonic() - started
    assert alert["labels"] == {
        "alertname": "SyncErrored",
        "severity": "critical",
        "job": JOB,
        "instance": stack.exporter.removeprefix("http://"),
        "source": "demo-paragon",
        "provider": "paragon",
        "sync_id": FLIP,
        "user": "sim-user",
        "tenant": "demo",
        "state": "errored",
    }
    annotations = alert["annotations"]
    assert annotations["description"] == (
        f"Sync {FLIP} (provider paragon, source demo-paragon, user sim-user) has been errored "
        "for more "
        f"than {TEST_SETTINGS.errored_for}. Reason: {REASON}"
    )
    assert annotations["runbook_url"] == f"{RUNBOOK_BASE}#syncerrored"
    # 3s `for:` plus scrape, evaluation, group_wait and delivery: seconds, not the timeout.
    assert took >= 3.0, f"fired after {took:.1f}s, before its 3s `for:` could elapse"

    recover = httpx.delete(f"{stack.simulator}/_sim/syncs/paragon/{FLIP}", timeout=10)
    assert recover.status_code == 200, recover.text
    resolved = stack.webhook.wait_for_alert(is_flip("resolved"), ALERT_TIMEOUT)
    assert resolved["labels"] == alert["labels"]
    assert resolved["startsAt"] == alert["startsAt"]
    assert not resolved["endsAt"].startswith("0001-"), "a resolved alert carries its end time"


def test_a_generic_sync_pages_like_any_other(stack: Stack) -> None:
    """A sync read through a mapping (the demo's pipelines API) goes through the same rules."""
    pipeline = "pl_sparse"
    read = wait_for_data(
        stack.prometheus,
        f'sync_state{{job="{JOB}", sync_id="{pipeline}", state="idle"}} == 1',
        STARTUP_TIMEOUT,
    )
    assert read, "Prometheus never saw the pipeline idle"

    def paged(status: str) -> Callable[[dict[str, Any]], bool]:
        def match(alert: dict[str, Any]) -> bool:
            labels = alert["labels"]
            return bool(
                alert["status"] == status
                and labels.get("alertname") == "SyncErrored"
                and labels.get("sync_id") == pipeline
            )

        return match

    flip = httpx.put(
        f"{stack.simulator}/_sim/syncs/generic/{pipeline}",
        json={"state": {"phase": "FAILED", "error": {"message": REASON}}},
        timeout=10,
    )
    assert flip.status_code == 200, flip.text
    alert = stack.webhook.wait_for_alert(paged("firing"), ALERT_TIMEOUT)
    assert alert["labels"] == {
        "alertname": "SyncErrored",
        "severity": "critical",
        "job": JOB,
        "instance": stack.exporter.removeprefix("http://"),
        "source": "demo-generic",
        "provider": "generic",
        "sync_id": pipeline,
        "state": "errored",
    }
    assert alert["annotations"]["description"].endswith(f"Reason: {REASON}")
    recover = httpx.delete(f"{stack.simulator}/_sim/syncs/generic/{pipeline}", timeout=10)
    assert recover.status_code == 200, recover.text
    stack.webhook.wait_for_alert(paged("resolved"), ALERT_TIMEOUT)


def test_every_dashboard_query_returns_data(stack: Stack) -> None:
    """With real values for the job and `.*` for the rest, as Grafana's "All" would send."""
    empty: list[str] = []
    deadline = time.monotonic() + DATA_TIMEOUT
    for spec in DASHBOARDS:
        dashboard = to_dict(spec.build())
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                expr = substitute(target["expr"], VARIABLES)
                left = max(deadline - time.monotonic(), 0.0)
                if not wait_for_data(stack.prometheus, expr, left):
                    empty.append(f"{dashboard['uid']}: {panel['title']} [{target['refId']}]")
    assert not empty, f"queries without data: {empty}"


def test_variables_list_the_simulated_syncs(stack: Stack) -> None:
    """The chained variables' queries find the job, the sources and the syncs."""
    jobs = wait_for_data(stack.prometheus, "sync_exporter_build_info", STARTUP_TIMEOUT)
    assert {series["metric"]["job"] for series in jobs} == {JOB}
    syncs = instant(stack.prometheus, f'sync_up{{job="{JOB}", source="demo-paragon"}}')
    assert {FLIP, MISSING} <= {series["metric"]["sync_id"] for series in syncs}
