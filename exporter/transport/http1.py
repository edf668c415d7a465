"""A lean HTTP/1.1 client for one job: GET small JSON bodies from providers, on keep-alive
connections, with every limit the exporter needs.

aiohttp's client spent about two thirds of the exporter's CPU per sync (building request and
URL objects, header multidicts, stream readers, trace hooks) for requests that are always the
same shape; a protocol that writes the request bytes and parses the answer in one pass costs
about a third of that (docs/performance.md). Framing (status line, headers, Content-Length,
chunks, trailers) is llhttp's, through httptools, in its strict mode: hand-written framing
let through what it should refuse and refused what it should read. Ours are the pool, the
deadlines, the caps, gzip/deflate, the read-until-close case and proxies from the environment
(absolute-form requests for http://, CONNECT tunnels for https://). It never follows
redirects. Anything else is a `ProtocolError`, a bad answer of that sync.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import re
import ssl
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

import httptools

# The most bytes of one answer's header sections (informational ones and trailers included).
MAX_HEADER_BYTES = 64 * 1024
# Reads are parsed in slices of this size, so the cap holds within one large read too.
FEED_SLICE = 8 * 1024
# The most `1xx` answers before the final one.
MAX_INFORMATIONAL = 10
MAX_IDLE_PER_ORIGIN = 256
# The most request heads kept for reuse; the oldest goes first (a rotated token's, say).
MAX_HEADS = 1024
# How often answers are checked against their deadlines: request timeouts are seconds long.
WATCH_TICK = 0.05


class ProtocolError(Exception):
    """The peer's answer is not HTTP/1.1 as this client speaks it."""


class UnsafeUrl(ProtocolError):
    """A URL (a provider's next page, say) holding bytes a request line cannot carry."""


class StaleConnection(ConnectionResetError):
    """A kept-alive connection the provider had closed before any byte of the answer came:
    the request may be sent again on a new connection, as a new request."""


class BodyTooLarge(Exception):
    """A provider answered more than we read (after decompression): not a sync status."""


