"""Slow webhook clients (slowloris) against the real exporter: a body trickled a byte at a time
is cut off at the body's read deadline, and while it trickles the other endpoints answer.

Bounds are generous on purpose (the machine running the tests is shared): what is checked is
that the slow requests end long before their bodies would, and that nothing waits on them.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from exporter.web.webhooks import READ_TIMEOUT
from tests.exposition import Exposition
from tests.procs import exporter_command, free_port, running
from tests.test_hostile_clients import closed_by_peer, sockets_of

TOKEN = "slow-webhook-token-51"
# At a byte a second this body would take over an hour to arrive.
BODY_LENGTH = 4000
# Far beyond READ_TIMEOUT, but far short of the body's hour.
CUT_OFF_WITHIN = READ_TIMEOUT + 60


def config(directory: Path) -> Path:
    """A source with a webhook whose provider is never reached (no scrape reads it)."""
    path = directory / "config.yml"
    path.write_text(
        "sources: [{name: hook, provider: terminal, base_url: 'http://127.0.0.1:1',"
        f" auth: {{token: t, connection_token: c}}, syncs: [j1], webhook: {{secret: {TOKEN}}}}}]\n"
    )
    return path


def headers(port: int) -> bytes:
    return (
        f"POST /webhooks/hook?token={TOKEN} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {BODY_LENGTH}\r\n\r\n"
    ).encode()


class Trickle:
    """Clients that send whole headers, then their body a byte a second, until cut off."""

    def __init__(self, port: int, count: int) -> None:
        self.started = time.monotonic()
        self.clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
        for client in self.clients:
            client.sendall(headers(port))
        self.closed: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set() and len(self.closed) < len(self.clients):
            for i, client in enumerate(self.clients):
                if i in self.closed:
                    continue
                try:
                    if closed_by_peer(client):
                        self.closed[i] = time.monotonic() - self.started
                    else:
                        client.send(b"{")
                except OSError:
                    self.closed[i] = time.monotonic() - self.started
            self._stop.wait(1.0)

    def wait_all_closed(self, within: float) -> None:
        deadline = time.monotonic() + within
        while len(self.closed) < len(self.clients) and time.monotonic() < deadline:
            time.sleep(0.2)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for client in self.clients:
            client.close()


@contextmanager
def trickling(port: int, count: int) -> Iterator[Trickle]:
    trickle = Trickle(port, count)
    try:
        yield trickle
    finally:
        trickle.stop()


def test_slow_webhook_bodies_are_cut_off_while_the_other_endpoints_answer(workdir: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = workdir / "exporter.log"
    command = exporter_command(config(workdir), port)
    with running(command, f"{url}/-/healthy", log=log), trickling(port, 20) as slow:
        time.sleep(2)
        assert not slow.closed, f"cut off before the deadline: {slow.closed}"
        # While 20 bodies trickle in, the exporter answers everything else at once.
        for path in ("/-/healthy", "/metrics", "/-/healthy"):
            assert httpx.get(f"{url}{path}", timeout=15).status_code == 200
        slow.wait_all_closed(CUT_OFF_WITHIN)
        assert len(slow.closed) == 20, f"{20 - len(slow.closed)} slow bodies still open"
        assert min(slow.closed.values()) >= READ_TIMEOUT - 1, slow.closed
        metrics = Exposition(httpx.get(f"{url}/metrics", timeout=15).text)
        rejected = metrics.value("sync_exporter_webhook_rejected_total", reason="too_slow")
        assert rejected == 20
    text = log.read_text()
    assert "Traceback" not in text and TOKEN not in text


def test_slow_webhook_clients_beyond_the_connection_cap_cannot_hold_the_exporter(
    workdir: Path,
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = exporter_command(config(workdir), port, "--web.max-connections", "4")
    with running(command, f"{url}/-/healthy") as process:
        time.sleep(0.5)
        before = sockets_of(process.pid)
        with trickling(port, 12) as slow:
            time.sleep(2)
            held = sockets_of(process.pid) - before
            # Queued behind 12 slow clients, 4 at a time: each batch is cut off at the body
            # deadline, so this answers after about three of them, never after the hour.
            started = time.monotonic()
            answered = httpx.get(f"{url}/-/healthy", timeout=4 * CUT_OFF_WITHIN).status_code
            waited = time.monotonic() - started
            slow.wait_all_closed(CUT_OFF_WITHIN)
            assert len(slow.closed) == 12, f"{12 - len(slow.closed)} slow clients still open"
    assert 1 <= held <= 4, f"the exporter holds {held} client sockets with a cap of 4"
    assert answered == 200 and waited < 4 * CUT_OFF_WITHIN


def test_webhook_headers_trickled_a_byte_at_a_time_are_cut_off_at_the_header_deadline(
    workdir: Path,
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = exporter_command(config(workdir), port, "--web.read-header-timeout", "2s")
    request = headers(port)
    with running(command, f"{url}/-/healthy"):
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(10)]
        started = time.monotonic()
        closed: dict[int, float] = {}
        # A byte every 0.5 s: the headers alone would take over a minute.
        for byte in range(len(request)):
            for i, client in enumerate(clients):
                if i in closed:
                    continue
                try:
                    if closed_by_peer(client):
                        closed[i] = time.monotonic() - started
                    else:
                        client.send(request[byte : byte + 1])
                except OSError:
                    closed[i] = time.monotonic() - started
            if len(closed) == len(clients):
                break
            if byte == 1:
                assert httpx.get(f"{url}/-/healthy", timeout=15).status_code == 200
            time.sleep(0.5)
        for client in clients:
            client.close()
        assert len(closed) == len(clients), f"{len(clients) - len(closed)} still open"
        assert max(closed.values()) < 40, closed
        assert httpx.get(f"{url}/metrics", timeout=15).status_code == 200
