"""A lean HTTP/1.1 client for one job: GET small JSON bodies from providers, on keep-alive
connections, with every limit the exporter needs.

aiohttp's client spent about two thirds of the exporter's CPU per sync (building request and
URL objects, header multidicts, stream readers, trace hooks) for requests that are always the
same shape; a protocol that writes the request bytes and parses the answer in one pass costs
about a third of that (docs/performance.md). It speaks only what providers answer with:
Content-Length or chunked bodies, gzip or deflate, keep-alive or close; it never follows
redirects; proxies from the environment are supported (absolute-form requests for http://,
CONNECT tunnels for https://). Anything else is a `ProtocolError`, a bad answer of that sync.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

MAX_HEADER_BYTES = 64 * 1024
MAX_IDLE_PER_ORIGIN = 256
# How often answers are checked against their deadlines: request timeouts are seconds long.
WATCH_TICK = 0.05


class ProtocolError(Exception):
    """The peer's answer is not HTTP/1.1 as this client speaks it."""


class BodyTooLarge(Exception):
    """A provider answered more than we read (after decompression): not a sync status."""


@dataclass(frozen=True, slots=True)
class Response:
    """A finished answer: status, headers (lower-case names) and the decoded body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class _Origin:
    scheme: str
    host: str
    port: int
    proxy: str | None


class _Connection(asyncio.Protocol):
    """One connection, parsing one answer at a time as its bytes arrive."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._buffer = bytearray()
        self._waiter: asyncio.Future[Response] | None = None
        self._limit = 0
        self._head_only = False
        self._reset_answer()

    def _reset_answer(self) -> None:
        self._status = 0
        self._headers: dict[str, str] = {}
        self._head_done = False
        self._length: int | None = None
        self._chunked = False
        self._until_close = False
        self._raw = 0
        self._body = bytearray()
        self._decoder: zlib._Decompress | None = None
        self._chunk_left = -1
        self._keep = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended(exc, "connection closed by the peer")

    def eof_received(self) -> bool | None:
        self._ended(None, "connection closed mid-answer")
        return None

    def _ended(self, exc: Exception | None, why: str) -> None:
        """The peer is gone: an answer that runs until close is complete, any other is not."""
        self.closed = True
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._until_close and self._head_done and exc is None:
            try:
                self._finish()
            except (BodyTooLarge, zlib.error) as error:
                waiter.set_exception(error)
        else:
            waiter.set_exception(exc or ConnectionResetError(why))

    def request(
        self, data: bytes, limit: int, *, head_only: bool = False
    ) -> asyncio.Future[Response]:
        """Send one request; the future gets its answer (only its head for a CONNECT)."""
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        self._waiter = loop.create_future()
        self._limit = limit
        self._head_only = head_only
        self._reset_answer()
        self._buffer.clear()
        self.transport.write(data)
        return self._waiter

    def data_received(self, data: bytes) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            self.closed = True  # bytes nobody asked for: never reuse this connection
            return
        self._buffer += data
        try:
            self._parse()
        except (ProtocolError, BodyTooLarge, zlib.error) as exc:
            self.closed = True
            waiter.set_exception(exc)

    def _parse(self) -> None:
        if not self._head_done:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEADER_BYTES:
                    raise ProtocolError("header section too large")
                return
            head = bytes(self._buffer[:end]).decode("latin-1")
            del self._buffer[: end + 4]
            self._read_head(head)
            if 100 <= self._status < 200:
                self._reset_answer()
                self._parse()
                return
        if self._chunked:
            self._read_chunks()
        elif self._length is not None:
            take = self._buffer[: self._length - self._raw]
            self._feed(bytes(take))
            del self._buffer[: len(take)]
            if self._raw == self._length:
                self._finish()
        else:
            self._feed(bytes(self._buffer))
            self._buffer.clear()

    def _read_head(self, head: str) -> None:
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError("not an HTTP/1.x status line")
        self._status = int(parts[1])
        headers = self._headers
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise ProtocolError("a header line without a colon")
            name = name.strip().lower()
            value = value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        self._head_done = True
        if 100 <= self._status < 200:
            return
        if self._head_only:
            self._length = 0
            self._finish()
            return
        connection = headers.get("connection", "").lower()
        self._keep = parts[0] == "HTTP/1.1" and "close" not in connection
        encoding = headers.get("content-encoding", "identity").strip().lower()
        if encoding in ("gzip", "x-gzip"):
            self._decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._decoder = zlib.decompressobj()
        elif encoding not in ("identity", ""):
            raise ProtocolError(f"unsupported Content-Encoding {encoding[:40]!r}")
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self._chunked = True
            self._chunk_left = -1
        elif "content-length" in headers:
            length = headers["content-length"].strip()
            if not length.isdigit():
                raise ProtocolError("Content-Length is not a number")
            self._length = int(length)
            if self._length > self._limit:
                raise BodyTooLarge(f"body larger than {self._limit} bytes")
        elif self._status in (204, 304):
            self._length = 0
        else:
            self._until_close = True
            self._keep = False
        if self._length == 0:
            self._finish()

    def _read_chunks(self) -> None:
        buffer = self._buffer
        while True:
            if self._chunk_left < 0:
                end = buffer.find(b"\r\n")
                if end < 0:
                    if len(buffer) > 1024:
                        raise ProtocolError("chunk size line too long")
                    return
                size = bytes(buffer[:end]).split(b";", 1)[0].strip()
                try:
                    self._chunk_left = int(size, 16)
                except ValueError:
                    raise ProtocolError("bad chunk size") from None
                del buffer[: end + 2]
                if self._chunk_left == 0:
                    self._chunk_left = -2  # the last chunk: trailers follow
            if self._chunk_left == -2:
                end = buffer.find(b"\r\n\r\n") if not buffer.startswith(b"\r\n") else 0
                if end < 0:
                    return
                del buffer[: end + (2 if end == 0 else 4)]
                self._finish()
                return
            if len(buffer) < self._chunk_left + 2:
                if len(buffer) > self._chunk_left:
                    return
                take = bytes(buffer)
                self._feed(take)
                self._chunk_left -= len(take)
                buffer.clear()
                return
            self._feed(bytes(buffer[: self._chunk_left]))
            if buffer[self._chunk_left : self._chunk_left + 2] != b"\r\n":
                raise ProtocolError("chunk not followed by CRLF")
            del buffer[: self._chunk_left + 2]
            self._chunk_left = -1

    def _feed(self, data: bytes) -> None:
        """Add body bytes, decompressing, never beyond the limit (also after decompression)."""
        if not data:
            return
        self._raw += len(data)
        if self._raw > self._limit:
            raise BodyTooLarge(f"body larger than {self._limit} bytes")
        if self._decoder is None:
            self._body += data
        else:
            room = self._limit - len(self._body) + 1
            self._body += self._decoder.decompress(data, room)
            if len(self._body) > self._limit or self._decoder.unconsumed_tail:
                raise BodyTooLarge(f"body larger than {self._limit} bytes")

    def _finish(self) -> None:
        if self._decoder is not None:
            self._body += self._decoder.flush()
            if len(self._body) > self._limit:
                raise BodyTooLarge(f"body larger than {self._limit} bytes")
        waiter = self._waiter
        self._waiter = None
        if self._buffer or not self._keep:
            self.closed = True
        if waiter is not None and not waiter.done():
            waiter.set_result(Response(self._status, self._headers, bytes(self._body)))


