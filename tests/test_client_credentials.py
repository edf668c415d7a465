"""OAuth2 client credentials for the generic provider: the config refused field by field with
the secret never shown, and the real exporter trading an Airbyte application's id and secret
for short-lived tokens at the simulator over real HTTP: one token per source, minted again
before it expires and after a 401, counted, and never in any output."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
import yaml

from exporter.config import ConfigError, parse_config
from exporter.simulator.providers import airbyte
from tests.conftest import Sim
from tests.exposition import Exposition
from tests.procs import exporter_command, free_port, run_exporter, running

SECRET = airbyte.CLIENT_SECRET
TOKEN_PATH = "/airbyte/v1/applications/token"


def problems(text: str) -> list[str]:
    """Every problem the loader reports for `text`, without the file name."""
    with pytest.raises(ConfigError) as raised:
        parse_config(text, "ab.yml")
    return [line.removeprefix("ab.yml: ") for line in str(raised.value).splitlines()]


def config_text(credentials: str, preset: bool = True) -> str:
    """One Airbyte source (or a plain generic one) whose auth is `credentials` (YAML flow)."""
    if preset:
        head = "    preset: airbyte\n"
    else:
        head = (
            "    base_url: https://api.example.com\n"
            "    generic: {detail: '/x/{id}', fields: {status: s}}\n"
        )
    return (
        "sources:\n"
        "  - name: ab\n"
        "    provider: generic\n"
        f"{head}"
        f"    auth: {{client_credentials: {credentials}}}\n"
        "    syncs: [c1]\n"
    )


@pytest.mark.parametrize(
    ("credentials", "preset", "expected"),
    [
        (
            "{client_secret: s}",
            True,
            "sources[0].auth.client_credentials.client_id: Field required",
        ),
        ("{client_id: ''}", True, "sources[0].auth.client_credentials.client_id: must be 1 to"),
        ("{client_id: a}", True, "sources[0].auth.client_credentials: client_secret or"),
        (
            "{client_id: a, client_secret: s, client_secret_file: /x}",
            True,
            "sources[0].auth.client_credentials.client_secret_file: set either",
        ),
        (
            "{client_id: a, client_secret_file: /nonexistent/secret}",
            True,
            "sources[0].auth.client_credentials.client_secret_file: cannot read "
            "client_secret_file '/nonexistent/secret'",
        ),
        (
            "{client_id: a, client_secret: s}",
            False,
            "sources[0].auth.client_credentials.token_url: is required",
        ),
        (
            "{client_id: a, client_secret: s, token_url: 'ftp://h/t'}",
            False,
            "sources[0].auth.client_credentials.token_url: must be an http(s) URL",
        ),
        (
            "{client_id: a, client_secret: s, token_url: 'https://me:pw-secret-1@h/t'}",
            False,
            "sources[0].auth.client_credentials.token_url: must not hold credentials "
            "(user:password@): give",
        ),
        (
            "{client_id: a, client_secret: s, token_url: '{base_url}token'}",
            False,
            "sources[0].auth.client_credentials.token_url: must go on with '/'",
        ),
        (
            "{client_id: a, client_secret: s, body: xml}",
            True,
            "sources[0].auth.client_credentials.body: Input should be 'json' or 'form'",
        ),
    ],
)
def test_bad_client_credentials_are_named_by_field(
    credentials: str, preset: bool, expected: str
) -> None:
    found = problems(config_text(credentials, preset))
    assert any(line.startswith(expected) for line in found), found
    assert all("secret-1" not in line for line in found)


def test_client_credentials_and_another_way_to_sign_in_are_refused_together() -> None:
    text = config_text("{client_id: a, client_secret: s}").replace(
        "    auth: {client_credentials:", "    auth: {token: t, client_credentials:"
    )
    found = problems(text)
    assert any(line.startswith("sources[0].auth: set either client_credentials") for line in found)


def test_the_presets_token_url_follows_base_url_and_basic_auth_replaces_it() -> None:
    text = config_text("{client_id: a, client_secret: s}").replace(
        "    preset: airbyte\n",
        "    preset: airbyte\n    base_url: https://ab.internal/api/public/v1\n",
    )
    (source,) = parse_config(text, "ab.yml").sources
    spec = source.auth.client_credentials
    assert spec is not None and spec.body == "json"
    assert spec.url(source.base_url) == "https://ab.internal/api/public/v1/applications/token"
    basic = text.replace(
        "auth: {client_credentials: {client_id: a, client_secret: s}}",
        "auth: {username: u, password: p}",
    )
    (source,) = parse_config(basic, "ab.yml").sources
    assert source.auth.client_credentials is None


def test_the_secret_is_never_shown_in_reprs_or_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSE_AIRBYTE_SECRET", "hunter2-airbyte-secret")
    text = config_text("{client_id: a, client_secret: '${SSE_AIRBYTE_SECRET}'}")
    config = parse_config(text, "ab.yml")
    assert "hunter2" not in repr(config) and "hunter2" not in str(config)
    # The secret put in the wrong field is named by its variable, never printed.
    wrong = config_text("{client_id: a, client_secret: s, token_url: '${SSE_AIRBYTE_SECRET}'}")
    (line,) = problems(wrong)
    assert "hunter2" not in line and "<value from ${SSE_AIRBYTE_SECRET}>" in line
    spaced = config_text("{client_id: a, client_secret: 'two words ${SSE_AIRBYTE_SECRET}'}")
    assert all("hunter2" not in line for line in problems(spaced))


def test_config_check_never_prints_the_secret(tmp_path: Path) -> None:
    secret = tmp_path / "airbyte-client-secret"
    secret.write_text("file-secret-value-123\n")
    config = tmp_path / "ab.yml"
    config.write_text(config_text(f"{{client_id: a, client_secret_file: '{secret}'}}"))
    result = run_exporter("--config.file", str(config), "--config.check")
    assert result.returncode == 0, result.stderr
    assert "file-secret-value" not in result.stdout + result.stderr
    config.write_text(
        config_text(f"{{client_id: a, client_secret_file: '{secret}', token_url: 'x'}}")
    )
    result = run_exporter("--config.file", str(config), "--config.check")
    assert result.returncode == 1
    assert f"{config}: sources[0].auth.client_credentials.token_url: must be" in result.stderr
    assert "file-secret-value" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


# --- against the simulator --------------------------------------------------------------------


def application(sim: Sim, **change: Any) -> dict[str, Any]:
    """The simulator's Airbyte application, changed as asked (lifetime, expiry)."""
    if change:
        response = sim.http.put("/_sim/airbyte/application", json=change)
    else:
        response = sim.http.get("/_sim/airbyte/application")
    assert response.status_code == 200, response.text
    shown: dict[str, Any] = response.json()
    return shown


