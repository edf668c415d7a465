"""The HTTP transport, written once: one GET with its limits, every failure turned into a reason."""

from __future__ import annotations

import email.utils
import os
import ssl
import time
import urllib.request
import zlib
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import certifi
import orjson

from exporter import __version__
from exporter.errors import ConfigError, UpstreamError
from exporter.threads import in_thread
from exporter.transport.http1 import BodyTooLarge, Client, ProtocolError, StaleConnection, UnsafeUrl
from exporter.transport.jsonbody import without_bad_items

USER_AGENT = f"sync-status-exporter/{__version__}"

MAX_BODY_BYTES = 4 * 1024 * 1024
# A list page holds many syncs (Sequin's and Terminal's whole objects), so more is allowed.
MAX_LIST_BYTES = 64 * 1024 * 1024
# Bodies larger than this are decoded in a thread: 60 MiB took the event loop over a second.
THREAD_BYTES = 1024 * 1024


def make_client(tls: ssl.SSLContext) -> Client:
    """The exporter's HTTP client: keep-alive connections, pooled per source.

    Proxies are resolved once per source (env_proxy), not looked up on every request.
    """
    return Client(tls, USER_AGENT)


def tls_context() -> ssl.SSLContext:
    """Trust what httpx trusted: SSL_CERT_FILE or SSL_CERT_DIR if set, else certifi's bundle.

    So slim images without system CA certificates still verify providers' certificates.
    Built once at start-up: a bad SSL_CERT_FILE is a start-up error, not a failed scrape.
    """
    try:
        if os.environ.get("SSL_CERT_FILE"):
            return ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
        if os.environ.get("SSL_CERT_DIR"):
            return ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
        return ssl.create_default_context(cafile=certifi.where())
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(f"cannot load the CA certificates for provider TLS: {reason}") from None


def env_proxy(base_url: str) -> str | None:
    """The proxy from HTTP(S)_PROXY/ALL_PROXY for this base URL, or None if NO_PROXY exempts it."""
    parts = urlsplit(base_url)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return proxy


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header: seconds, fractional seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - now
    if seconds != seconds:
        return None
    return max(seconds, 0.0)


def _transport_failure(exc: BaseException) -> tuple[str, str]:
    """Classify by the root cause, so a wrapped socket timeout still counts as a timeout.

    A body that arrived but cannot be decompressed is the provider's bad answer, not a
    failed connection.
    """
    root: BaseException = exc
    while root.__cause__ is not None:
        root = root.__cause__
    if isinstance(root, TimeoutError):
        return "timeout", type(root).__name__
    return "connect", type(root).__name__


def _http_error(status_code: int) -> str:
    if status_code in (401, 403):
        return "unauthorized"
    if status_code == 404:
        return "not_found"
    if status_code == 429:
        return "rate_limited"
    if status_code >= 500:
        return "server_error"
    return "bad_response"


async def get_json(
    client: Client,
    url: str,
    headers: Mapping[str, str],
    *,
    timeout: float,
    limit: int = MAX_BODY_BYTES,
    proxy: str | None = None,
    on_send: Callable[[], None] | None = None,
    form: bytes | None = None,
    on_dropped: Callable[[int], None] | None = None,
    pool: str = "",
    fresh: bool = False,
) -> tuple[str, Any]:
    """GET `url` (POST `form` if given); its status code and decoded JSON body, or
    UpstreamError for any failure.

    The timeout covers connect, send and the whole body. A 429's wait comes from Retry-After,
    or from a `retryAfter` number in a JSON error body (Terminal documents one) when the
    header is absent. With `on_dropped` (a list's page), list items no UTF-8 can carry are
    dropped and their number given to it, instead of the whole body refused.
    `StaleConnection` passes through: the caller decides on a resend.
    """
    code = ""
    try:
        response = await client.get(
            url,
            headers,
            limit=limit,
            timeout=timeout,
            proxy=proxy,
            on_send=on_send,
            pool=pool,
            fresh=fresh,
            form=form,
        )
        status, content = response.status, response.body
        code = str(status)
        retry_header = response.headers.get("retry-after")
        if status != 200:
            error = UpstreamError(_http_error(status), f"HTTP {status}", code=code)
            if status == 429:
                error.retry_after = retry_after_seconds(retry_header, time.time())
                if error.retry_after is None:
                    error.retry_after = _body_retry_after(content)
            raise error
        lenient = on_dropped is not None
        if len(content) > THREAD_BYTES:
            body, dropped = await in_thread(lambda: _decoded(content, lenient), "json", no_gc=True)
        else:
            body, dropped = _decoded(content, lenient)
        if dropped and on_dropped is not None:
            on_dropped(dropped)
        return code, body
    except (UpstreamError, StaleConnection):
        raise
    except Exception as exc:
        reason, detail = _failure(exc, timeout)
        raise UpstreamError(reason, detail, code=code) from None


def _decoded(content: bytes, lenient: bool) -> tuple[Any, int]:
    """The body's JSON, and how many unreadable list items were left out (with `lenient`)."""
    try:
        return orjson.loads(content), 0
    except orjson.JSONDecodeError:
        if not lenient:
            raise
        try:
            body, dropped = without_bad_items(content)
        except ValueError:
            dropped = 0
        if not dropped:  # nothing to drop: refused for what orjson refused
            raise
        return body, dropped


def _body_retry_after(content: bytes) -> float | None:
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(body, dict):
        return None
    seconds = body.get("retryAfter")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return None
    return max(float(seconds), 0.0) if seconds == seconds else None


def _failure(exc: Exception, timeout: float) -> tuple[str, str]:
    """The reason and detail of a request that raised: every failure is data, never a crash."""
    if isinstance(exc, TimeoutError):
        return "timeout", f"no answer within {timeout:.3g}s"
    if isinstance(exc, UnsafeUrl):
        return "bad_response", f"URL not requested: {exc}"
    if isinstance(exc, zlib.error):
        return "bad_response", "body cannot be decoded as its Content-Encoding says"
    if isinstance(exc, ProtocolError):
        return "bad_response", f"not an HTTP answer we read: {exc}"
    if isinstance(exc, OSError):
        return _transport_failure(exc)
    if isinstance(exc, BodyTooLarge):
        return "bad_response", str(exc)
    if isinstance(exc, orjson.JSONDecodeError):
        return "bad_response", "body is not JSON"
    # An answer nobody foresaw must cost one sync, never the whole scrape.
    return "bad_response", f"unreadable answer ({type(exc).__name__})"
