"""Hostile clients against the real exporter: slow headers, floods, password floods, shutdown.

Each test starts the exporter as users do and talks to it over real sockets on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import os
import select
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import httpx
import pytest

from tests.exposition import Exposition
from tests.procs import exporter_command, free_port, running

REQUEST = b"GET /-/healthy HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def offline_config(directory: Path, base_url: str = "http://127.0.0.1:1", extra: str = "") -> Path:
    """A config whose provider is never reached unless a test scrapes."""
    path = directory / "config.yml"
    path.write_text(
        f"sources: [{{name: a, provider: paragon, base_url: '{base_url}', auth: {{token: t}},"
        f" syncs: [x]{extra}}}]\n"
    )
    return path


def sockets_of(pid: int) -> int:
    """How many sockets a process holds open, from /proc."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                count += 1
        except OSError:
            continue
    return count


def closed_by_peer(sock: socket.socket) -> bool:
    """Whether the server has closed this connection (EOF or reset), without blocking."""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    try:
        return sock.recv(4096) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


def test_a_client_trickling_its_headers_is_cut_off_at_the_header_timeout(workdir: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = exporter_command(offline_config(workdir), port, "--web.read-header-timeout", "1s")
    with running(command, f"{url}/-/healthy", log=workdir / "exporter.log"):
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
        started = time.monotonic()
        closed: dict[int, float] = {}
        # One byte every 0.25 s: the whole request would take 9 s. The timeout is a total
        # for the headers, not an idle timer, so steady trickling does not keep it open.
        for byte in range(len(REQUEST)):
            for i, client in enumerate(clients):
                if i in closed:
                    continue
                if closed_by_peer(client):
                    closed[i] = time.monotonic() - started
                    continue
                try:
                    client.send(REQUEST[byte : byte + 1])
                except OSError:
                    closed[i] = time.monotonic() - started
            if len(closed) == len(clients):
                break
            time.sleep(0.25)
        for client in clients:
            client.close()
        assert len(closed) == len(clients), f"{len(clients) - len(closed)} still open"
        assert max(closed.values()) < 5, closed
        assert httpx.get(f"{url}/-/healthy", timeout=5).status_code == 200


def test_the_header_timeout_restarts_for_each_request_on_a_kept_alive_connection(
    workdir: Path,
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = exporter_command(offline_config(workdir), port, "--web.read-header-timeout", "1s")
    with running(command, f"{url}/-/healthy"):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        first_socket = None
        for _ in range(6):
            connection.request("GET", "/-/healthy")
            response = connection.getresponse()
            assert response.status == 200 and response.read() == b"Healthy\n"
            first_socket = first_socket or connection.sock
            assert connection.sock is first_socket, "the connection was not kept alive"
            time.sleep(0.4)
        connection.close()


def test_connections_beyond_the_cap_wait_unaccepted(workdir: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = exporter_command(
        offline_config(workdir),
        port,
        "--web.max-connections",
        "5",
        "--web.read-header-timeout",
        "1s",
    )
    with running(command, f"{url}/-/healthy") as process:
        time.sleep(0.3)
        before = sockets_of(process.pid)
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
        for client in clients:
            client.send(b"G")
        time.sleep(0.5)
        held = sockets_of(process.pid) - before
        started = time.monotonic()
        answered = httpx.get(f"{url}/-/healthy", timeout=30).status_code
        waited = time.monotonic() - started
        for client in clients:
            client.close()
    assert 1 <= held <= 5, f"the exporter holds {held} client sockets with a cap of 5"
    # Queued behind 20 slow clients, 5 at a time, each cut off after 1 s.
    assert answered == 200 and waited < 20


def test_the_open_file_limit_is_raised_to_the_hard_limit(workdir: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = exporter_command(offline_config(workdir), port)
    with running(command, f"{url}/-/healthy", nofile=(256, 4096)) as process:
        limits = Path(f"/proc/{process.pid}/limits").read_text()
    (line,) = [line for line in limits.splitlines() if line.startswith("Max open files")]
    assert line.split()[3:5] == ["4096", "4096"], line


def test_running_out_of_file_descriptors_is_logged_rarely_and_recovers(workdir: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = workdir / "exporter.log"
    command = exporter_command(
        offline_config(workdir),
        port,
        "--web.max-connections",
        "1000",
        "--web.read-header-timeout",
        "2s",
    )
    with running(command, f"{url}/-/healthy", log=log, nofile=(64, 64)):
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(120)]
        for client in clients:
            send_quietly(client, b"G")
        time.sleep(3)
        for client in clients:
            client.close()
        assert httpx.get(f"{url}/-/healthy", timeout=20).status_code == 200
    lines = log.read_text().splitlines()
    errors = [line for line in lines if "open files" in line or "accept" in line.lower()]
    assert 1 <= len(errors) <= 5, f"{len(errors)} lines about accept errors, e.g. {errors[:2]}"
    assert "Traceback" not in log.read_text()


def send_quietly(client: socket.socket, data: bytes) -> None:
    """Send, ignoring a connection the server already dropped."""
    with contextlib.suppress(OSError):
        client.send(data)


def test_http_reload_is_off_unless_lifecycle_is_enabled(workdir: Path) -> None:
    config = offline_config(workdir)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(exporter_command(config, port), f"{url}/-/healthy") as process:
        config.write_text(config.read_text().replace("name: a,", "name: changed,"))
        for method in ("POST", "PUT"):
            response = httpx.request(method, f"{url}/-/reload")
            assert response.status_code == 403
            assert response.text == "Lifecycle API is not enabled.\n"
        assert "<td>a</td>" in httpx.get(f"{url}/").text
        process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "<td>changed</td>" not in httpx.get(f"{url}/").text:
            assert time.monotonic() < deadline, "SIGHUP did not reload"
            time.sleep(0.1)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = exporter_command(config, port, "--web.enable-lifecycle")
    with running(command, f"{url}/-/healthy"):
        assert httpx.post(f"{url}/-/reload").status_code == 200


def bcrypt_hash(password: bytes, cost: int) -> str:
    return bcrypt.hashpw(password, bcrypt.gensalt(cost)).decode().replace("$2b$", "$2y$")


@pytest.fixture
def guarded(workdir: Path) -> Iterator[str]:
    """An exporter behind basic auth with cost-12 hashes (~0.25 s of CPU per check)."""
    web = workdir / "web.yml"
    web.write_text(
        "basic_auth_users:\n"
        f"  prometheus: '{bcrypt_hash(b'right-password', 12)}'\n"
        f"  second: '{bcrypt_hash(b'second-password', 12)}'\n"
        f"  long: '{bcrypt_hash(b'L' * 72, 4)}'\n"
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = exporter_command(offline_config(workdir), port, "--web.config.file", str(web))
    with running(
        command,
        f"{url}/-/healthy",
        log=workdir / "exporter.log",
        auth=("prometheus", "right-password"),
    ):
        yield url


def test_a_password_flood_does_not_hold_up_the_right_password(guarded: str) -> None:
    url = guarded
    timings: dict[str, tuple[int, float]] = {}

    async def flood() -> list[int]:
        limits = httpx.Limits(max_connections=300)
        async with httpx.AsyncClient(timeout=120, limits=limits) as client:
            wrong = [
                asyncio.create_task(
                    client.get(f"{url}/-/healthy", auth=("prometheus", f"wrong-{i}"))
                )
                for i in range(200)
            ]
            await asyncio.sleep(1.0)
            for name, auth in {
                "remembered": ("prometheus", "right-password"),
                "first login": ("second", "second-password"),
            }.items():
                started = time.monotonic()
                response = await client.get(f"{url}/-/healthy", auth=auth)
                timings[name] = (response.status_code, time.monotonic() - started)
            return [r.status_code for r in await asyncio.gather(*wrong)]

    statuses = asyncio.run(flood())
    assert set(statuses) <= {401, 429}, set(statuses)
    code, seconds = timings["remembered"]
    assert code == 200 and seconds < 5, timings
    code, seconds = timings["first login"]
    # A first login while the queue is full is refused at once (429, try again), not queued.
    assert code in (200, 429) and seconds < 5, timings
    deadline = time.monotonic() + 30
    while httpx.get(f"{url}/-/healthy", auth=("second", "second-password")).status_code != 200:
        assert time.monotonic() < deadline, "the second user never got in after the flood"
        time.sleep(0.5)


def test_passwords_longer_than_72_bytes_compare_their_first_72_as_go_does(guarded: str) -> None:
    ok = httpx.get(f"{guarded}/-/healthy", auth=("long", "L" * 72 + "ignored-by-bcrypt"))
    assert ok.status_code == 200
    assert httpx.get(f"{guarded}/-/healthy", auth=("long", "L" * 71)).status_code == 401


def silent_server() -> tuple[socket.socket, list[socket.socket]]:
    """A provider that accepts connections and never says a word."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    return server, accepted


def _peek(sock: socket.socket) -> bytes:
    """What a provider connection has received so far, left unread."""
    try:
        return sock.recv(4096, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except OSError:
        return b""


@pytest.mark.parametrize("path", ["/metrics", "/probe?source=a"])
def test_sigterm_with_a_hung_provider_exits_within_the_shutdown_timeout(
    workdir: Path, path: str
) -> None:
    server, accepted = silent_server()
    base = f"http://127.0.0.1:{server.getsockname()[1]}"
    config = offline_config(workdir, base, ", request_timeout: 60s")
    config.write_text(config.read_text() + "collector: {default_timeout: 60s}\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = exporter_command(config, port, "--web.shutdown-timeout", "1s")
    log = workdir / "exporter.log"
    with running(command, f"{url}/-/healthy", log=log) as process:
        answers: list[object] = []

        def scrape() -> None:
            try:
                answers.append(httpx.get(f"{url}{path}", timeout=120).status_code)
            except httpx.HTTPError as exc:
                answers.append(type(exc).__name__)

        thread = threading.Thread(target=scrape)
        thread.start()
        deadline = time.monotonic() + 10
        # The sync's own read, not the listing the exporter sends at start for sync names.
        while not any(b"GET /api/syncs/x " in _peek(sock) for sock in list(accepted)):
            assert time.monotonic() < deadline, "the scrape never reached the provider"
            time.sleep(0.05)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        refused = False
        while process.poll() is None and time.monotonic() - started < 1:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            except OSError:
                refused = True
                break
            time.sleep(0.05)
        code = process.wait(timeout=30)
        took = time.monotonic() - started
        thread.join(timeout=30)
    server.close()
    assert code == 0
    assert took < 6, f"exit took {took:.1f}s with a 1s shutdown timeout"
    assert refused, "new connections were still accepted during shutdown"
    # A scrape and a probe cut short by the shutdown end alike: never a 200, never a traceback.
    assert answers and answers[0] != 200
    assert "Traceback" not in log.read_text()


def test_metrics_still_answer_under_a_header_flood(workdir: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = exporter_command(offline_config(workdir), port, "--web.read-header-timeout", "2s")
    with running(command, f"{url}/-/healthy"):
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(200)]
        for client in clients:
            send_quietly(client, b"GET /metrics HTTP/1.1\r\n")
        m = Exposition(httpx.get(f"{url}/metrics", timeout=20).text)
        assert m.value("sync_up", sync_id="x") == 0
        for client in clients:
            client.close()