def airbyte_source(sim: Sim, secret_file: Path, **extra: Any) -> dict[str, Any]:
    """The preset with the simulator's application id and its secret in a file."""
    return {
        "name": "ab",
        "provider": "generic",
        "preset": "airbyte",
        "base_url": f"{sim.base}/airbyte/v1",
        "auth": {
            "client_credentials": {
                "client_id": airbyte.CLIENT_ID,
                "client_secret_file": str(secret_file),
            }
        },
        "discover": True,
        **extra,
    }


@pytest.fixture
def fresh(sim: Sim) -> Iterator[Sim]:
    """The simulator back to its catalogue, its tokens forgotten, its lifetime the default."""
    sim.http.post("/_sim/reset")
    yield sim
    sim.http.post("/_sim/reset")


def write(tmp_path: Path, sources: list[dict[str, Any]], secret: str = SECRET) -> Path:
    (tmp_path / "secret").write_text(secret + "\n")
    path = tmp_path / "ab.yml"
    path.write_text(yaml.safe_dump({"sources": sources}, sort_keys=False))
    return path


def test_one_token_serves_every_read_and_nothing_shows_it(fresh: Sim, tmp_path: Path) -> None:
    config = write(tmp_path, [airbyte_source(fresh, tmp_path / "secret")])
    result = run_exporter("--config.file", str(config), "--once", "--log.level", "debug")
    assert result.returncode == 0, result.stderr
    m = Exposition(result.stdout)
    ups = m.find("sync_up", source="ab")
    assert ups and all(value == 1 for _, value in ups), ups
    assert m.value("sync_exporter_tokens_minted_total", source="ab") == 1
    assert m.value("sync_exporter_token_mint_failures_total", source="ab") == 0
    requests = fresh.requests()
    assert requests[TOKEN_PATH] == 1
    assert application(fresh)["issued"] == 1
    # The token request is one of the source's requests, counted like the others.
    counted = sum(
        value for _, value in m.find("sync_exporter_upstream_requests_total", source="ab")
    )
    assert counted == sum(requests.values())
    output = result.stdout + result.stderr
    assert SECRET not in output and "sim-airbyte-access-" not in output


