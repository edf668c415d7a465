"""What the exporter sends: the documented URL and headers per provider, and its User-Agent.

A plain http.server on 127.0.0.1 records each request, so this checks the bytes on the wire.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from exporter import __version__


class Recorder(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, dict[str, str]]]] = []

    def do_GET(self) -> None:
        Recorder.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
        body = json.dumps({"status": "ACTIVE", "summary": {}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[str]:
    Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_requests_follow_each_providers_documentation(recorder: str, tmp_path: Path) -> None:
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
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "--config.file", str(config), "--once"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    seen = dict(Recorder.seen)
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
