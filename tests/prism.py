"""Stoplight Prism serving a provider's official OpenAPI spec, and how the tests read the result.

The specs are third-party texts, never in the repository: each is read from its environment
variable, else from `shared/specs/` beside the clone (skipped with that reason outside CI).
"""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import yaml

from exporter.exposition.metrics import ERROR_REASONS
from tests.exposition import Exposition
from tests.procs import free_port, run_exporter, running
from tests.tools import ROOT, require, require_file

SPECS = ROOT.parent / "shared" / "specs"
QUIET = {"SCARF_ANALYTICS": "false", "DO_NOT_TRACK": "1"}
# One debug line per sync that could not be read, naming its reason.
_DOWN = re.compile(r'msg="cannot read sync status" source=(\S+) sync_id=(\S+) reason=(\S+)')


def spec_file(provider: str, filename: str) -> Path:
    """The provider's spec, from $SYNC_EXPORTER_<PROVIDER>_SPEC or `shared/specs/`."""
    variable = f"SYNC_EXPORTER_{provider.upper()}_SPEC"
    return require_file(f"{provider.capitalize()}'s OpenAPI spec", variable, SPECS / filename)


@contextmanager
def prism(
    mode: str,
    spec: Path,
    ready_path: str,
    ready_headers: dict[str, str],
    log_dir: Path,
    upstream: str | None = None,
) -> Iterator[str]:
    """Prism in `mode`: a mock refuses a request that breaks the spec with a 4xx; a proxy to
    `upstream` runs with `--errors`, so an answer that breaks it becomes an error too (in a
    mock, `--errors` would refuse the spec's own invalid examples)."""
    prism_bin = require("prism")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [prism_bin, mode, "-h", "127.0.0.1", "-p", str(port), str(spec)]
    if upstream is not None:
        command += [upstream, "--errors"]
    log = log_dir / f"prism-{mode}-{spec.stem}.log"
    with running(
        command, base + ready_path, timeout=120, log=log, env=QUIET, ready_headers=ready_headers
    ):
        yield base


class Pinned:
    """A loopback pass-through to Prism that answers a repeated request from its first answer
    until `clear()`, so a discovery and the collection after it see the same random payload;
    every distinct request still reaches Prism, which validates it."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.answers: dict[str, tuple[int, str, bytes]] = {}
        self.statuses: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=30.0, trust_env=False)
        pinned = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, kind, body = pinned.answer(self.path, dict(self.headers.items()))
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def answer(self, path: str, headers: dict[str, str]) -> tuple[int, str, bytes]:
        """Prism's answer to `path`, asked once per round."""
        with self._lock:
            if path in self.answers:
                return self.answers[path]
        skip = {"host", "connection", "accept-encoding", "content-length"}
        sent = {k: v for k, v in headers.items() if k.lower() not in skip}
        response = self._client.get(self.upstream + path, headers=sent)
        kind = response.headers.get("content-type", "application/json")
        answer = (response.status_code, kind, response.content)
        with self._lock:
            self.answers.setdefault(path, answer)
            self.statuses.append((path, response.status_code))
            return self.answers[path]

    def clear(self) -> None:
        """Start a new round: the next requests get new payloads."""
        with self._lock:
            self.answers.clear()
            self.statuses.clear()


@contextmanager
def pinned(upstream: str) -> Iterator[Pinned]:
    """A Pinned pass-through to `upstream`, served until the block ends."""
    server = Pinned(upstream)
    thread = threading.Thread(target=server._server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server._server.shutdown()
        server._server.server_close()
        server._client.close()


class Run:
    """One `--once` run of the exporter: its exposition and its debug log."""

    def __init__(self, result: subprocess.CompletedProcess[str]) -> None:
        assert result.returncode == 0, result.stderr[-3000:]
        assert "Traceback" not in result.stderr, result.stderr[-3000:]
        self.text = result.stdout
        self.log = result.stderr
        self.m = Exposition(result.stdout)

    def up(self, source: str) -> dict[str, bool]:
        """Each sync's sync_up."""
        return {
            labels["sync_id"]: value == 1 for labels, value in self.m.find("sync_up", source=source)
        }

    def down_reasons(self, source: str) -> dict[str, str]:
        """The reason the log names for each sync that could not be read."""
        return {sync: reason for src, sync, reason in _DOWN.findall(self.log) if src == source}


def once(path: Path, sources: list[dict[str, Any]]) -> Run:
    """The exporter's `--once` on `sources`, at debug level so each down sync is named."""
    path.write_text(yaml.safe_dump({"sources": sources}, sort_keys=False))
    return Run(run_exporter("--config.file", str(path), "--once", "--log.level", "debug"))


def refused(run: Run, source: str) -> list[str]:
    """Every request of `source` that did not answer 200 (Prism refuses a request that breaks the
    spec with 4xx), as `code x count`."""
    return [
        f"{labels['code']} x {value:g}"
        for labels, value in run.m.find("sync_exporter_upstream_requests_total", source=source)
        if labels["code"] != "200" and value > 0
    ]


def check_read(run: Run, source: str) -> dict[str, str]:
    """Every sync of `source` is up with one canonical state, or down with a reason the log
    names (never a crash of the parser); returns the states of the syncs up."""
    assert not refused(run, source), (refused(run, source), run.log[-3000:])
    assert "unreadable status (" not in run.log, run.log[-3000:]
    reasons = run.down_reasons(source)
    states = {}
    for sync_id, is_up in run.up(source).items():
        if is_up:
            states[sync_id] = run.m.state(source=source, sync_id=sync_id)
        else:
            assert reasons.get(sync_id) in ERROR_REASONS, (sync_id, reasons, run.log[-3000:])
    return states


def check_exposition(run: Run) -> None:
    """promtool accepts the exposition."""
    promtool = require("promtool")
    result = subprocess.run(
        [promtool, "check", "metrics"], input=run.text.encode(), capture_output=True, timeout=60
    )
    assert result.returncode == 0, (result.stdout + result.stderr).decode()[-2000:]
