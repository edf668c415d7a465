"""How the exporter's HTTP client frames answers: one table of valid and invalid answers, each
served by a raw TCP server on 127.0.0.1 whole, a byte at a time, and split in two at every
byte boundary of its head and chunk lines. Every delivery of a case must end the same way:
the same status, body and reusability of the connection, or the same kind of failure."""

from __future__ import annotations

import asyncio
import gzip
import logging
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from exporter.transport.client import make_client, tls_context
from exporter.transport.http1 import BodyTooLarge, Client, ProtocolError

LIMIT = 4096
KiB = 1024
# Between two pieces: enough for the client to read the first on its own.
PAUSE = 0.002

Outcome = tuple[Any, ...]


def ok(status: int, body: bytes, reusable: bool = True) -> Outcome:
    return ("ok", status, body, reusable)


BAD: Outcome = ("bad", "ProtocolError")
TOO_LARGE: Outcome = ("bad", "BodyTooLarge")
CUT: Outcome = ("cut",)


@dataclass(frozen=True)
class Case:
    """An answer's bytes, what reading it must give, and whether the server then closes."""

    data: bytes
    expect: Outcome
    close: bool = False


def head(status: str, *headers: str, version: str = "HTTP/1.1") -> bytes:
    return "\r\n".join([f"{version} {status}", *headers, "", ""]).encode("utf-8")


