"""What the exporter sends: the documented URL and headers per provider, and its User-Agent.

A plain http.server on 127.0.0.1 records each request, so this checks the bytes on the wire.
"""

from __future__ import annotations

import os
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from exporter import __version__
from tests.keys import signing_key_pem
from tests.procs import Recording, run_exporter


def test_requests_follow_each_providers_documentation(recording: Recording, tmp_path: Path) -> None:
    recorder = recording.url
    config = tmp_path / "config.yml"
    config.write_text(
        f"""
sources:
  - name: p
    provider: paragon
    base_url: {recorder}/
    auth: {{token: ptok}}
    syncs: [8f2c-91ab, "needs%escaping?"]
  - name: t
    provider: terminal
    base_url: {recorder}/tsp/v1
    auth: {{token: tsecret, connection_token: con_tkn_abc}}
    headers: {{X-Extra: "yes"}}
    syncs: [sync_01GV12VR4DJP70GD1ZBK0SDWFH]
  - name: s
    provider: sequin
    base_url: {recorder}
    auth: {{token: skey}}
    syncs: [c906b4a4-0cda-4f46-bd80-255f570c195d]
"""
    )
    result = run_exporter("--config.file", str(config), "--once")
    assert result.returncode == 0, result.stderr
    seen = dict(recording.seen)
    job = "/tsp/v1/syncs/sync_01GV12VR4DJP70GD1ZBK0SDWFH?expand=issues"
    assert set(seen) == {
        "/api/syncs",  # Paragon's list names the syncs, also when they are configured
        "/api/syncs/8f2c-91ab",
        "/api/syncs/needs%25escaping%3F",
        job,
        "/v1/syncs",  # Sequin's list carries every sync: one request reads them all
        # ... but this server answers the list with one sync object, not a list: each sync
        # is then read on its own.
        "/v1/syncs/c906b4a4-0cda-4f46-bd80-255f570c195d",
    }
    for headers in seen.values():
        assert headers["user-agent"] == f"sync-status-exporter/{__version__}"
        assert headers["accept"] == "application/json"
    assert seen["/api/syncs/8f2c-91ab"]["authorization"] == "Bearer ptok"
    terminal = seen[job]
    assert terminal["authorization"] == "Bearer tsecret"
    assert terminal["connection-token"] == "con_tkn_abc"
    assert terminal["x-extra"] == "yes"
    sequin = seen["/v1/syncs"]
    assert sequin["authorization"] == "Bearer skey"
    assert "connection-token" not in sequin


def test_paragon_tokens_are_minted_per_user(recording: Recording, tmp_path: Path) -> None:
    key = tmp_path / "signing-key.pem"
    key.write_text(signing_key_pem())
    config = tmp_path / "config.yml"
    config.write_text(
        f"""
sources:
  - name: p
    provider: paragon
    base_url: {recording.url}
    auth: {{signing_key_file: {key}, project_id: proj-1, token_ttl: 30m}}
    users: [alice, bob]
    syncs: [{{id: s-alice, user: alice}}, {{id: s-bob, user: bob}}]
"""
    )
    result = run_exporter("--config.file", str(config), "--once")
    assert result.returncode == 0, result.stderr
    key_object = load_pem_private_key(signing_key_pem().encode(), password=None)
    assert isinstance(key_object, RSAPrivateKey)
    public = key_object.public_key()
    subjects: dict[str, set[str]] = {}
    for path, headers in recording.seen:
        token = headers["authorization"].removeprefix("Bearer ")
        claims = jwt.decode(token, public, algorithms=["RS256"], audience="useparagon.com/proj-1")
        assert claims["exp"] - claims["iat"] == 1800
        subjects.setdefault(claims["sub"], set()).add(path)
    # One listing per user (their own token), and each sync read with its user's token.
    assert subjects == {
        "alice": {"/api/syncs", "/api/syncs/s-alice"},
        "bob": {"/api/syncs", "/api/syncs/s-bob"},
    }
    assert 'user="alice"' in result.stdout
    assert 'sync_exporter_tokens_minted_total{source="p"} 2.0' in result.stdout
    assert signing_key_pem().splitlines()[1] not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("base_url", "audience"),
    [
        # Cloud: the docs' `useparagon.com/<project id>`, whatever the service's host.
        ("http://sync.useparagon.com", "useparagon.com/proj-1"),
        # On-prem: the instance's hostname, less the Managed Sync service's own label.
        ("http://ms-sync.paragon.acme.example", "paragon.acme.example/proj-1"),
        ("http://sync.paragon.acme.example:8080/", "paragon.acme.example/proj-1"),
        ("http://paragon.acme.example", "paragon.acme.example/proj-1"),
    ],
)
def test_the_default_paragon_audience_names_the_instance_of_base_url(
    recording: Recording, tmp_path: Path, base_url: str, audience: str
) -> None:
    key = tmp_path / "signing-key.pem"
    key.write_text(signing_key_pem())
    config = tmp_path / "config.yml"
    config.write_text(
        "sources: [{name: p, provider: paragon, base_url: '" + base_url + "',"
        f" auth: {{signing_key_file: {key}, project_id: proj-1}},"
        " syncs: [{id: s-alice, user: alice}]}]\n"
    )
    # The recording server plays the proxy, so any host name reaches it.
    clean = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    result = run_exporter(
        "--config.file",
        str(config),
        "--once",
        env={**clean, "HTTP_PROXY": recording.url},
        inherit_env=False,
    )
    assert result.returncode == 0, result.stderr
    tokens = [h["authorization"].removeprefix("Bearer ") for _, h in recording.seen]
    assert tokens, result.stderr
    for token in tokens:
        assert jwt.decode(token, options={"verify_signature": False})["aud"] == audience
