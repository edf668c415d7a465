"""What the exporter sends: the documented URL and headers per provider, and its User-Agent.

A plain http.server on 127.0.0.1 records each request, so this checks the bytes on the wire.
"""

from __future__ import annotations

from pathlib import Path

from exporter import __version__
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
    syncs: [8f2c-91ab, "needs/escaping"]
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
    assert set(seen) == {
        "/api/syncs/8f2c-91ab",
        "/api/syncs/needs%2Fescaping",
        "/tsp/v1/syncs/sync_01GV12VR4DJP70GD1ZBK0SDWFH",
        "/v1/syncs/c906b4a4-0cda-4f46-bd80-255f570c195d",
    }
    for headers in seen.values():
        assert headers["user-agent"] == f"sync-status-exporter/{__version__}"
        assert headers["accept"] == "application/json"
    assert seen["/api/syncs/8f2c-91ab"]["authorization"] == "Bearer ptok"
    terminal = seen["/tsp/v1/syncs/sync_01GV12VR4DJP70GD1ZBK0SDWFH"]
    assert terminal["authorization"] == "Bearer tsecret"
    assert terminal["connection-token"] == "con_tkn_abc"
    assert terminal["x-extra"] == "yes"
    sequin = seen["/v1/syncs/c906b4a4-0cda-4f46-bd80-255f570c195d"]
    assert sequin["authorization"] == "Bearer skey"
    assert "connection-token" not in sequin