def chunked(*pieces: bytes, trailers: bytes = b"") -> bytes:
    body = b"".join(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" for piece in pieces)
    return body + b"0\r\n" + trailers + b"\r\n"


TE = "Transfer-Encoding: chunked"
CL5 = "Content-Length: 5"
GZ = gzip.compress(b'{"status": "active"}')
BIG_HEADER = "X-Pad: " + "p" * (97 * KiB)
NEAR_CAP_HEADER = "X-Pad: " + "p" * (60 * KiB)

CASES: dict[str, Case] = {
    # Valid answers, read whatever their split.
    "content-length": Case(head("200 OK", CL5) + b"hello", ok(200, b"hello")),
    "lower-case-names": Case(head("200 OK", "content-length: 5") + b"hello", ok(200, b"hello")),
    "no-reason-phrase": Case(head("200 ", CL5) + b"hello", ok(200, b"hello")),
    "chunked": Case(head("200 OK", TE) + chunked(b"hel", b"lo"), ok(200, b"hello")),
    "chunked-upper-hex-leading-zeros": Case(
        head("200 OK", TE) + b"000A\r\n0123456789\r\n0\r\n\r\n", ok(200, b"0123456789")
    ),
    # RFC 9112 7.1.1: chunk extensions are ignored by a recipient that does not know them.
    "chunk-extensions": Case(
        head("200 OK", TE) + b'5;name=value;q="a b"\r\nhello\r\n0;last\r\n\r\n',
        ok(200, b"hello"),
    ),
    # RFC 9112 7.1.2: a trailer section after the last chunk.
    "trailers": Case(
        head("200 OK", TE) + chunked(b"hello", trailers=b"X-Checksum: 1\r\nX-Other: 2\r\n"),
        ok(200, b"hello"),
    ),
    "trailer-near-cap": Case(
        head("200 OK", TE) + chunked(b"hello", trailers=NEAR_CAP_HEADER.encode() + b"\r\n"),
        ok(200, b"hello"),
    ),
    "header-near-cap": Case(head("200 OK", NEAR_CAP_HEADER, CL5) + b"hello", ok(200, b"hello")),
    # RFC 9112 6.3 (1): 1xx, 204 and 304 answers end with their head, whatever they say.
    "204": Case(head("204 No Content"), ok(204, b"")),
    "204-with-content-length": Case(head("204 No Content", CL5), ok(204, b"")),
    "304-with-content-length": Case(head("304 Not Modified", "Content-Length: 900"), ok(304, b"")),
    "204-gzip": Case(head("204 No Content", "Content-Encoding: gzip"), ok(204, b"")),
    "100-continue": Case(head("100 Continue") + head("200 OK", CL5) + b"hello", ok(200, b"hello")),
    "100-then-103": Case(
        head("100 Continue")
        + head("103 Early Hints", "Link: </a>")
        + head("200 OK", CL5)
        + b"hello",
        ok(200, b"hello"),
    ),
    "ten-1xx": Case(head("100 Continue") * 10 + head("200 OK", CL5) + b"hello", ok(200, b"hello")),
    "http-1.0": Case(head("200 OK", CL5, version="HTTP/1.0") + b"hello", ok(200, b"hello", False)),
    "connection-close": Case(
        head("200 OK", CL5, "Connection: close") + b"hello", ok(200, b"hello", False)
    ),
    # RFC 9112 6.3 (8): no length and no chunks: the body runs until the server closes.
    "until-close": Case(head("200 OK") + b"hello", ok(200, b"hello", False), close=True),
    "gzip-length": Case(
        head("200 OK", "Content-Encoding: gzip", f"Content-Length: {len(GZ)}") + GZ,
        ok(200, b'{"status": "active"}'),
    ),
    "gzip-chunked": Case(
        head("200 OK", "Content-Encoding: gzip", TE) + chunked(GZ[:7], GZ[7:]),
        ok(200, b'{"status": "active"}'),
    ),
    "404-with-body": Case(head("404 Not Found", CL5) + b"nope!", ok(404, b"nope!")),
    "599": Case(head("599 Whatever", CL5) + b"hello", ok(599, b"hello")),
    "stray-answer-after": Case(
        head("200 OK", CL5) + b"hello" + head("200 OK", CL5) + b"other", ok(200, b"hello", False)
    ),
    # Invalid chunk sizes.
    "chunk-size-0x": Case(head("200 OK", TE) + b"0x5\r\nhello\r\n0\r\n\r\n", BAD),
    "chunk-size-underscore": Case(
        head("200 OK", TE) + b"1_0\r\n" + b"x" * 16 + b"\r\n0\r\n\r\n", BAD
    ),
    "chunk-size-plus": Case(head("200 OK", TE) + b"+5\r\nhello\r\n0\r\n\r\n", BAD),
    "chunk-size-leading-space": Case(head("200 OK", TE) + b" 5\r\nhello\r\n0\r\n\r\n", BAD),
    "chunk-size-negative": Case(head("200 OK", TE) + b"-2\r\n\r\n0\r\n\r\n", BAD),
    "chunk-size-empty": Case(head("200 OK", TE) + b"\r\nhello\r\n0\r\n\r\n", BAD),
    "chunk-data-too-long": Case(head("200 OK", TE) + b"3\r\nhello\r\n0\r\n\r\n", BAD),
    "chunk-without-crlf": Case(head("200 OK", TE) + b"5\r\nhelloX0\r\n\r\n", BAD),
    # Transfer codings we do not speak, and framing that contradicts itself.
    "xchunked": Case(head("200 OK", "Transfer-Encoding: xchunked") + b"hello", BAD, close=True),
    "chunked-then-gzip": Case(
        head("200 OK", "Transfer-Encoding: chunked, gzip") + b"hello", BAD, close=True
    ),
    "content-length-and-chunked": Case(head("200 OK", CL5, TE) + chunked(b"hello"), BAD),
    "two-content-lengths": Case(head("200 OK", CL5, "Content-Length: 6") + b"hello!", BAD),
    "content-length-letters": Case(head("200 OK", "Content-Length: 5a") + b"hello", BAD),
    "content-length-negative": Case(head("200 OK", "Content-Length: -1") + b"hello", BAD),
    "content-length-arabic-digit": Case(head("200 OK", "Content-Length: \u0665") + b"hello", BAD),
    # Status lines.
    "status-four-digits": Case(head("2000 OK", CL5) + b"hello", BAD),
    "status-two-digits": Case(head("20 OK", CL5) + b"hello", BAD),
    "status-4300-digits": Case(head("2" * 4300 + " OK", CL5) + b"hello", BAD),
    "status-099": Case(head("099 OK", CL5) + b"hello", BAD),
    "status-600": Case(head("600 OK", CL5) + b"hello", BAD),
    "status-999": Case(head("999 OK", CL5) + b"hello", BAD),
    "status-fullwidth-digits": Case(head("\uff12\uff10\uff10 OK", CL5) + b"hello", BAD),
    "status-101": Case(head("101 Switching Protocols", "Upgrade: x"), BAD),
    "version-2.0": Case(head("200 OK", CL5, version="HTTP/2.0") + b"hello", BAD),
    "not-http": Case(head("200 OK", CL5, version="HTXP/1.1") + b"hello", BAD),
    "lf-only": Case(b"HTTP/1.1 200 OK\nContent-Length: 5\n\nhello", BAD),
    "1500-continues": Case(head("100 Continue") * 1500 + head("200 OK", CL5) + b"hello", BAD),
    # Header lines.
    "obs-fold-with-colon": Case(head("200 OK", "X-A: a", " X-B: b", CL5) + b"hello", BAD),
    "no-colon": Case(head("200 OK", "Nonsense", CL5) + b"hello", BAD),
    "space-before-colon": Case(head("200 OK", "Content-Length : 5") + b"hello", BAD),
    "bare-cr-in-value": Case(head("200 OK", "X-A: a\rb", CL5) + b"hello", BAD),
    "nul-in-value": Case(head("200 OK", "X-A: a\0b", CL5) + b"hello", BAD),
    "header-over-cap": Case(head("200 OK", BIG_HEADER, CL5) + b"hello", BAD),
    "trailer-over-cap": Case(
        head("200 OK", TE) + chunked(b"hello", trailers=BIG_HEADER.encode() + b"\r\n"), BAD
    ),
    "endless-trailer": Case(head("200 OK", TE) + b"5\r\nhello\r\n0\r\nX: " + b"t" * 97 * KiB, BAD),
    "endless-chunk-extension": Case(head("200 OK", TE) + b"5;" + b"e" * 97 * KiB, BAD),
    # Bodies.
    "gzip-trailer-cut": Case(
        head("200 OK", "Content-Encoding: gzip", f"Content-Length: {len(GZ) - 4}") + GZ[:-4], BAD
    ),
    "gzip-until-close-cut": Case(
        head("200 OK", "Content-Encoding: gzip") + GZ[:-6], BAD, close=True
    ),
    "too-large-announced": Case(head("200 OK", f"Content-Length: {LIMIT + 1}"), TOO_LARGE),
    "too-large-chunked": Case(head("200 OK", TE) + chunked(b"x" * (LIMIT + 1)), TOO_LARGE),
    "short-of-length": Case(head("200 OK", "Content-Length: 10") + b"hello", CUT, close=True),
    "no-last-chunk": Case(head("200 OK", TE) + b"5\r\nhello\r\n", CUT, close=True),
}


def deliveries(data: bytes) -> Iterator[tuple[str, list[bytes]]]:
    """Whole, a byte at a time, and in two at every boundary of the head and chunk lines
    (every boundary for small answers; at each KiB for the ones near and over the caps)."""
    yield "whole", [data]
    if len(data) > 2 * KiB:
        yield "kib", [data[at : at + KiB] for at in range(0, len(data), KiB)]
        step = KiB
    else:
        yield "bytes", [data[at : at + 1] for at in range(len(data))]
        step = 1
    for at in range(step, len(data), step):
        yield f"at-{at}", [data[:at], data[at:]]


class Handler(socketserver.BaseRequestHandler):
    """Reads one request `/<case>/<delivery>`, writes the case's bytes in its pieces."""

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        request = b""
        while b"\r\n\r\n" not in request:
            more = sock.recv(4096)
            if not more:
                return
            request += more
        name, delivery = request.split(b" ", 2)[1].decode().strip("/").split("/")
        case = CASES[name]
        pieces = dict(deliveries(case.data))[delivery]
        try:
            for index, piece in enumerate(pieces):
                if index:
                    time.sleep(PAUSE)
                sock.sendall(piece)
            if case.close:
                sock.shutdown(socket.SHUT_WR)
            sock.settimeout(5)
            while sock.recv(4096):
                pass  # keep the connection until the client lets it go
        except OSError:
            pass


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with Server(("127.0.0.1", 0), Handler) as served:
        thread = threading.Thread(target=served.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{served.server_address[1]}"
        served.shutdown()


def reusable(client: Client) -> bool:
    """Whether the answer left its connection in the pool, fit to carry the next request."""
    idle = [c for pool in client._idle.values() for c in pool]
    return any(
        not c.closed and c.transport is not None and not c.transport.is_closing() for c in idle
    )


TLS = tls_context()


async def read(base: str, name: str, delivery: str) -> Outcome:
    client = make_client(TLS)
    try:
        try:
            response = await client.get(f"{base}/{name}/{delivery}", {}, limit=LIMIT, timeout=3)
        except (ProtocolError, BodyTooLarge) as exc:
            # A bad answer's connection is never used again, whatever it said of keep-alive.
            return ("bad", type(exc).__name__) + (("kept",) if reusable(client) else ())
        except ConnectionError:
            return CUT + (("kept",) if reusable(client) else ())
        except TimeoutError:
            return ("timeout",)
        # Bytes after the answer arrive a pause later, or not at all.
        await asyncio.sleep(PAUSE * 5)
        return ("ok", response.status, response.body, reusable(client))
    finally:
        await client.close()


async def read_all(base: str, name: str) -> dict[str, Outcome]:
    limit = asyncio.Semaphore(24)

    async def one(delivery: str) -> tuple[str, Outcome]:
        async with limit:
            return delivery, await read(base, name, delivery)

    names = [delivery for delivery, _ in deliveries(CASES[name].data)]
    return dict(await asyncio.gather(*(one(delivery) for delivery in names)))


@pytest.mark.parametrize("name", list(CASES))
def test_every_split_of_an_answer_reads_the_same(
    server: str, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    outcomes = asyncio.run(read_all(server, name))
    expected = CASES[name].expect
    wrong = {delivery: got for delivery, got in outcomes.items() if got != expected}
    assert not wrong, f"expected {expected}, got {dict(list(wrong.items())[:5])}"
    # A parser's exception escaping data_received is logged by asyncio with its traceback.
    errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert not errors, errors[:3]
