"""POST /webhooks/{source}: the exporter as users run it, deliveries signed as providers sign.

Signatures are computed here from each provider's documented scheme (Nango: hex HMAC-SHA256
in X-Nango-Hmac-Sha256; Merge: base64url HMAC-SHA256 in X-Merge-Webhook-Signature; Fivetran:
HMAC-SHA256 in X-Fivetran-Signature-256, hex being our guess), never by the exporter's code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import pytest
import yaml

from tests.conftest import Sim
from tests.exposition import Exposition
from tests.procs import exporter_command, free_port, run_exporter, running

NANGO_KEY = "nango-webhook-secret-0123456789"
MERGE_KEY = "merge-webhook-key-abcdef"
FIVETRAN_KEY = "fivetran-webhook-secret-xyz"
GENERIC_KEY = "generic-webhook-key-42"
TOKEN = "terminal-webhook-token-7f3a9c"
PASSWORD = "scrape-pass-9"


def sign(key: str, body: bytes, algorithm: str = "sha256") -> bytes:
    return hmac.new(key.encode(), body, getattr(hashlib, algorithm)).digest()


def nango(body: bytes, key: str = NANGO_KEY) -> dict[str, str]:
    return {"X-Nango-Hmac-Sha256": sign(key, body).hex()}


def merge(body: bytes, key: str = MERGE_KEY) -> dict[str, str]:
    encoded = base64.urlsafe_b64encode(sign(key, body)).decode().rstrip("=")
    return {"X-Merge-Webhook-Signature": encoded}


def fivetran(body: bytes, key: str = FIVETRAN_KEY) -> dict[str, str]:
    return {"X-Fivetran-Signature-256": sign(key, body).hex().upper()}


def generic(body: bytes, key: str = GENERIC_KEY) -> dict[str, str]:
    return {"X-Hook-Sig": "sha512=" + base64.b64encode(sign(key, body, "sha512")).decode()}


Signer = Callable[..., dict[str, str]]
SIGNED: dict[str, tuple[Signer, dict[str, Any]]] = {
    "ng": (nango, {"type": "sync", "connectionId": "c1", "syncName": "s", "success": True}),
    "mg": (merge, {"hook": {"event": "LinkedAccount.sync_completed"}, "data": {}}),
    "ft": (fivetran, {"event": "sync_end", "connector_id": "c1", "data": {"status": "SUCCESSFUL"}}),
    "gn": (generic, {"kind": "run.done", "id": "g1"}),
}
EVENTS = {"ng": "sync", "mg": "LinkedAccount.sync_completed", "ft": "sync_end", "gn": "run.done"}


def sources(sim: Sim, secrets: Path) -> list[dict[str, Any]]:
    """One source per scheme; none of them is read successfully, which does not matter here."""
    (secrets / "nango").write_text(NANGO_KEY + "\n")
    (secrets / "terminal").write_text(TOKEN + "\n")
    return [
        {
            "name": "ng",
            "provider": "generic",
            "preset": "nango",
            "base_url": f"{sim.base}/nango",
            "auth": {"token": "t"},
            "generic": {"list": {"params": {"provider_config_key": "it"}}},
            "syncs": ["n1"],
            "webhook": {"secret_file": str(secrets / "nango")},
        },
        {
            "name": "mg",
            "provider": "generic",
            "preset": "merge",
            "base_url": f"{sim.base}/merge",
            "auth": {"token": "t"},
            "syncs": [{"id": "acme", "headers": {"X-Account-Token": "a"}}],
            "webhook": {"secret": "${MERGE_HOOK}"},
        },
        {
            "name": "ft",
            "provider": "generic",
            "preset": "fivetran",
            "base_url": f"{sim.base}/fivetran",
            "auth": {"username": "k", "password": "s"},
            "syncs": ["c1"],
            "webhook": {"secret": FIVETRAN_KEY},
        },
        {
            "name": "gn",
            "provider": "generic",
            "base_url": f"{sim.base}/generic",
            "auth": {"token": "t"},
            "generic": {"detail": "/syncs/{id}", "fields": {"status": "status"}},
            "syncs": ["g1"],
            "webhook": {
                "secret": GENERIC_KEY,
                "signature": {
                    "header": "X-Hook-Sig",
                    "algorithm": "sha512",
                    "encoding": "base64",
                    "prefix": "sha512=",
                },
                "event": "kind",
                "events": ["run.done", "run.failed"],
                "max_body_bytes": 4096,
            },
        },
        {
            "name": "tm",
            "provider": "terminal",
            "base_url": f"{sim.base}/terminal",
            "auth": {"token": "t", "connection_token": "ct"},
            "syncs": ["j1"],
            "webhook": {"secret_file": str(secrets / "terminal")},
        },
        {
            "name": "plain",
            "provider": "sequin",
            "base_url": f"{sim.base}/sequin",
            "auth": {"token": "t"},
            "syncs": ["p1"],
        },
    ]


class Running:
    def __init__(self, url: str, log: Path) -> None:
        self.url = url
        self.log = log
        self.http = httpx.Client(base_url=url, timeout=10)

    def post(self, source: str, body: bytes, headers: dict[str, str], **params: str) -> int:
        response = self.http.post(
            f"/webhooks/{source}",
            content=body,
            headers={"Content-Type": "application/json", **headers},
            params=params,
        )
        return response.status_code

    def metrics(self) -> Exposition:
        response = self.http.get("/metrics", auth=("prometheus", PASSWORD))
        assert response.status_code == 200, response.text
        return Exposition(response.text)


@pytest.fixture(scope="module")
def exporter(sim: Sim, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """One exporter behind basic auth with a webhook per scheme, logging at debug."""
    directory = tmp_path_factory.mktemp("webhooks")
    config = directory / "config.yml"
    config.write_text(yaml.safe_dump({"sources": sources(sim, directory)}))
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    web = directory / "web.yml"
    web.write_text(f"basic_auth_users: {{prometheus: '{hashed}'}}\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = directory / "exporter.log"
    command = exporter_command(config, port, "--web.config.file", str(web), "--log.level", "debug")
    with running(
        command,
        f"{url}/-/healthy",
        log=log,
        env={"MERGE_HOOK": MERGE_KEY},
        auth=("prometheus", PASSWORD),
    ):
        yield Running(url, log)


@pytest.mark.parametrize("source", sorted(SIGNED))
def test_each_signature_is_accepted_and_every_forgery_refused(
    exporter: Running, source: str
) -> None:
    signer, payload = SIGNED[source]
    body = json.dumps(payload).encode()
    before = exporter.metrics()

    def count(name: str, **labels: str) -> float:
        found = exporter.metrics().find(name, source=source, **labels)
        return found[0][1] if found else 0.0

    assert exporter.post(source, body, signer(body)) == 202
    assert count("sync_exporter_webhook_events_total", event=EVENTS[source]) == 1 + sum(
        v for _, v in before.find("sync_exporter_webhook_events_total", source=source)
    )
    forged = signer(body, "not-the-key")
    assert exporter.post(source, body, forged) == 403
    ((header, value),) = signer(body).items()
    assert exporter.post(source, body, {header: value[: len(value) // 2]}) == 403
    other = json.dumps({**payload, "extra": 1}).encode()
    assert exporter.post(source, other, signer(body)) == 403, "replayed with another body"
    assert exporter.post(source, body, {}) == 401
    assert exporter.post(source, body, {header: ""}) == 401
    assert exporter.post(source, body, {header: "zz-not-an-encoding"}) == 403
    assert count("sync_exporter_webhook_rejected_total", reason="bad_signature") >= 4
    assert count("sync_exporter_webhook_rejected_total", reason="missing_signature") >= 2
    # Basic auth guards everything but the webhooks: their signature does.
    assert exporter.http.get("/metrics").status_code == 401
    for sneaky in ("/webhooks/../metrics", "/webhooks/%2e%2e/metrics", "/webhooks/x/../../"):
        answer = httpx.get(exporter.url + sneaky)
        assert answer.status_code in (401, 404, 405), sneaky
        assert "sync_exporter" not in answer.text, sneaky
    assert exporter.http.get(f"/webhooks/{source}").status_code == 401, "only POST skips auth"


def test_fivetrans_hex_is_read_in_either_case(exporter: Running) -> None:
    """guess: the case of Fivetran's hex signature (the simulator sends upper case)."""
    body = json.dumps({"event": "sync_start", "connector_id": "c1"}).encode()
    digest = sign(FIVETRAN_KEY, body).hex()
    for value in (digest.lower(), digest.upper()):
        assert exporter.post("ft", body, {"X-Fivetran-Signature-256": value}) == 202
    assert exporter.post("ft", body, {"X-Fivetran-Signature-256": digest[:-2] + "00"}) == 403


