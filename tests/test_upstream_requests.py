"""What the exporter writes to providers: URLs checked before they reach a request line (a
proxy's too), one connection pool per source, and resends that are new requests.

Each provider here is a raw TCP server on 127.0.0.1 that notes every request head exactly as
it arrived and on which connection, so a test sees what reached the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from exporter.transport.client import make_client, tls_context
from exporter.transport.http1 import UnsafeUrl
from tests.exposition import Exposition
from tests.procs import exporter_command, free_port, run_exporter, running


@dataclass
class Seen:
    """One request head as it arrived: its connection, its bytes and when."""

    connection: int
    head: bytes
    at: float

    @property
    def path(self) -> str:
        target = self.head.split(b" ", 2)[1].decode("latin-1")
        return "/" + target.split("://", 1)[1].split("/", 1)[1] if "://" in target else target

    def header(self, name: str) -> str:
        for line in self.head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.decode("latin-1").lower() == name:
                return value.decode("latin-1").strip()
        return ""


# What to do with one request: (the seen request, its index on its connection) -> the bytes
# to send back, or None to drop the connection unanswered.
Answer = Callable[[Seen, int], bytes | None]


def reply(body: bytes, status: str = "200 OK") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
    return head.encode() + b"\r\n\r\n" + body


@dataclass
class Raw:
    """A keep-alive HTTP/1.1 server answering each request as `answer` says."""

    answer: Answer
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""
    after: Callable[[Seen, socket.socket], None] | None = None

    def handle(self, sock: socket.socket, connection: int) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffer = b""
        index = 0
        while True:
            while b"\r\n\r\n" not in buffer:
                more = sock.recv(65536)
                if not more:
                    return
                buffer += more
            head, buffer = buffer.split(b"\r\n\r\n", 1)
            seen = Seen(connection, head, time.monotonic())
            with self.lock:
                self.seen.append(seen)
            data = self.answer(seen, index)
            index += 1
            if data is None:
                return
            sock.sendall(data)
            if self.after is not None:
                self.after(seen, sock)


@contextlib.contextmanager
def raw_server(answer: Answer) -> Iterator[Raw]:
    raw = Raw(answer)
    counter = iter(range(1_000_000))

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            with contextlib.suppress(OSError):
                raw.handle(self.request, next(counter))

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    with Server(("127.0.0.1", 0), Handler) as server:
        raw.url = f"http://127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield raw
        finally:
            server.shutdown()


def once(tmp_path: Path, config: str, env: dict[str, str] | None = None) -> tuple[Exposition, str]:
    path = tmp_path / "config.yml"
    path.write_text(config)
    result = run_exporter("--config.file", str(path), "--once", env=env)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return Exposition(result.stdout), result.stderr


INJECTED = "/syncs?page=2 HTTP/1.1\r\nX-Injected: yes\r\n\r\nGET /stolen"


def listing(seen: Seen, index: int) -> bytes:
    page = {"items": [{"id": "a", "state": "ok"}], "next": INJECTED}
    return reply(json.dumps(page).encode())


def generic(base: str) -> str:
    return (
        "sources:\n"
        f"  - {{name: g, provider: generic, base_url: '{base}', auth: {{token: t}},"
        " discover: true,\n"
        "     generic: {list: {path: /syncs, items: items, next: next},"
        " fields: {id: id, status: state}}}\n"
    )


def test_a_next_url_with_a_line_break_is_refused_not_written_into_a_proxy_request_line(
    tmp_path: Path,
) -> None:
    """Through an http:// proxy the whole URL goes into the request line; a provider's next
    page URL holding CR LF used to be written there raw, adding a header and a request."""
    with raw_server(listing) as proxy:
        env = {"HTTP_PROXY": proxy.url, "http_proxy": proxy.url, "NO_PROXY": "", "no_proxy": ""}
        m, log = once(tmp_path, generic("http://provider.invalid:8080"), env=env)
    assert len(proxy.seen) == 1, [seen.head for seen in proxy.seen]
    first = proxy.seen[0].head
    assert first.startswith(b"GET http://provider.invalid:8080/syncs HTTP/1.1\r\n")
    assert b"X-Injected" not in first and b"stolen" not in first
    assert m.value("sync_exporter_errors_total", source="g", reason="bad_response") == 1
    assert "URL not requested" in log


@pytest.mark.parametrize("bad", ["\r", "\n", "\0", " ", "\t", "\x7f", "é"])
@pytest.mark.parametrize("where", ["path", "query"])
@pytest.mark.parametrize("proxied", [False, True])
def test_no_url_byte_that_could_split_a_request_line_is_sent(
    bad: str, where: str, proxied: bool
) -> None:
    with raw_server(lambda seen, index: reply(b"{}")) as server:
        url = f"{server.url}/a{bad}b" if where == "path" else f"{server.url}/a?q=1{bad}2"

        async def get() -> None:
            client = make_client(tls_context())
            try:
                await client.get(
                    url, {}, limit=1024, timeout=2, proxy=server.url if proxied else None
                )
            finally:
                await client.close()

        with pytest.raises(UnsafeUrl):
            asyncio.run(get())
        assert server.seen == []


def paragon(name: str, base: str, token: str, syncs: int, extra: str = "") -> str:
    ids = ", ".join(f"{name}{n}" for n in range(syncs))
    return (
        f"  - {{name: {name}, provider: paragon, base_url: '{base}', auth: {{token: {token}}},"
        f" syncs: [{ids}]{extra}}}\n"
    )


def records(count: int) -> bytes:
    return json.dumps({"status": "IDLE", "summary": {"totalRecords": count}}).encode()


def by_token(seen: Seen, index: int) -> bytes:
    if seen.path == "/api/syncs":
        return reply(b'{"data": []}')
    return reply(records(3 if seen.header("authorization").endswith("token-a") else 7))


def test_two_sources_on_one_host_never_share_a_connection(tmp_path: Path) -> None:
    with raw_server(by_token) as provider:
        config = "sources:\n" + paragon("a", provider.url, "token-a", 20, ", max_concurrency: 2")
        config += paragon("b", provider.url, "token-b", 20, ", max_concurrency: 2")
        m, _ = once(tmp_path, config)
    tokens: dict[int, set[str]] = {}
    for seen in provider.seen:
        tokens.setdefault(seen.connection, set()).add(seen.header("authorization"))
    assert all(len(names) == 1 for names in tokens.values()), tokens
    assert len(tokens) < len(provider.seen) / 4, "connections were kept alive and reused"
    assert {value for _, value in m.find("sync_records_expected", source="b")} == {7}
    assert {value for _, value in m.find("sync_records_expected", source="a")} == {3}


def test_stray_answers_of_one_source_never_reach_another_sources_read(tmp_path: Path) -> None:
    """Source a's provider sends an unasked second answer 0.3 s after its list, when the
    reads have begun. On a shared pool one of b's reads took a's idle connection and read
    the stray answer as b's; with a pool per source it can only ever be a's."""
    stray = reply(records(999))

    def late_stray(seen: Seen, sock: socket.socket) -> None:
        if seen.path == "/api/syncs" and seen.header("authorization").endswith("token-a"):
            time.sleep(0.3)
            with contextlib.suppress(OSError):
                sock.sendall(stray)

    with raw_server(by_token) as provider:
        provider.after = late_stray
        config = "sources:\n" + paragon("a", provider.url, "token-a", 1)
        config += paragon("b", provider.url, "token-b", 40, ", max_concurrency: 6")
        m, _ = once(tmp_path, config)
    assert {value for _, value in m.find("sync_records_expected", source="b")} == {7}
    assert all(value == 1 for _, value in m.find("sync_up", source="b"))


def test_no_resend_once_any_byte_of_the_answer_came(tmp_path: Path) -> None:
    """The list comes on a new connection and is kept alive; each sync's answer on it breaks
    off after its first bytes. A resend would read the sync twice."""

    def partial(seen: Seen, index: int) -> bytes | None:
        if seen.path == "/api/syncs":
            return reply(b'{"data": []}')
        return b"HTTP/1.1 20"

    with raw_server(partial) as provider:
        provider.after = lambda seen, sock: (
            None if seen.path == "/api/syncs" else sock.shutdown(socket.SHUT_RDWR)
        )
        m, _ = once(tmp_path, "sources:\n" + paragon("p", provider.url, "t", 3))
    paths = [seen.path for seen in provider.seen]
    assert sorted(paths) == ["/api/syncs", "/api/syncs/p0", "/api/syncs/p1", "/api/syncs/p2"]
    assert all(value == 0 for _, value in m.find("sync_up", source="p"))
    assert m.value("sync_exporter_errors_total", source="p", reason="connect") == 3


def most_in_one_second(times: list[float]) -> int:
    times = sorted(times)
    return max(
        sum(1 for later in times[start:] if later < first + 1.0)
        for start, first in enumerate(times)
    )


def test_resends_after_dropped_connections_spend_the_budget(tmp_path: Path) -> None:
    """The provider answers the first request of each connection and drops every later one
    unanswered, so every reuse of a kept-alive connection costs a resend. Counted on the
    provider's side, no one-second window holds more than max_requests_per_second."""

    def drop_reused(seen: Seen, index: int) -> bytes | None:
        if index > 0:
            return None
        if seen.path == "/api/syncs":
            return reply(b'{"data": []}')
        return reply(records(3))

    with raw_server(drop_reused) as provider:
        config = tmp_path / "config.yml"
        config.write_text(
            "sources:\n"
            + paragon(
                "p", provider.url, "t", 40, ", max_requests_per_second: 5, max_concurrency: 4"
            )
        )
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        headers = {"X-Prometheus-Scrape-Timeout-Seconds": "2"}
        with running(exporter_command(config, port), f"{url}/-/healthy"):
            until = time.monotonic() + 5
            while time.monotonic() < until:
                answer = httpx.get(f"{url}/metrics", headers=headers, timeout=10)
                assert answer.status_code == 200
        m = Exposition(answer.text)
    # Each connection answers one request; any other it got was dropped and sent again.
    dropped = len(provider.seen) - len({seen.connection for seen in provider.seen})
    assert dropped >= 5, "kept-alive connections were reused and dropped, so resends happened"
    assert most_in_one_second([seen.at for seen in provider.seen]) <= 5
    assert sum(value for _, value in m.find("sync_up", source="p")) > 0


def test_a_proxy_gets_the_absolute_url_rebuilt_without_userinfo_or_fragment() -> None:
    """The absolute-form target is built from the checked parts: the port as given (443 is
    not http's default), no user:password, no fragment."""
    with raw_server(lambda seen, index: reply(b"{}")) as proxy:

        async def get() -> None:
            client = make_client(tls_context())
            try:
                url = "http://user:pw@provider.invalid:443/a?b=1#frag"
                await client.get(url, {}, limit=1024, timeout=2, proxy=proxy.url)
            finally:
                await client.close()

        asyncio.run(get())
    (seen,) = proxy.seen
    assert seen.head.startswith(b"GET http://provider.invalid:443/a?b=1 HTTP/1.1\r\n")
    assert seen.header("host") == "provider.invalid:443"
    assert b"pw" not in seen.head and b"frag" not in seen.head