def test_a_refused_secret_marks_every_sync_down_and_counts_the_failure(
    fresh: Sim, tmp_path: Path
) -> None:
    syncs = [connection.id for connection in airbyte.demo_connections()]
    source = airbyte_source(fresh, tmp_path / "secret", discover=False, syncs=syncs)
    config = write(tmp_path, [source], secret="wrong-secret-7")
    result = run_exporter("--config.file", str(config), "--once", "--log.level", "debug")
    assert result.returncode == 0, result.stderr
    m = Exposition(result.stdout)
    ups = m.find("sync_up", source="ab")
    assert len(ups) == len(syncs) and all(value == 0 for _, value in ups), ups
    failures = m.value("sync_exporter_token_mint_failures_total", source="ab")
    assert m.value("sync_exporter_tokens_minted_total", source="ab") == 0
    requests = fresh.requests()
    assert not requests.get("/airbyte/v1/jobs"), "no read goes out without a token"
    # The listing and the reads waiting on a refused mint share it: not one request per sync.
    assert 1 <= requests[TOKEN_PATH] == failures <= 2
    assert "token request failed: HTTP 401" in result.stderr
    assert "wrong-secret-7" not in result.stdout + result.stderr


def scrape(url: str) -> Exposition:
    return Exposition(httpx.get(f"{url}/metrics", timeout=30).text)


@contextmanager
def serving(config: Path) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = config.parent / "exporter.log"
    command = exporter_command(config, port, "--log.level", "debug")
    with running(command, f"{url}/-/ready", log=log):
        yield url
    assert SECRET not in log.read_text() and "sim-airbyte-access-" not in log.read_text()


def all_up(m: Exposition) -> bool:
    ups = m.find("sync_up", source="ab")
    return bool(ups) and all(value == 1 for _, value in ups)


def test_a_token_is_minted_again_shortly_before_it_expires(fresh: Sim, tmp_path: Path) -> None:
    application(fresh, expires_in=2)
    config = write(tmp_path, [airbyte_source(fresh, tmp_path / "secret")])
    with serving(config) as url:
        first = scrape(url)
        assert all_up(first)
        minted = first.value("sync_exporter_tokens_minted_total", source="ab")
        assert scrape(url).value("sync_exporter_tokens_minted_total", source="ab") == minted
        time.sleep(2.2)
        later = scrape(url)
        assert all_up(later)
        assert later.value("sync_exporter_tokens_minted_total", source="ab") == minted + 1
        assert not later.has("sync_exporter_upstream_requests_total", source="ab", code="401"), (
            "the token was replaced before the simulator refused it"
        )