def test_a_token_in_the_query_or_as_bearer_for_providers_without_signatures(
    exporter: Running,
) -> None:
    body = json.dumps({"event": "sync.failed", "detail": {"connection": {"id": "j1"}}}).encode()
    assert exporter.post("tm", body, {}, token=TOKEN) == 202
    assert exporter.post("tm", body, {"Authorization": f"Bearer {TOKEN}"}) == 202
    assert exporter.post("tm", body, {}, token=TOKEN[:-1]) == 403
    assert exporter.post("tm", body, {}, token=TOKEN + "x") == 403
    assert exporter.post("tm", body, {"Authorization": "Bearer nope"}) == 403
    assert exporter.post("tm", body, {}) == 401
    # A Basic header is not the token, whatever it holds.
    basic = base64.b64encode(f"x:{TOKEN}".encode()).decode()
    assert exporter.post("tm", body, {"Authorization": f"Basic {basic}"}) == 401
    m = exporter.metrics()
    assert m.value("sync_exporter_webhook_events_total", source="tm", event="sync.failed") == 2
    assert m.value("sync_exporter_webhook_rejected_total", source="tm", reason="bad_signature") == 3


def test_event_names_outside_the_known_set_count_as_other(exporter: Running) -> None:
    for name in ("sync.completed", "made.up", "x" * 500, None):
        body = json.dumps({"event": name}).encode()
        assert exporter.post("tm", body, {}, token=TOKEN) == 202
    body = json.dumps(["not", "an", "object"]).encode()
    assert exporter.post("tm", body, {}, token=TOKEN) == 202
    m = exporter.metrics()
    assert m.value("sync_exporter_webhook_events_total", source="tm", event="sync.completed") == 1
    assert m.value("sync_exporter_webhook_events_total", source="tm", event="other") == 4
    events = {labels["event"] for labels, _ in m.find("sync_exporter_webhook_events_total")}
    assert "made.up" not in events and "x" * 500 not in events


