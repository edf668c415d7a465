"""One read of one sync over HTTP, with every failure turned into a reason, never raised."""

from __future__ import annotations

import asyncio
import email.utils
import time
from dataclasses import dataclass

import aiohttp
import httpx
import orjson
from httpx_aiohttp import AiohttpTransport

from exporter import __version__
from exporter.model import SyncStatus
from exporter.providers.base import BadResponse, Provider

USER_AGENT = f"sync-status-exporter/{__version__}"


def make_client(max_connections: int) -> httpx.AsyncClient:
    """An httpx client on aiohttp's transport: measured ~8x less CPU per request than httpx's own.

    See bench/http_transport.py for the measurement.
    """
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    return httpx.AsyncClient(
        transport=AiohttpTransport(limits=limits),
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        follow_redirects=False,
    )


@dataclass(slots=True)
class Outcome:
    """What one read gave: a status, or the reason it failed (one of metrics.ERROR_REASONS)."""

    status: SyncStatus | None = None
    error: str = ""
    code: str = ""
    detail: str = ""
    retry_after: float | None = None
    duration: float = 0.0


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
    """Classify by the root cause: the aiohttp transport maps refusals to ConnectTimeout."""
    root: BaseException = exc
    while root.__cause__ is not None:
        root = root.__cause__
    if isinstance(root, aiohttp.ServerTimeoutError | TimeoutError) or (
        root is exc and isinstance(exc, httpx.TimeoutException)
    ):
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


async def read_sync(
    client: httpx.AsyncClient,
    provider: Provider,
    url: str,
    headers: dict[str, str],
    timeout: float,
) -> Outcome:
    """GET one sync's status and map it; the timeout covers connect, send and the whole body."""
    started = time.perf_counter()
    outcome = Outcome()
    try:
        async with asyncio.timeout(timeout):
            response = await client.get(url, headers=headers)
        outcome.code = str(response.status_code)
        if response.status_code != 200:
            outcome.error = _http_error(response.status_code)
            outcome.detail = f"HTTP {response.status_code}"
            if response.status_code == 429:
                outcome.retry_after = retry_after_seconds(
                    response.headers.get("Retry-After"), time.time()
                )
        else:
            outcome.status = provider.parse(orjson.loads(response.content))
    except TimeoutError:
        outcome.error, outcome.detail = "timeout", f"no answer within {timeout:.3g}s"
    except (httpx.HTTPError, aiohttp.ClientError, OSError) as exc:
        outcome.error, outcome.detail = _transport_failure(exc)
    except orjson.JSONDecodeError:
        outcome.error, outcome.detail = "bad_response", "body is not JSON"
    except BadResponse as exc:
        outcome.error, outcome.detail = "bad_response", str(exc)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        outcome.error, outcome.detail = "bad_response", f"unreadable status ({type(exc).__name__})"
    outcome.duration = time.perf_counter() - started
    return outcome
