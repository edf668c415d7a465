"""Start the real programs the tests talk to, on 127.0.0.1, and stop them afterwards."""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(
    url: str,
    timeout: float,
    process: subprocess.Popen[bytes] | None = None,
    headers: dict[str, str] | None = None,
    **options: Any,
) -> None:
    """Poll `url` until it answers 200, failing early if `process` died.

    `options` go to httpx.get (verify=, auth= for TLS and basic auth).
    """
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"process exited with {process.returncode} before {url} answered")
        try:
            if httpx.get(url, timeout=1.0, headers=headers, **options).status_code == 200:
                return
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {timeout}s ({last})")


@contextmanager
def running(
    command: Sequence[str],
    ready_url: str,
    *,
    timeout: float = 30.0,
    log: Path | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    ready_headers: dict[str, str] | None = None,
    nofile: tuple[int, int] | None = None,
    **ready_options: Any,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a program until the block ends; its output goes to `log` for post-mortems.

    `nofile` sets the program's (soft, hard) limit of open files, as systemd or a shell would.
    """
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115

    def limit() -> None:
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, nofile)

    process = subprocess.Popen(
        list(command),
        stdout=out,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        start_new_session=True,
        preexec_fn=limit if nofile is not None else None,
    )
    try:
        try:
            wait_for(ready_url, timeout, process, ready_headers, **ready_options)
        except AssertionError:
            if log:
                sys.stderr.write(log.read_text(errors="replace")[-4000:])
            raise
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if not isinstance(out, int):
            out.close()


def exporter_command(config: Path, port: int, *extra: str) -> list[str]:
    """The exporter as users start it."""
    return [
        sys.executable,
        "-m",
        "exporter",
        "--config.file",
        str(config),
        "--web.listen-address",
        f"127.0.0.1:{port}",
        *extra,
    ]


class Recording:
    """A plain http.server on 127.0.0.1 answering an active sync, noting every request."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []
        recording = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                recording.seen.append((self.path, headers))
                body = json.dumps({"status": "ACTIVE", "summary": {}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def paths(self) -> list[str]:
        """The request targets, in order (full URLs when the server acts as a proxy)."""
        return [path for path, _ in self.seen]


@contextmanager
def recording_server() -> Iterator[Recording]:
    """Serve until the block ends; the tests read `.seen` afterwards."""
    recording = Recording()
    thread = threading.Thread(target=recording._server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recording
    finally:
        recording._server.shutdown()
        recording._server.server_close()


def run_exporter(
    *args: str, env: dict[str, str] | None = None, inherit_env: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the exporter's command line to completion (--once, --config.check), as users do.

    `env` is added to this process's environment, or replaces it with inherit_env=False.
    """
    environment = {**os.environ, **(env or {})} if inherit_env else dict(env or {})
    return subprocess.run(
        [sys.executable, "-m", "exporter", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
    )