def test_a_refused_token_is_replaced_once_and_the_read_tried_again(
    fresh: Sim, tmp_path: Path
) -> None:
    application(fresh, expires_in=3600)
    config = write(tmp_path, [airbyte_source(fresh, tmp_path / "secret")])
    with serving(config) as url:
        first = scrape(url)
        assert all_up(first)
        assert first.value("sync_exporter_tokens_minted_total", source="ab") == 1
        application(fresh, expire=True)
        later = scrape(url)
        assert all_up(later), "every read got a 401, a new token, and its answer"
        assert later.value("sync_exporter_tokens_minted_total", source="ab") == 2, (
            "concurrent reads refused together share one new token"
        )
        assert later.has("sync_exporter_upstream_requests_total", source="ab", code="401")
        # A token refused again right after minting is not minted a third time in that read.
        fresh.fault("airbyte", airbyte.WAREHOUSE, {"status": 401, "times": 2})
        refused = scrape(url)
        ((labels, value),) = refused.find("sync_up", source="ab", sync_id=airbyte.WAREHOUSE)
        assert value == 0, labels
        assert refused.value("sync_exporter_tokens_minted_total", source="ab") == 3


# --- the RFC 6749 form body, against a token server of our own --------------------------------


class TokenServer:
    """A loopback OAuth2 server: POST /token (form, Basic client auth), GET /x/{id} (Bearer)."""

    def __init__(self) -> None:
        self.answer: Any = None
        self.posts: list[tuple[dict[str, str], str]] = []
        self.gets: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length).decode()
                headers = {k.lower(): v for k, v in self.headers.items()}
                server.posts.append((headers, body))
                given = server.answer
                if given is None:
                    given = {"access_token": f"form-token-{len(server.posts)}", "expires_in": 600}
                self._json(given)

            def do_GET(self) -> None:
                server.gets.append(self.headers.get("Authorization", ""))
                self._json({"s": "ok"})

            def _json(self, body: Any) -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"


@pytest.fixture
def token_server() -> Iterator[TokenServer]:
    server = TokenServer()
    thread = threading.Thread(target=server.http.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.http.shutdown()
        server.http.server_close()


def test_the_form_body_follows_rfc_6749(token_server: TokenServer, tmp_path: Path) -> None:
    config = tmp_path / "form.yml"
    source = {
        "name": "f",
        "provider": "generic",
        "base_url": token_server.url,
        "auth": {
            "client_credentials": {
                "client_id": "app:1",
                "client_secret": "s&cret/=",
                "token_url": "{base_url}/token",
            }
        },
        "syncs": ["one", "two"],
        "generic": {"detail": "/x/{id}", "fields": {"status": "s"}, "states": {"ok": "idle"}},
    }
    config.write_text(yaml.safe_dump({"sources": [source]}))
    result = run_exporter("--config.file", str(config), "--once")
    assert result.returncode == 0, result.stderr
    ((headers, body),) = token_server.posts
    assert body == "grant_type=client_credentials"
    assert headers["content-type"] == "application/x-www-form-urlencoded"
    scheme, _, encoded = headers["authorization"].partition(" ")
    user, _, password = base64.b64decode(encoded).decode().partition(":")
    assert scheme == "Basic" and (unquote(user), unquote(password)) == ("app:1", "s&cret/=")
    assert token_server.gets == ["Bearer form-token-1"] * 2
    assert "s&cret" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ({"token_type": "Bearer", "expires_in": 60}, "no access_token string"),
        ({"access_token": "", "expires_in": 60}, "no access_token string"),
        ({"access_token": "a b", "expires_in": 60}, "cannot go in a header"),
        ({"access_token": "t", "token_type": "mac"}, "token_type is not Bearer"),
        ({"access_token": "t", "expires_in": -5}, "expires_in is not a positive number"),
        ({"access_token": "t", "expires_in": "soon"}, "expires_in is not a number"),
        ([1, 2], "not a JSON object"),
        (b"<html>", "token request failed: body is not JSON"),
    ],
)
def test_an_unusable_token_answer_fails_the_reads_and_is_counted(
    token_server: TokenServer, tmp_path: Path, answer: Any, why: str
) -> None:
    token_server.answer = answer
    config = tmp_path / "form.yml"
    source = {
        "name": "f",
        "provider": "generic",
        "base_url": token_server.url,
        "auth": {
            "client_credentials": {
                "client_id": "app",
                "client_secret": "unusable-secret-9",
                "token_url": f"{token_server.url}/oauth/token",
            }
        },
        "syncs": ["one", "two", "three"],
        "generic": {"detail": "/x/{id}", "fields": {"status": "s"}, "states": {"ok": "idle"}},
    }
    config.write_text(yaml.safe_dump({"sources": [source]}))
    result = run_exporter("--config.file", str(config), "--once", "--log.level", "debug")
    assert result.returncode == 0, result.stderr
    m = Exposition(result.stdout)
    assert all(value == 0 for _, value in m.find("sync_up", source="f"))
    assert m.value("sync_exporter_token_mint_failures_total", source="f") == len(token_server.posts)
    assert 1 <= len(token_server.posts) <= 2 and token_server.gets == []
    assert why in result.stderr
    assert "unusable-secret-9" not in result.stdout + result.stderr


