"""Receiving providers' webhooks: `POST /webhooks/{source}`, authenticated before it is read.

Basic auth does not cover these paths (providers cannot send it): each source's webhook
secret does, as the provider's HMAC signature of the raw body or, for providers that
document none, the secret itself as `?token=` or a Bearer token. Every comparison takes
constant time, and nothing from a refused delivery is kept beyond a counter.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from jmespath.exceptions import JMESPathError

from exporter.schema import WebhookConfig, WebhookSignature, compile_path
from exporter.threads import in_thread

if TYPE_CHECKING:
    from exporter.exposition.selfmetrics import SelfMetrics
    from exporter.sources.source import Source

log = logging.getLogger("exporter.webhooks")

OTHER = "other"
# Bodies above this are parsed in a worker thread, off the event loop that serves scrapes.
PARSE_IN_THREAD = 64 * 1024
READ_CHUNK = 64 * 1024
# The whole body must arrive within this (a total, not an idle timer, so a client trickling a
# byte at a time cannot hold its connection slot); the headers have their own deadline.
READ_TIMEOUT = 10.0

Lookup = Callable[[str], "Source | None"]


@dataclass(frozen=True, slots=True)
class Delivery:
    """An accepted delivery: its source, its event's bounded name, and its JSON body."""

    source: Source
    event: str
    body: Any
    digest: str


Deliver = Callable[[Delivery], Awaitable[None]]


ROUTE = "webhook"


def is_webhook(request: web.Request) -> bool:
    """Whether the router sent a request to the webhook handler (not merely a path that looks
    like one), which basic auth leaves to the webhook secret."""
    route = request.match_info.route
    return route.name == ROUTE and request.method == "POST"


def _decoded(text: str, encoding: str) -> bytes | None:
    try:
        if encoding == "hex":
            return bytes.fromhex(text)
        padded = text + "=" * (-len(text) % 4)
        if encoding == "base64url":
            return base64.urlsafe_b64decode(padded.encode("ascii"))
        return base64.b64decode(padded.encode("ascii"), validate=True)
    except (ValueError, binascii.Error, UnicodeEncodeError):
        return None


def signature_problem(signature: WebhookSignature, key: bytes, body: bytes, value: str) -> str:
    """Why a signature header's value does not sign `body` under `key` ('' when it does)."""
    if not value:
        return "missing_signature"
    text = value.strip()
    if signature.prefix:
        if not text.startswith(signature.prefix):
            return "bad_signature"
        text = text[len(signature.prefix) :]
    given = _decoded(text, signature.encoding)
    expected = hmac.new(key, body, getattr(hashlib, signature.algorithm)).digest()
    if given is None or not hmac.compare_digest(given, expected):
        return "bad_signature"
    return ""


def token_problem(key: bytes, query: Mapping[str, str], headers: Mapping[str, str]) -> str:
    """Why a delivery's `?token=` or Bearer token is not the secret ('' when it is)."""
    given = query.get("token", "")
    authorization = headers.get("Authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if not given and scheme.lower() == "bearer":
        given = credentials.strip()
    if not given:
        return "missing_signature"
    digest = hashlib.sha256
    # Compared as digests: equal lengths, so the time taken says nothing about the secret.
    if not hmac.compare_digest(digest(given.encode()).digest(), digest(key).digest()):
        return "bad_signature"
    return ""


def auth_problem(
    config: WebhookConfig, body: bytes, query: Mapping[str, str], headers: Mapping[str, str]
) -> str:
    """Why a delivery is not authenticated ('' when it is), by the source's scheme."""
    if config.signature is None:
        return token_problem(config.key(), query, headers)
    value = headers.get(config.signature.header, "")
    return signature_problem(config.signature, config.key(), body, value)


def event_name(source: Source, body: Any) -> str:
    """The delivery's event as a label value: one of the names known for the source, or other."""
    config = source.config.webhook
    assert config is not None
    path = config.event or source.adapter.webhook_event
    known = config.events or source.adapter.webhook_events
    if path is None:
        return OTHER
    try:
        found = compile_path(path).search(body)
    except (JMESPathError, TypeError, ValueError, ArithmeticError, RecursionError):
        return OTHER
    return found if isinstance(found, str) and found in known else OTHER


async def _read_capped(request: web.Request, cap: int) -> bytes | None:
    """The body, or None as soon as it passes `cap` bytes (the rest is never buffered)."""
    if request.content_length is not None and request.content_length > cap:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(READ_CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > cap:
            return None
        chunks.append(chunk)


def _cut_off(request: web.Request) -> None:
    """Drop a connection whose body came too slowly: its unread rest must not be waited for."""
    if request.transport is not None:
        request.transport.abort()


def _parse(body: bytes) -> Any:
    return orjson.loads(body)


def receiver(
    lookup: Lookup,
    metrics: SelfMetrics,
    deliver: Deliver | None = None,
    read_timeout: float = READ_TIMEOUT,
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The handler of `POST /webhooks/{source}`; `deliver` gets each accepted delivery."""

    async def receive(request: web.Request) -> web.Response:
        name = request.match_info["source"]
        source = lookup(name)
        config = None if source is None else source.config.webhook
        if source is None or config is None:
            return web.Response(status=404, text="no such webhook\n")
        rejected = metrics.webhook_rejected

        try:
            async with asyncio.timeout(read_timeout):
                body = await _read_capped(request, config.max_body_bytes)
        except TimeoutError:
            rejected.labels(name, "too_slow").inc()
            _cut_off(request)
            return web.Response(status=408, text="body not received in time\n")
        if body is None:
            rejected.labels(name, "too_large").inc()
            return web.Response(
                status=413, text=f"body larger than {config.max_body_bytes} bytes\n"
            )
        problem = auth_problem(config, body, request.query, request.headers)
        if problem:
            rejected.labels(name, problem).inc()
            status = 401 if problem == "missing_signature" else 403
            return web.Response(status=status, text="not authenticated\n")
        try:
            if len(body) > PARSE_IN_THREAD:
                parsed = await in_thread(lambda: _parse(body))
            else:
                parsed = _parse(body)
        except orjson.JSONDecodeError:
            rejected.labels(name, "bad_json").inc()
            return web.Response(status=400, text="body is not JSON\n")
        event = event_name(source, parsed)
        metrics.webhook_events.labels(name, event).inc()
        if deliver is not None:
            digest = hashlib.sha256(body).hexdigest()
            await deliver(Delivery(source, event, parsed, digest))
        return web.Response(status=202, text="accepted\n")

    return receive


def except_webhooks(middleware: Middleware) -> Middleware:
    """`middleware` (basic auth) for every path but the webhooks', which their secret guards."""

    @web.middleware
    async def wrapped(request: web.Request, handler: Handler) -> web.StreamResponse:
        if is_webhook(request):
            return await handler(request)
        return await middleware(request, handler)

    return wrapped
