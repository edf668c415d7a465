"""One read of one sync: Retry-After forms, and failures classified by their real cause."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from exporter.providers.base import UpstreamError
from exporter.transport.client import get_json, make_client, retry_after_seconds, tls_context

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        ("0.62", 0.62),
        ("  3 ", 3.0),
        ("-5", 0.0),
        (format_datetime(datetime.fromtimestamp(NOW + 90, UTC), usegmt=True), 90.0),
        (format_datetime(datetime.fromtimestamp(NOW - 90, UTC), usegmt=True), 0.0),
        ("", None),
        (None, None),
        ("soon", None),
        ("nan", None),
    ],
)
def test_retry_after_forms(header: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(header, NOW) == seconds


def test_retry_after_http_date_is_relative_to_now() -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    waited = retry_after_seconds(format_datetime(when, usegmt=True), when.timestamp() - 30)
    assert waited is not None and 29 <= waited <= 31


@pytest.fixture
def rude_server() -> Iterator[tuple[int, int]]:
    """Two raw TCP servers on 127.0.0.1: one that hangs up at once, one that never answers."""
    hangup = socket.socket()
    hangup.bind(("127.0.0.1", 0))
    hangup.listen()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    stop = threading.Event()

    def serve() -> None:
        hangup.settimeout(0.1)
        held = []
        while not stop.is_set():
            try:
                connection, _ = hangup.accept()
            except TimeoutError:
                continue
            connection.recv(1024)
            connection.close()
            held.append(connection)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield hangup.getsockname()[1], silent.getsockname()[1]
    stop.set()
    thread.join()
    hangup.close()
    silent.close()


def read(url: str, timeout: float = 2.0) -> tuple[str, str]:
    async def go() -> tuple[str, str]:
        client = make_client(tls_context())
        try:
            await get_json(client, url, {}, timeout=timeout)
        except UpstreamError as error:
            return error.reason, error.code
        finally:
            await client.close()
        raise AssertionError("the request did not fail")

    return asyncio.run(go())


def test_connection_refused_is_connect_not_timeout() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert read(f"http://127.0.0.1:{port}/v1/syncs/x") == ("connect", "")


def test_hang_up_is_connect_and_silence_is_timeout(rude_server: tuple[int, int]) -> None:
    hangup, silent = rude_server
    assert read(f"http://127.0.0.1:{hangup}/v1/syncs/x") == ("connect", "")
    assert read(f"http://127.0.0.1:{silent}/v1/syncs/x", timeout=0.5) == ("timeout", "")