@dataclass(frozen=True, slots=True)
class Response:
    """A finished answer: status, headers (lower-case names) and the decoded body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class _Origin(NamedTuple):
    """A pool's key: a tuple, whose hash (twice a request) is C, not a dataclass's Python."""

    pool: str
    scheme: str
    host: str
    port: int
    proxy: str | None


class _Stray(Exception):
    """Bytes after a finished answer: a second answer nobody asked for."""


class _Connection(asyncio.Protocol):
    """One connection: llhttp frames each answer, we cap, decode and hand it over.

    The parser's callbacks only collect; any limit they hit raises, which httptools turns
    into HttpParserCallbackError carrying our exception as its context.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        # Whether any byte came since the last request was written: only a request that got
        # none may be sent again.
        self.answered = False
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[Response] | None = None
        self._limit = 0
        self._head_only = False
        self._reset_answer()

    def _reset_answer(self) -> None:
        self._status = 0
        self._headers: dict[str, str] = {}
        self._head_done = False
        self._interim = False
        self._informational = 0
        self._head_bytes = 0
        self._stalled = 0
        self._progress = False
        self._complete = False
        self._until_close = False
        self._raw = 0
        self._body = bytearray()
        self._decoder: zlib._Decompress | None = None
        self._keep = True

    def restart(self, transport: asyncio.Transport) -> None:
        """Speak afresh on `transport` (TLS inside a CONNECT tunnel), with a new parser."""
        self.transport = transport
        self.closed = False
        self._parser = httptools.HttpResponseParser(self)

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
            except (ProtocolError, BodyTooLarge, zlib.error) as error:
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
        self.answered = False
        self._reset_answer()
        self.transport.write(data)
        return self._waiter

    def data_received(self, data: bytes) -> None:
        self.answered = True
        waiter = self._waiter
        if waiter is None or waiter.done():
            self.closed = True  # bytes nobody asked for: never reuse this connection
            return
        try:
            if len(data) <= FEED_SLICE:
                self._feed(data)
            else:
                view = memoryview(data)
                for at in range(0, len(data), FEED_SLICE):
                    self._feed(view[at : at + FEED_SLICE])
        except Exception as exc:  # the parser's and ours alike: a bad answer, no traceback
            self.closed = True
            error = _answer_error(exc)
            if error is not None and not waiter.done():
                waiter.set_exception(error)

    def _feed(self, piece: bytes | memoryview) -> None:
        """Parse `piece`; count it as stalled when it neither ends a head nor carries body.

        Stalled bytes are a head or trailer section (or chunk lines) arriving in pieces; fed
        in slices, a section over the cap is caught however its bytes arrive.
        """
        self._progress = False
        self._parser.feed_data(piece)
        if self._progress:
            self._stalled = 0
        else:
            self._stalled += len(piece)
            if self._stalled > MAX_HEADER_BYTES:
                raise ProtocolError("header or trailer section too large")

    # llhttp's callbacks, in the order it makes them.

    def on_message_begin(self) -> None:
        if self._complete:
            raise _Stray
        self._headers = {}

    def on_status(self, reason: bytes) -> None:
        self._count_head(len(reason) + 15)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4)
        if self._head_done:
            return  # a trailer: counted, not kept
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers = self._headers
        headers[key] = f"{headers[key]}, {text}" if key in headers else text

    def _count_head(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > MAX_HEADER_BYTES:
            raise ProtocolError("header or trailer section too large")

    def on_headers_complete(self) -> None:
        self._progress = True
        parser = self._parser
        status = parser.get_status_code()
        if parser.get_http_version() not in ("1.1", "1.0"):
            raise ProtocolError("not an HTTP/1.x answer")
        if not 100 <= status <= 599:
            raise ProtocolError(f"status {status} is not in 100-599")
        if status < 200:
            if status == 101:
                raise ProtocolError("an upgrade nobody asked for")
            self._informational += 1
            if self._informational > MAX_INFORMATIONAL:
                raise ProtocolError(f"more than {MAX_INFORMATIONAL} informational answers")
            self._interim = True
            return
        self._interim = False
        self._status = status
        self._head_done = True
        headers = self._headers
        if self._head_only:
            self._complete = True
            self._resolve(Response(status, headers, b""))
            return
        self._keep = parser.should_keep_alive()
        encoding = headers.get("content-encoding", "identity").strip().lower()
        if encoding in ("gzip", "x-gzip"):
            self._decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._decoder = zlib.decompressobj()
        elif encoding not in ("identity", ""):
            raise ProtocolError(f"unsupported Content-Encoding {encoding[:40]!r}")
        coding = headers.get("transfer-encoding")
        if coding is not None and coding.strip().lower() != "chunked":
            raise ProtocolError(f"unsupported Transfer-Encoding {coding[:40]!r}")
        if status in (204, 304):
            return
        length = headers.get("content-length")
        if length is not None:
            if int(length) > self._limit:
                raise BodyTooLarge(f"body larger than {self._limit} bytes")
        elif coding is None:
            self._until_close = True
            self._keep = False

    def on_body(self, data: bytes) -> None:
        """Add body bytes, decompressing, never beyond the limit (also after decompression)."""
        self._progress = True
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

    def on_message_complete(self) -> None:
        self._progress = True
        if self._interim:
            self._interim = False
            return
        if self._complete:
            return  # the end of a CONNECT answer already handed over
        self._keep = self._keep and self._parser.should_keep_alive()
        self._complete = True
        self._finish()

    def _finish(self) -> None:
        decoder = self._decoder
        if decoder is not None:
            self._body += decoder.flush()
            if len(self._body) > self._limit:
                raise BodyTooLarge(f"body larger than {self._limit} bytes")
            if self._raw and not decoder.eof:
                raise ProtocolError("compressed body cut short")
        if not self._keep:
            self.closed = True
        self._resolve(Response(self._status, self._headers, bytes(self._body)))

    def _resolve(self, response: Response) -> None:
        waiter = self._waiter
        self._waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_result(response)


def _answer_error(exc: Exception) -> Exception | None:
    """What a failed parse means to the request: our own limit, or a bad answer; None for
    stray bytes after a finished answer (the connection is merely not reused)."""
    if isinstance(exc, httptools.HttpParserCallbackError) and exc.__context__ is not None:
        exc = exc.__context__  # type: ignore[assignment]
    if isinstance(exc, _Stray):
        return None
    if isinstance(exc, ProtocolError | BodyTooLarge | zlib.error):
        return exc
    if isinstance(exc, httptools.HttpParserError):
        return ProtocolError(str(exc) or type(exc).__name__)
    return ProtocolError(f"unreadable answer ({type(exc).__name__})")


class Client:
    """Keep-alive connections per pool (one pool per source) and origin; GETs (and token
    POSTs) only.

    A connection carries one source's requests only, so stray bytes from one provider can
    never be read as another source's answer. A request on a kept-alive connection that the
    provider had closed before answering raises `StaleConnection`: whoever sends it again
    counts it as the new request it is.
    """

    def __init__(self, tls: ssl.SSLContext, user_agent: str) -> None:
        self._tls = tls
        self._idle: dict[_Origin, list[_Connection]] = {}
        self._user_agent = user_agent
        self._closed = False
        self._watched: dict[asyncio.Future[Response], tuple[float, _Connection]] = {}
        self._watchdog: asyncio.Task[None] | None = None
        self._heads: dict[tuple[_Origin, tuple[tuple[str, str], ...]], bytes] = {}

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
        pool: str = "",
        fresh: bool = False,
        form: bytes | None = None,
    ) -> Response:
        """GET `url` with `headers` (plus User-Agent, Accept and Accept-Encoding) on a
        connection of `pool`; TimeoutError when connecting, sending and the whole answer take
        longer than `timeout` seconds. `on_send` is called just as the request is written;
        `fresh` opens a new connection rather than reusing one. With `form` it is a POST of
        those bytes instead (a token request)."""
        deadline = time.monotonic() + timeout
        if not _sendable(url):
            raise UnsafeUrl("the URL holds a space, a control or a non-ASCII character")
        scheme, hostname, given, target = _split(url)
        if scheme not in ("http", "https") or not hostname:
            raise ProtocolError(f"cannot request {scheme or 'a relative'} URL")
        port = given or (443 if scheme == "https" else 80)
        origin = _Origin(pool, scheme, hostname, port, proxy)
        if proxy is not None and scheme == "http":
            # A forward proxy takes the absolute URL, rebuilt from the checked parts.
            target = f"{scheme}://{_host(origin)}{target}"
        if form is None:
            key = (origin, tuple(headers.items()))
            tail = self._heads.get(key)
            if tail is None:
                tail = self._head(origin, headers, None)
                if len(self._heads) >= MAX_HEADS:
                    del self._heads[next(iter(self._heads))]
                self._heads[key] = tail
            data = b"GET " + target.encode("ascii") + tail
        else:
            data = b"POST " + target.encode("ascii") + self._head(origin, headers, form) + form
        connection, reused = await self._connection(origin, deadline, fresh)
        if on_send is not None:
            on_send()
        answer = connection.request(data, limit)
        self._watched[answer] = (deadline, connection)
        if self._watchdog is None or self._watchdog.done():
            self._watchdog = asyncio.get_running_loop().create_task(self._expire())
        try:
            response = await answer
        except ConnectionResetError as exc:
            self._discard(connection)
            if reused and not connection.answered:
                raise StaleConnection(str(exc)) from exc
            raise
        except BaseException:
            self._discard(connection)
            raise
        finally:
            self._watched.pop(answer, None)
        self._release(origin, connection)
        return response

    def _head(self, origin: _Origin, headers: Mapping[str, str], form: bytes | None) -> bytes:
        """A request's bytes after its target, up to its body. A GET's are the same for every
        sync of a source, so `get` keeps them per origin and headers: building and checking
        them took about 2% of a read's instructions (callgrind)."""
        lines = [
            " HTTP/1.1",
            f"Host: {_host(origin)}",
            f"User-Agent: {self._user_agent}",
            "Accept-Encoding: gzip, deflate",
        ]
        # A source's own Accept replaces the default (Fivetran's version=2), never joins it.
        if "accept" not in map(str.lower, headers):
            lines.append("Accept: application/json")
        if origin.proxy is not None and origin.scheme == "http":
            lines += _proxy_authorization(origin.proxy)
        if _breaks("".join(headers)) or _breaks("".join(headers.values())):
            raise ProtocolError("a header contains a line break or NUL")
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if form is not None:
            lines.append(f"Content-Length: {len(form)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "strict")

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

    async def _connection(
        self, origin: _Origin, deadline: float, fresh: bool
    ) -> tuple[_Connection, bool]:
        idle = None if fresh else self._idle.get(origin)
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
        connection.restart(secure)
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


_AUTHORITY = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*")


@functools.lru_cache(maxsize=256)
def _authority(prefix: str) -> tuple[str, str | None, int | None]:
    """Scheme, host and port of a URL's `scheme://authority`: parsed once per origin."""
    parts = urlsplit(prefix)
    return parts.scheme.lower(), parts.hostname, parts.port


def _split(url: str) -> tuple[str, str | None, int | None, str]:
    """Scheme, host, port and request target (path and query) of `url`, as urlsplit reads
    them; the origin part is cached, since every sync of a source shares it."""
    match = _AUTHORITY.match(url)
    if match is None:
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return parts.scheme.lower(), parts.hostname, parts.port, target
    rest = url[match.end() :]
    fragment = rest.find("#")
    if fragment >= 0:
        rest = rest[:fragment]
    if rest.find("?") == len(rest) - 1:
        rest = rest[:-1]  # an empty query is no query
    if not rest or rest[0] == "?":
        rest = "/" + rest
    return (*_authority(match.group()), rest)


def _sendable(url: str) -> bool:
    """No space, control or non-ASCII character, checked in C: a URL goes into a request line
    (CR, LF, NUL, space and the other controls would end or split it) and non-ASCII has no
    one encoding there."""
    return url.isascii() and url.isprintable() and " " not in url


def _breaks(text: str) -> bool:
    """Whether `text` holds a line break or NUL (header names and values must not)."""
    return "\r" in text or "\n" in text or "\x00" in text


def _host(origin: _Origin) -> str:
    """The Host header of an origin: the port only when it is not the scheme's default."""
    name = f"[{origin.host}]" if ":" in origin.host else origin.host
    default = 443 if origin.scheme == "https" else 80
    return name if origin.port == default else f"{name}:{origin.port}"


def _sni(origin: _Origin, tls: ssl.SSLContext | None) -> str | None:
    return origin.host if tls is not None else None


def _proxy_authorization(proxy: str) -> list[str]:
    """Basic credentials of a proxy URL's user:password, as the proxy expects them."""
    parts = urlsplit(proxy)
    if parts.username is None:
        return []
    pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
    return [f"Proxy-Authorization: Basic {base64.b64encode(pair).decode()}"]
