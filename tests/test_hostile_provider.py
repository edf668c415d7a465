"""A provider that answers far too much, plainly or as a gzip bomb, costs one sync, no memory."""

from __future__ import annotations

import contextlib
import gzip
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.exposition import Exposition
from tests.procs import run_exporter

HUGE = b'{"status": "ACTIVE", "pad": "' + b"x" * (8 * 1024 * 1024) + b'"}'
BOMB = gzip.compress(HUGE, compresslevel=9)


class Hostile(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body, extra = {
            "/api/syncs/huge": (HUGE, {}),
            "/api/syncs/bomb": (BOMB, {"Content-Encoding": "gzip"}),
            "/api/syncs/chunked-huge": (HUGE, {"chunked": "1"}),
            "/api/syncs": (b'{"data": []}', {}),
        }.get(self.path, (b'{"status": "ACTIVE", "summary": {}}', {}))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if extra.pop("chunked", None):
            self.send_header("Connection", "close")
        else:
            self.send_header("Content-Length", str(len(body)))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hostile() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_oversized_bodies_are_bad_responses(hostile: str, tmp_path: Path) -> None:
    assert len(BOMB) < 64 * 1024
    config = tmp_path / "config.yml"
    config.write_text(
        f"sources: [{{name: h, provider: paragon, base_url: '{hostile}', auth: {{token: t}},"
        " syncs: [huge, bomb, chunked-huge, fine]}]"
    )
    result = run_exporter("--config.file", str(config), "--once")
    assert result.returncode == 0, result.stderr
    m = Exposition(result.stdout)
    for sync_id in ("huge", "bomb", "chunked-huge"):
        assert m.value("sync_up", sync_id=sync_id) == 0
    assert m.value("sync_up", sync_id="fine") == 1
    assert m.value("sync_exporter_errors_total", source="h", reason="bad_response") == 3
    assert "body larger than 4194304 bytes" in result.stderr


def test_bad_ca_bundle_is_a_start_up_error(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text("sources: [{name: a, provider: paragon, auth: {token: t}, syncs: [x]}]")
    for mode in ("--config.check", "--once"):
        result = run_exporter(
            "--config.file",
            str(config),
            mode,
            env={"SSL_CERT_FILE": str(tmp_path / "missing.pem"), "PATH": "/usr/bin:/bin"},
            inherit_env=False,
        )
        assert result.returncode == 1
        assert "cannot load the CA certificates for provider TLS" in result.stderr
        assert "Traceback" not in result.stderr