def test_token_requests_spend_the_sources_request_budget(fresh: Sim, tmp_path: Path) -> None:
    syncs = [airbyte.WAREHOUSE, airbyte.BILLING]
    source = airbyte_source(
        fresh, tmp_path / "secret", discover=False, syncs=syncs, max_requests_per_second=1
    )
    config = write(tmp_path, [source])
    document = yaml.safe_load(config.read_text())
    config.write_text(yaml.safe_dump({**document, "collector": {"default_timeout": "15s"}}))
    result = run_exporter("--config.file", str(config), "--once")
    assert result.returncode == 0, result.stderr
    seen = fresh.http.get("/_sim/requests").json()
    assert seen["paths"][TOKEN_PATH] == 1
    assert seen["providers"]["airbyte"] >= 4, seen["paths"]
    # The token request, the listing and the job requests: never two within one second.
    assert seen["max_per_second"]["airbyte"] == 1, seen["per_second"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"client_id": airbyte.CLIENT_ID, "client_secret": SECRET}, 200),  # older docs: no grant
        ({"client_id": airbyte.CLIENT_ID, "client_secret": SECRET, "grant-type": "password"}, 400),
        (
            {
                "client_id": airbyte.CLIENT_ID,
                "client_secret": "no",
                "grant-type": "client_credentials",
            },
            401,
        ),
        ({"client_id": "other", "client_secret": SECRET, "grant-type": "client_credentials"}, 401),
    ],
)
def test_the_simulators_token_exchange(fresh: Sim, body: dict[str, Any], status: int) -> None:
    """Airbyte's documented body is served; the guesses (grant-type optional, 401 for a wrong
    secret) both ways."""
    response = fresh.http.post(TOKEN_PATH, json=body)
    assert response.status_code == status, response.text
    if status == 200:
        answer = response.json()
        assert set(answer) == {"access_token", "token_type", "expires_in"}
        assert answer["token_type"] == "Bearer" and answer["expires_in"] == 180
        jobs = fresh.http.get(
            "/airbyte/v1/connections",
            headers={"Authorization": f"Bearer {answer['access_token']}"},
        )
        assert jobs.status_code == 200
    bad = fresh.http.get("/airbyte/v1/connections", headers={"Authorization": "Bearer forged"})
    assert bad.status_code == 401


def test_the_simulator_refuses_a_form_body_and_expired_tokens(fresh: Sim) -> None:
    form = {"client_id": airbyte.CLIENT_ID, "client_secret": SECRET}
    assert fresh.http.post(TOKEN_PATH, data=form).status_code == 400
    application(fresh, expires_in=0.5)
    token = fresh.http.post(TOKEN_PATH, json=form).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert fresh.http.get("/airbyte/v1/connections", headers=headers).status_code == 200
    time.sleep(0.7)
    expired = fresh.http.get("/airbyte/v1/connections", headers=headers)
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]