def test_unknown_sources_oversized_and_non_json_bodies(exporter: Running) -> None:
    body = b'{"kind": "run.done"}'
    assert exporter.post("nope", body, generic(body)) == 404
    assert exporter.post("plain", body, {}, token=TOKEN) == 404, "a source without webhook"
    big = json.dumps({"kind": "run.done", "pad": "x" * 5000}).encode()
    assert exporter.post("gn", big, generic(big)) == 413
    # Without a Content-Length (chunked), the cap holds while reading.
    chunked = exporter.http.post(
        "/webhooks/gn", content=iter([big[:3000], big[3000:]]), headers=generic(big)
    )
    assert chunked.status_code == 413
    broken = b'{"kind": "run.done"'
    assert exporter.post("gn", broken, generic(broken)) == 400
    # Unsigned junk is refused for its signature, not parsed.
    assert exporter.post("gn", broken, {}) == 401
    m = exporter.metrics()
    assert m.value("sync_exporter_webhook_rejected_total", source="gn", reason="too_large") == 2
    assert m.value("sync_exporter_webhook_rejected_total", source="gn", reason="bad_json") == 1
    sources = {labels["source"] for labels, _ in m.find("sync_exporter_webhook_rejected_total")}
    assert "nope" not in sources


def test_no_secret_or_query_string_reaches_the_log_or_the_metrics(exporter: Running) -> None:
    body = b'{"event": "sync.completed"}'
    assert exporter.post("tm", body, {}, token=TOKEN, extra="query-marker-31337") == 202
    assert exporter.post("tm", body, {}, token="wrong-token-marker") == 403
    exporter.http.get("/webhooks/tm", params={"token": "get-marker"})
    text = exporter.log.read_text()
    page = (
        exporter.metrics().text
        + exporter.http.get("/status.json", auth=("prometheus", PASSWORD)).text
    )
    for secret in (TOKEN, NANGO_KEY, MERGE_KEY, FIVETRAN_KEY, GENERIC_KEY):
        assert secret not in text and secret not in page
    for marker in ("query-marker-31337", "wrong-token-marker", "get-marker"):
        assert marker not in text


