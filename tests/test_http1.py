"""The exporter's own HTTP/1.1 client against real servers on 127.0.0.1: TLS with the CAs the
environment names, CONNECT tunnels through a proxy, chunked answers, kept-alive connections
(and providers that close them), informational answers."""

from __future__ import annotations

import json
import select
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.exposition import Exposition
from tests.procs import run_exporter
from tests.test_webconfig import pki  # noqa: F401  (the CA and 127.0.0.1's certificate)

BODY = json.dumps({"status": "IDLE", "summary": {"totalRecords": 3}}).encode()


class Provider(BaseHTTPRequestHandler):
    """Paragon-shaped answers; `mode` on the server picks how they are framed."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        server = self.server
        assert isinstance(server, Server)
        with server.lock:
            server.peers.add(self.client_address[1])
            server.paths.append(self.path)
        body = b'{"data": []}' if self.path == "/api/syncs" else BODY
        if server.mode == "continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if server.mode == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in (body[:5], body[5:]):
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        if server.mode == "hang-up":
            # Closes every connection after its answer without saying so (no Connection:
            # close): the client must not lose a read to a connection it kept for reuse.
            self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, mode: str, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), Provider)
        self.mode = mode
        self.lock = threading.Lock()
        self.peers: set[int] = set()
        self.paths: list[str] = []
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)

    @property
    def url(self) -> str:
        scheme = "https" if isinstance(self.socket, ssl.SSLSocket) else "http"
        return f"{scheme}://127.0.0.1:{self.server_address[1]}"


@contextmanager
def serving(server: ThreadingHTTPServer) -> Iterator[None]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def once(tmp_path: Path, base: str, syncs: int, env: dict[str, str] | None = None) -> Exposition:
    ids = ", ".join(f"s{n}" for n in range(syncs))
    config = tmp_path / "config.yml"
    config.write_text(
        f"sources: [{{name: p, provider: paragon, base_url: '{base}', auth: {{token: t}},"
        f" max_concurrency: 1, syncs: [{ids}]}}]\n"
    )
    result = run_exporter("--config.file", str(config), "--once", env=env)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return Exposition(result.stdout)


def all_up(m: Exposition, syncs: int) -> bool:
    up = m.find("sync_up", source="p")
    return len(up) == syncs and all(value == 1 for _, value in up)


@pytest.mark.parametrize("mode", ["length", "chunked", "continue"])
def test_answers_are_read_on_one_kept_alive_connection(mode: str, tmp_path: Path) -> None:
    server = Server(mode)
    with serving(server):
        m = once(tmp_path, server.url, 10)
    assert all_up(m, 10)
    assert m.value("sync_records_expected", sync_id="s3") == 3
    # The list and ten syncs, one at a time: every request on the same connection.
    assert len(server.paths) == 11 and len(server.peers) == 1


def test_a_provider_closing_kept_connections_costs_no_read(tmp_path: Path) -> None:
    server = Server("hang-up")
    with serving(server):
        m = once(tmp_path, server.url, 10)
    assert all_up(m, 10)
    assert m.value("sync_exporter_errors_total", source="p", reason="connect") == 0
    assert len(server.peers) == 11, "each answer closed its connection, so each read opened one"


def test_https_trusts_the_cas_the_environment_names(pki: Path, tmp_path: Path) -> None:  # noqa: F811
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(pki / "server.crt", pki / "server.key")
    server = Server("length", tls)
    with serving(server):
        trusted = once(tmp_path, server.url, 3, env={"SSL_CERT_FILE": str(pki / "ca.crt")})
        untrusted = once(tmp_path, server.url, 3, env={"SSL_CERT_FILE": ""})
    assert all_up(trusted, 3)
    assert untrusted.value("sync_up", sync_id="s0") == 0
    # The list and three syncs, each refused by certificate verification.
    assert untrusted.value("sync_exporter_errors_total", source="p", reason="connect") == 4


class Tunnel(BaseHTTPRequestHandler):
    """A forward proxy that only CONNECTs, relaying bytes both ways."""

    def do_CONNECT(self) -> None:
        server = self.server
        assert isinstance(server, ProxyServer)
        server.connects.append(self.path)
        host, port = self.path.rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)))
        self.send_response(200, "Connection established")
        self.end_headers()
        sockets = [self.connection, upstream]
        while True:
            readable, _, _ = select.select(sockets, [], [], 5)
            if not readable:
                break
            for sock in readable:
                data = sock.recv(65536)
                if not data:
                    upstream.close()
                    return
                (upstream if sock is self.connection else self.connection).sendall(data)

    def log_message(self, *args: object) -> None:
        pass


class ProxyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Tunnel)
        self.connects: list[str] = []


def test_https_goes_through_a_connect_tunnel(pki: Path, tmp_path: Path) -> None:  # noqa: F811
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(pki / "server.crt", pki / "server.key")
    server = Server("length", tls)
    proxy = ProxyServer()
    env = {
        "SSL_CERT_FILE": str(pki / "ca.crt"),
        "HTTPS_PROXY": f"http://127.0.0.1:{proxy.server_address[1]}",
        "NO_PROXY": "",
        "no_proxy": "",
    }
    with serving(server), serving(proxy):
        m = once(tmp_path, server.url, 3, env=env)
    assert all_up(m, 3)
    port = server.server_address[1]
    assert proxy.connects and set(proxy.connects) == {f"127.0.0.1:{port}"}
    assert len(server.paths) == 4, "the list and three syncs, all through the tunnel"


@pytest.mark.parametrize(
    "url",
    [
        "http://h/a?b",
        "http://h",
        "http://h?x",
        "http://h/a?",
        "http://h/a??",
        "http://h/a#?b",
        "http://u:p@H:81/x",
        "HTTPS://[::1]:8443/p?q=1#f",
        "http://h/a?#",
        "mailto:x",
        "/relative",
    ],
)
def test_the_cached_origin_split_reads_a_url_as_urlsplit_does(url: str) -> None:
    """The request target and origin a read uses are what urlsplit would have given."""
    from urllib.parse import urlsplit

    from exporter.transport.http1 import _split

    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    assert _split(url) == (parts.scheme.lower(), parts.hostname, parts.port, target)
    with pytest.raises(ValueError):
        _split("http://h:99999/")


def test_a_reused_request_head_carries_each_requests_own_headers() -> None:
    """Request heads are kept per origin and headers: a rotated token, another pool or a
    different Accept must each get their own bytes, and a kept head its own target."""
    import asyncio

    from exporter.transport.client import tls_context
    from exporter.transport.http1 import Client

    heads: list[bytes] = []
    ports: list[int] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            heads.append(head)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
            await writer.drain()
        writer.close()

    async def run() -> None:
        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        ports.append(port)
        client = Client(tls_context(), "ua/1")
        base = f"http://127.0.0.1:{port}"
        try:
            for path, headers, pool in [
                ("/a", {"Authorization": "Bearer one"}, "p"),
                ("/b?x=1", {"Authorization": "Bearer one"}, "p"),
                ("/c", {"Authorization": "Bearer two"}, "p"),
                ("/d", {"Authorization": "Bearer two"}, "q"),
                ("/e", {"Authorization": "Bearer two", "accept": "text/x"}, "q"),
                ("/f", {"Authorization": "Bearer one"}, "p"),
            ]:
                answer_ = await client.get(base + path, headers, limit=100, timeout=5, pool=pool)
                assert answer_.body == b"{}"
            await client.close()
        finally:
            server.close()
            await server.wait_closed()

    asyncio.run(run())
    common = f"Host: 127.0.0.1:{ports[0]}\r\nUser-Agent: ua/1\r\nAccept-Encoding: gzip, deflate\r\n"
    json = "Accept: application/json\r\n"
    assert [head.decode() for head in heads] == [
        f"GET /a HTTP/1.1\r\n{common}{json}Authorization: Bearer one\r\n\r\n",
        f"GET /b?x=1 HTTP/1.1\r\n{common}{json}Authorization: Bearer one\r\n\r\n",
        f"GET /c HTTP/1.1\r\n{common}{json}Authorization: Bearer two\r\n\r\n",
        f"GET /d HTTP/1.1\r\n{common}{json}Authorization: Bearer two\r\n\r\n",
        f"GET /e HTTP/1.1\r\n{common}Authorization: Bearer two\r\naccept: text/x\r\n\r\n",
        f"GET /f HTTP/1.1\r\n{common}{json}Authorization: Bearer one\r\n\r\n",
    ]
