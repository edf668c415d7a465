"""A provider on 127.0.0.1 that misbehaves on purpose, one reply per path, for hostile tests."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Reply:
    """What to answer: status, headers and body, then how to misbehave.

    `length` False leaves Content-Length out (the body ends when the connection closes);
    `cut` sends only that many bytes of the body, then `then` happens: "reset" (TCP RST),
    "close" (an orderly close short of the promised length) or "stall" (nothing more until
    the server stops). `silent` never answers at all, or with `then` "reset" resets the
    connection as soon as the request has arrived.
    """

    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    length: bool = True
    cut: int | None = None
    then: str = ""
    silent: bool = False


# Closing a socket that lingers zero seconds sends a TCP RST instead of a FIN.
LINGER_ZERO = struct.pack("ii", 1, 0)
Route = Callable[[dict[str, list[str]]], Reply]


def json_reply(body: bytes, status: int = 200, headers: Mapping[str, str] | None = None) -> Reply:
    """A JSON answer with a Content-Length."""
    return Reply(body, status, {"Content-Type": "application/json", **(headers or {})})


class Hostile:
    """Routes by path (`/v1/syncs/*` matches by prefix; the query goes to the route), noting
    every request it gets."""

    def __init__(self, routes: Mapping[str, Route | Reply] | None = None) -> None:
        self.routes: dict[str, Route | Reply] = dict(routes or {})
        self.seen: list[tuple[str, dict[str, list[str]], dict[str, str]]] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        hostile = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                with hostile._lock:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    hostile.seen.append((parts.path, query, headers))
                route = hostile.route(parts.path)
                if route is None:
                    reply = json_reply(b'{"error": "not found"}', 404)
                else:
                    reply = route if isinstance(route, Reply) else route(query)
                hostile._answer(self, reply)

            def setup(self) -> None:
                super().setup()
                # Headers and body go out as separate writes: without this, Nagle's algorithm
                # and the client's delayed ACK hold each answer back 40 ms.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *args: object) -> None:
                pass

            def finish(self) -> None:
                with contextlib.suppress(OSError):
                    super().finish()

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass

        self._server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def route(self, path: str) -> Route | Reply | None:
        """The route of `path`: its own, else the longest `prefix*` route it starts with."""
        if path in self.routes:
            return self.routes[path]
        prefixes = [key for key in self.routes if key.endswith("*") and path.startswith(key[:-1])]
        return self.routes[max(prefixes, key=len)] if prefixes else None

    def _answer(self, handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        if reply.silent:
            if reply.then == "reset":
                handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_ZERO)
                handler.connection.close()
            else:
                self.stopping.wait(120)
            handler.close_connection = True
            return
        handler.send_response(reply.status)
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        if reply.length:
            handler.send_header("Content-Length", str(len(reply.body)))
        else:
            handler.send_header("Connection", "close")
            handler.close_connection = True
        handler.end_headers()
        body = reply.body if reply.cut is None else reply.body[: reply.cut]
        try:
            handler.wfile.write(body)
            handler.wfile.flush()
        except OSError:
            handler.close_connection = True
            return
        if reply.then == "stall":
            self.stopping.wait(120)
        if reply.then == "reset":
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_ZERO)
        if reply.then in ("stall", "reset", "close"):
            handler.close_connection = True
            with contextlib.suppress(OSError):
                handler.connection.close()

    def count(self, path: str) -> int:
        """Requests for `path` so far."""
        with self._lock:
            return Counter(seen[0] for seen in self.seen)[path]

    def paths(self) -> list[str]:
        """Every requested path, in order."""
        with self._lock:
            return [seen[0] for seen in self.seen]


@contextlib.contextmanager
def hostile_server(routes: Mapping[str, Route | Reply] | None = None) -> Iterator[Hostile]:
    """Serve until the block ends; stalled answers are released when it does."""
    hostile = Hostile(routes)
    thread = threading.Thread(target=hostile._server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hostile
    finally:
        hostile.stopping.set()
        hostile._server.shutdown()
        hostile._server.server_close()