def test_webhook_config_errors_name_the_file_and_field(tmp_path: Path) -> None:
    def check(webhook: Any, env: dict[str, str] | None = None) -> str:
        source = {
            "name": "tm",
            "provider": "terminal",
            "base_url": "http://127.0.0.1:9/terminal",
            "auth": {"token": "t", "connection_token": "ct"},
            "syncs": ["j1"],
            "webhook": webhook,
        }
        path = tmp_path / "bad.yml"
        path.write_text(yaml.safe_dump({"sources": [source]}))
        result = run_exporter("--config.file", str(path), "--config.check", env=env)
        assert result.returncode != 0
        assert "Traceback" not in result.stderr + result.stdout
        output = result.stderr + result.stdout
        assert str(path) in output or "bad.yml" in output
        return output

    missing = check({"secret_file": str(tmp_path / "absent")})
    assert "sources[0].webhook" in missing and "secret_file" in missing
    assert "secret or secret_file" in check({})
    both = check({"secret": "a", "secret_file": str(tmp_path / "x")})
    assert "not both" in both
    bad = check(
        {"secret": "${HOOK}", "signature": {"header": "bad header", "algorithm": "md5"}},
        env={"HOOK": "env-secret-value-1"},
    )
    assert "sources[0].webhook.signature.header" in bad
    assert "sources[0].webhook.signature.algorithm" in bad
    assert "env-secret-value-1" not in bad
    assert "sources[0].webhook.event" in check({"secret": "s", "event": "a[["})
    assert "max_body_bytes" in check({"secret": "s", "max_body_bytes": 0})


def test_an_event_makes_the_next_scrape_read_its_sync_despite_min_interval(
    sim: Sim, tmp_path: Path
) -> None:
    for sync_id in ("wh-1", "wh-2"):
        sim.create("sequin", sync_id, {"status": "active", "initial_backfill_completed_at": None})
    source = {
        "name": "sq",
        "provider": "sequin",
        "base_url": f"{sim.base}/sequin",
        "auth": {"token": "sim-sequin-key"},
        "syncs": ["wh-1", "wh-2"],
        "min_interval": "10m",
        "webhook": {"secret": TOKEN, "id": "sync.id", "event": "type", "events": ["done"]},
    }
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump({"sources": [source]}))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(exporter_command(config, port), f"{url}/-/ready", log=tmp_path / "log"):
        hook = Running(url, tmp_path / "log")

        def scrape() -> Exposition:
            return Exposition(hook.http.get("/metrics").text)

        def event(sync_id: str) -> int:
            body = json.dumps({"type": "done", "sync": {"id": sync_id}}).encode()
            return hook.post("sq", body, {"Authorization": f"Bearer {TOKEN}"})

        first = scrape()
        assert first.state(sync_id="wh-1") == first.state(sync_id="wh-2") != "disabled"
        sim.override("sequin", "wh-1", {"status": "disabled"})
        sim.reset_requests()
        assert scrape().state(sync_id="wh-1") != "disabled", "served from the cached reading"
        assert sim.requests() == {}
        # A flood of events about one sync: one read at the next scrape, the other sync cached.
        for _ in range(20):
            assert event("wh-1") == 202
        m = scrape()
        assert m.state(sync_id="wh-1") == "disabled"
        assert m.state(sync_id="wh-2") == first.state(sync_id="wh-2")
        assert sum(sim.requests().values()) == 1, sim.requests()
        sim.reset_requests()
        assert scrape().state(sync_id="wh-1") == "disabled"
        assert sim.requests() == {}, "read once: the event is spent"
        # An event about a sync nobody watches is accepted, counted, and reads nothing.
        assert event("not-watched") == 202
        m = scrape()
        assert sim.requests() == {}
        assert m.value("sync_exporter_webhook_rejected_total", source="sq", reason="unmatched") == 1
        assert m.value("sync_exporter_webhook_events_total", source="sq", event="done") == 21
    sim.clear_override("sequin", "wh-1")