class Client:
    """Keep-alive connections per origin, shared by every source; GETs (and token POSTs) only.

    Idempotent GETs are sent again once on a fresh connection when a kept-alive one turns
    out to have been closed by the provider before any answer came.
    """

    def __init__(self, tls: ssl.SSLContext, user_agent: str) -> None:
        self._tls = tls
        self._idle: dict[_Origin, list[_Connection]] = {}
        self._user_agent = user_agent
        self._closed = False
        self._watched: dict[asyncio.Future[Response], tuple[float, _Connection]] = {}
        self._watchdog: asyncio.Task[None] | None = None

    async def close(self) -> None:
        """Close every idle connection."""
        self._closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
        for connections in self._idle.values():
            for connection in connections:
                if connection.transport is not None:
                    connection.transport.close()
        self._idle.clear()

    async def get(
        self,
        url: str,
        headers: Mapping[str, str],
        *,
        limit: int,
        timeout: float,
        proxy: str | None = None,
        on_send: Callable[[], None] | None = None,
        form: bytes | None = None,
    ) -> Response:
        """GET `url` with `headers` (plus User-Agent, Accept and Accept-Encoding); TimeoutError
        when connecting, sending and the whole answer take longer than `timeout` seconds.
        `on_send` is called just as the request is written, once connected. With `form` it is
        a POST of those bytes instead (a token request: safe to send again, as a GET is)."""
        deadline = time.monotonic() + timeout
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise ProtocolError(f"cannot request {scheme or 'a relative'} URL")
        port = parts.port or (443 if scheme == "https" else 80)
        origin = _Origin(scheme, parts.hostname, port, proxy)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host = parts.hostname if port in (80, 443) else f"{parts.hostname}:{port}"
        if ":" in parts.hostname:
            host = f"[{parts.hostname}]" if port in (80, 443) else f"[{parts.hostname}]:{port}"
        if proxy is not None and scheme == "http":
            target = url  # a forward proxy takes the absolute URL
        lines = [
            f"{'GET' if form is None else 'POST'} {target} HTTP/1.1",
            f"Host: {host}",
            f"User-Agent: {self._user_agent}",
            "Accept-Encoding: gzip, deflate",
        ]
        # A source's own Accept replaces the default (Fivetran's version=2), never joins it.
        if not any(name.lower() == "accept" for name in headers):
            lines.append("Accept: application/json")
        if proxy is not None and scheme == "http":
            lines += _proxy_authorization(proxy)
        for name, value in headers.items():
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
                raise ProtocolError("a header contains a line break")
            lines.append(f"{name}: {value}")
        if form is not None:
            lines.append(f"Content-Length: {len(form)}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "strict") + (form or b"")
        for attempt in (0, 1):
            connection, reused = await self._connection(origin, deadline)
            if on_send is not None:
                on_send()
            answer = connection.request(data, limit)
            self._watched[answer] = (deadline, connection)
            if self._watchdog is None or self._watchdog.done():
                self._watchdog = asyncio.get_running_loop().create_task(self._expire())
            try:
                response = await answer
            except ConnectionResetError:
                self._discard(connection)
                if reused and attempt == 0:
                    continue  # the provider had closed the idle connection: try a fresh one
                raise
            except BaseException:
                self._discard(connection)
                raise
            finally:
                self._watched.pop(answer, None)
            self._release(origin, connection)
            return response
        raise AssertionError("unreachable")

    async def _expire(self) -> None:
        """Fail answers past their deadline: one timer for every request in flight, instead of
        one per request (an asyncio.timeout each cost a tenth of a request's CPU)."""
        while self._watched:
            await asyncio.sleep(WATCH_TICK)
            now = time.monotonic()
            for answer, (deadline, connection) in list(self._watched.items()):
                if deadline <= now and not answer.done():
                    connection.closed = True
                    answer.set_exception(TimeoutError())

    async def _connection(self, origin: _Origin, deadline: float) -> tuple[_Connection, bool]:
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()
            transport = connection.transport
            if not connection.closed and transport is not None and not transport.is_closing():
                return connection, True
            self._discard(connection)
        async with asyncio.timeout(max(deadline - time.monotonic(), 0)):
            return await self._connect(origin), False

    async def _connect(self, origin: _Origin) -> _Connection:
        loop = asyncio.get_running_loop()
        tls = self._tls if origin.scheme == "https" else None
        if origin.proxy is None:
            _, connection = await loop.create_connection(
                _Connection, origin.host, origin.port, ssl=tls, server_hostname=_sni(origin, tls)
            )
            return connection
        proxy = urlsplit(origin.proxy)
        if not proxy.hostname:
            raise ProtocolError("the proxy URL names no host")
        proxy_tls = self._tls if proxy.scheme == "https" else None
        proxy_port = proxy.port or (443 if proxy.scheme == "https" else 80)
        transport, connection = await loop.create_connection(
            _Connection,
            proxy.hostname,
            proxy_port,
            ssl=proxy_tls,
            server_hostname=proxy.hostname if proxy_tls else None,
        )
        if origin.scheme == "http":
            return connection
        # https through a proxy: a CONNECT tunnel, then TLS with the provider inside it.
        authority = f"{origin.host}:{origin.port}"
        lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
        lines += _proxy_authorization(origin.proxy)
        connect = ("\r\n".join(lines) + "\r\n\r\n").encode()
        answer = await connection.request(connect, 0, head_only=True)
        if answer.status != 200:
            transport.close()
            raise ConnectionRefusedError(f"proxy refused CONNECT: HTTP {answer.status}")
        assert tls is not None
        secure = await loop.start_tls(transport, connection, tls, server_hostname=origin.host)
        assert isinstance(secure, asyncio.Transport)
        connection.transport = secure
        connection.closed = False
        return connection

    def _release(self, origin: _Origin, connection: _Connection) -> None:
        idle = self._idle.setdefault(origin, [])
        if connection.closed or self._closed or len(idle) >= MAX_IDLE_PER_ORIGIN:
            self._discard(connection)
        else:
            idle.append(connection)

    @staticmethod
    def _discard(connection: _Connection) -> None:
        connection.closed = True
        if connection.transport is not None:
            connection.transport.abort()


def _sni(origin: _Origin, tls: ssl.SSLContext | None) -> str | None:
    return origin.host if tls is not None else None


def _proxy_authorization(proxy: str) -> list[str]:
    """Basic credentials of a proxy URL's user:password, as the proxy expects them."""
    parts = urlsplit(proxy)
    if parts.username is None:
        return []
    pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
    return [f"Proxy-Authorization: Basic {base64.b64encode(pair).decode()}"]
