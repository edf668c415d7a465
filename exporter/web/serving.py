"""Accepting connections ourselves: a cap on open connections and a deadline for headers.

aiohttp has neither: about 1,100 clients sending their headers a byte a second used up a
1,024 file limit and froze every endpoint, while asyncio logged each failed accept
thousands of times a second. Here an accept loop takes a connection only while fewer than
`max_connections` are open (the rest wait in the kernel's backlog, costing no file
descriptor), and each request's headers, TLS handshake included, must arrive in full
within `header_timeout` of their first byte (of the accept, for the first request).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
import socket
import ssl
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from multidict import CIMultiDict

from exporter.logs import Throttled

log = logging.getLogger("exporter.web")

DEFAULT_MAX_CONNECTIONS = 512
DEFAULT_READ_HEADER_TIMEOUT = 10.0
DEFAULT_SHUTDOWN_TIMEOUT = 5.0
BACKLOG = 1024
# Failures of accept() that say nothing about the listening socket: the client gave up.
_CLIENT_GONE = {errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.ETIMEDOUT}
# Answers that are not the status page load nothing at all, even if a browser opens them.
BARE_POLICY = "default-src 'none'; frame-ancestors 'none'"


def add_security_headers(headers: CIMultiDict[str]) -> None:
    """What every answer carries, so no browser sniffs a type, leaks a referrer or runs it."""
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    headers.setdefault("Content-Security-Policy", BARE_POLICY)


class _SecuredHandler(RequestHandler):
    """aiohttp's protocol, whose own answers to malformed requests get the headers too."""

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        response = super().handle_error(request, status, exc, message)
        add_security_headers(response.headers)
        return response


def secured(server: web.Server) -> Callable[[], asyncio.Protocol]:
    """A protocol factory for `server` like its own, answering errors with the headers."""
    loop = asyncio.get_running_loop()
    return lambda: _SecuredHandler(server, loop=loop, **server._kwargs)


def raise_open_file_limit() -> int:
    """Raise the soft limit of open files to the hard one, as Go programs do; return it.

    systemd starts services with a soft limit of 1,024 (for programs still using select())
    and a far higher hard limit; asyncio uses epoll, so the soft limit only gets in the way.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            return soft
        return hard
    return soft


class _Connection(asyncio.Protocol):
    """One client connection: aiohttp's protocol inside, a deadline for each request's headers.

    The deadline runs from the accept for the first request, and from the first byte of
    each later one; a request that reaches the app (headers complete) stops it.
    """

    def __init__(self, inner: asyncio.Protocol, listener: Listener) -> None:
        self.inner = inner
        self.listener = listener
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._handling = 0
        self._more = False
        self._released = False
        self._arm()

    def _arm(self) -> None:
        if self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.listener.header_timeout, self._expire)

    def disarm(self) -> None:
        """Stop the header deadline."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        self.listener.header_timeouts.note(
            logging.WARNING, {"timeout_seconds": self.listener.header_timeout}
        )
        # Before connection_made, the TLS handshake is running: its own timeout, set to the
        # same length from the same moment, ends it.
        if self._transport is not None:
            self._transport.abort()

    def release(self) -> None:
        """Give the connection's slot back, once."""
        if not self._released:
            self._released = True
            self.listener.slots.release()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._handling:
            self._more = True
        else:
            self._arm()
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.disarm()
        self.release()
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def request_started(self) -> None:
        """The app got a request: its headers are complete."""
        self._handling += 1
        self.disarm()
        self.listener.request_started()

    def request_finished(self) -> None:
        """The app answered; bytes that came meanwhile begin the next request's deadline."""
        self._handling -= 1
        self.listener.request_finished()
        if not self._handling and self._more:
            self._more = False
            self._arm()


class Listener:
    """Listening sockets and their accept loops, feeding connections to aiohttp's protocol."""

    def __init__(
        self,
        protocol: Callable[[], asyncio.Protocol],
        *,
        tls: ssl.SSLContext | None,
        max_connections: int,
        header_timeout: float,
    ) -> None:
        self._protocol = protocol
        self._tls = tls
        self.header_timeout = header_timeout
        self.max_connections = max_connections
        self.slots = asyncio.Semaphore(max_connections)
        self._sockets: list[socket.socket] = []
        self._accepting: list[asyncio.Task[None]] = []
        self._opening: set[asyncio.Task[None]] = set()
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.accept_errors = Throttled(log, "cannot accept connections")
        self.header_timeouts = Throttled(
            log, "closed connections that did not send their request headers in time"
        )

    def bind(self, host: str | None, port: int) -> list[tuple[str, int]]:
        """Listen on every address `host` has (all interfaces when None); return them."""
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
            for family, kind, proto, _, address in dict.fromkeys(infos):
                try:
                    sock = socket.socket(family, kind, proto)
                except OSError:
                    continue  # e.g. no IPv6 in this container
                self._sockets.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(address)
                sock.listen(BACKLOG)
                sock.setblocking(False)
        except OSError:
            self.close()
            raise
        return [sock.getsockname()[:2] for sock in self._sockets]

    def start(self) -> None:
        """Start accepting on every bound socket."""
        loop = asyncio.get_running_loop()
        self._accepting = [loop.create_task(self._accept(sock)) for sock in self._sockets]

    async def _accept(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        delay = 0.0
        while True:
            await self.slots.acquire()
            try:
                conn, _ = await loop.sock_accept(sock)
            except OSError as exc:
                self.slots.release()
                if exc.errno in _CLIENT_GONE:
                    continue
                # Out of file descriptors or memory: back off as Go's http.Server does,
                # 5 ms doubling up to 1 s, and say so at most once every 10 s.
                self.accept_errors.note(logging.ERROR, {"error": exc.strerror or str(exc)})
                delay = min(max(2 * delay, 0.005), 1.0)
                await asyncio.sleep(delay)
                continue
            delay = 0.0
            task = loop.create_task(self._open(conn))
            self._opening.add(task)
            task.add_done_callback(self._opening.discard)

    async def _open(self, conn: socket.socket) -> None:
        connection = _Connection(self._protocol(), self)
        loop = asyncio.get_running_loop()
        try:
            await loop.connect_accepted_socket(
                lambda: connection,
                conn,
                ssl=self._tls,
                ssl_handshake_timeout=self.header_timeout if self._tls else None,
            )
        except Exception as exc:
            # A failed TLS handshake (wrong client certificate, a port scanner, a timeout).
            connection.disarm()
            connection.release()
            conn.close()
            log.debug("connection not opened", extra={"fields": {"error": repr(exc)}})

    def request_started(self) -> None:
        """Count a request in flight, so shutdown can wait for it."""
        self._in_flight += 1
        self._idle.clear()

    def request_finished(self) -> None:
        """Count a request done."""
        self._in_flight -= 1
        if not self._in_flight:
            self._idle.set()

    async def drain(self, timeout: float) -> bool:
        """Wait up to `timeout` for the requests in flight; True if none is left."""
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        """Stop accepting: new connections are refused from now on."""
        for task in self._accepting:
            task.cancel()
        await asyncio.gather(*self._accepting, return_exceptions=True)
        self.close()

    def close(self) -> None:
        """Close the listening sockets."""
        for sock in self._sockets:
            sock.close()
        self._sockets = []


@web.middleware
async def track_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Tell the connection a request arrived whole (its header deadline stops) and ended."""
    transport = request.transport
    connection = transport.get_protocol() if transport is not None else None
    if not isinstance(connection, _Connection):
        return await handler(request)
    connection.request_started()
    try:
        return await handler(request)
    finally:
        connection.request_finished()