def test_nango_events_find_their_sync_by_connection_and_sync_name(sim: Sim, tmp_path: Path) -> None:
    for sync_id, name in (("wh-ng-orders", "orders"), ("wh-ng-users", "users")):
        body = {"id": sync_id, "connection_id": "c9", "name": name, "status": "SUCCESS"}
        response = sim.http.post(
            "/_sim/syncs/nango", json={"id": sync_id, "body": body, "integration": "it-wh"}
        )
        assert response.status_code in (200, 201), response.text
    source = {
        "name": "ng",
        "provider": "generic",
        "preset": "nango",
        "base_url": f"{sim.base}/nango",
        "auth": {"token": "sim-nango-secret-key"},
        "discover": True,
        "generic": {"list": {"params": {"provider_config_key": "it-wh"}}},
        "min_interval": "10m",
        "webhook": {"secret": NANGO_KEY},
    }
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump({"sources": [source]}))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(exporter_command(config, port), f"{url}/-/ready", log=tmp_path / "log"):
        hook = Running(url, tmp_path / "log")

        def scrape() -> Exposition:
            return Exposition(hook.http.get("/metrics").text)

        assert scrape().state(sync_id="wh-ng-orders") == "idle"
        for sync_id in ("wh-ng-orders", "wh-ng-users"):
            sim.override("nango", sync_id, {"status": "ERROR"})
        event = {
            "type": "sync",
            "connectionId": "c9",
            "syncName": "orders",
            "success": False,
            "startedAt": "2026-12-03T10:00:00.000Z",
            "failedAt": "2026-12-03T10:05:00.000Z",
        }
        # One run with two models: Nango sends one webhook per model.
        for model in ("Order", "Refund"):
            payload = json.dumps({**event, "model": model}).encode()
            assert hook.post("ng", payload, nango(payload)) == 202
        m = scrape()
        assert m.state(sync_id="wh-ng-orders") == "errored"
        runs = {
            labels["outcome"]: v for labels, v in m.find("sync_runs_total", sync_id="wh-ng-orders")
        }
        assert runs == {"succeeded": 0, "failed": 1}, "one run: two models, and the reading"
        assert m.state(sync_id="wh-ng-users") == "idle", "not named by the event: still cached"
        other = json.dumps({**event, "connectionId": "c10"}).encode()
        assert hook.post("ng", other, nango(other)) == 202
        m = scrape()
        assert m.value("sync_exporter_webhook_rejected_total", source="ng", reason="unmatched") == 1
    for sync_id in ("wh-ng-orders", "wh-ng-users"):
        sim.clear_override("nango", sync_id)


def test_runs_are_counted_once_from_events_and_readings(sim: Sim, tmp_path: Path) -> None:
    done = "2026-01-01T00:00:00Z"
    errored = {"status": "active", "health": {"status": "error"}}
    sim.create("sequin", "run-1", {**errored, "initial_backfill_completed_at": done})
    source = {
        "name": "rn",
        "provider": "sequin",
        "base_url": f"{sim.base}/sequin",
        "auth": {"token": "sim-sequin-key"},
        "syncs": ["run-1"],
        "webhook": {
            "secret": TOKEN,
            "id": "sync",
            "outcome": "result",
            "run": "run_id",
        },
    }
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump({"sources": [source]}))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(exporter_command(config, port), f"{url}/-/ready", log=tmp_path / "log"):
        hook = Running(url, tmp_path / "log")

        def runs() -> dict[str, float]:
            m = Exposition(hook.http.get("/metrics").text)
            return {
                labels["outcome"]: value
                for labels, value in m.find("sync_runs_total", source="rn", sync_id="run-1")
            }

        def event(result: str, run_id: str) -> None:
            body = json.dumps({"sync": "run-1", "result": result, "run_id": run_id}).encode()
            assert hook.post("rn", body, {}, token=TOKEN) == 202

        # Errored when the exporter starts: that failure is the past, not counted.
        assert runs() == {"succeeded": 0, "failed": 0}
        sim.override("sequin", "run-1", {"health": {"status": "healthy"}})
        assert runs() == {"succeeded": 0, "failed": 0}
        sim.override("sequin", "run-1", {"health": {"status": "error"}})
        assert runs() == {"succeeded": 0, "failed": 1}, "entering errored is a failed run"
        event("failed", "job-7")  # the same failure, now from the provider's webhook
        assert runs() == {"succeeded": 0, "failed": 1}, "event and reading: counted once"
        event("failed", "job-8")
        event("failed", "job-8")  # redelivered
        assert runs() == {"succeeded": 0, "failed": 2}
        event("succeeded", "job-9")
        event("running", "job-10")  # no outcome: no run
        assert runs() == {"succeeded": 1, "failed": 2}
        m = Exposition(hook.http.get("/metrics").text)
        assert m.value("sync_last_run_failed_timestamp_seconds", sync_id="run-1") > 1.7e9
        assert m.types["sync_runs"] == "counter"
    sim.clear_override("sequin", "run-1")
