"""What every provider route does alike: count the request, wait, inject faults, encode JSON."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from exporter.simulator.faults import Fault, misshape
from exporter.simulator.host import Host, Replier, WorldView

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Check = Callable[[WorldView, web.Request], web.Response | None]


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON response encoded with orjson."""
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers=headers
    )


def bearer(request: web.Request) -> str | None:
    """The bearer token of the Authorization header, or None if there is none."""
    value = request.headers.get("Authorization", "")
    if value[:7].lower() != "bearer ":
        return None
    return value[7:].strip()


async def admit(
    sim: Host,
    provider: Replier,
    request: web.Request,
    *targets: str | None,
    check: Check | None = None,
) -> tuple[web.Response | None, Fault | None]:
    """Count the request, add the latency and take its fault (the first of `targets` that has
    one, else the provider's), then run `check` (the provider's credentials): an early error
    answer, or the fault to apply to the body.

    Faults come before `check`, so a status fault answers whatever the credentials.
    """
    sim.requests.record(provider.name, request.path)
    if sim.latency > 0:
        await asyncio.sleep(sim.latency)
    if sim.rate_limit and sim.requests.last_second(provider.name) > sim.rate_limit:
        sim.requests.limited[provider.name] = sim.requests.limited.get(provider.name, 0) + 1
        return provider.error_response(429, "Rate limit exceeded", "1"), None
    fault = sim.faults.take(provider.name, *targets)
    if fault is None:
        return (None if check is None else check(sim.world, request)), None
    if fault.delay > 0:
        await asyncio.sleep(fault.delay)
    if fault.status is not None:
        response = provider.error_response(
            fault.status,
            f"Injected fault: HTTP {fault.status}",
            fault.retry_after,
            retry_after_header=fault.retry_after_header,
        )
        return response, None
    return (None if check is None else check(sim.world, request)), fault


def answer(body: Any, fault: Fault | None = None) -> web.Response:
    """The 200 answer, spoilt as the fault says (truncated or of the wrong shape)."""
    if fault is None:
        return json_response(body)
    if fault.malformed:
        raw = orjson.dumps(body)
        return web.Response(body=raw[: max(1, len(raw) // 2)], content_type="application/json")
    if fault.wrong_shape is not None:
        return json_response(misshape(body, fault.wrong_shape))
    return json_response(body)


def one_sync(
    sim: Host,
    provider: Replier,
    missing: str,
    *,
    check: Check | None = None,
    wrap: Callable[[Any], Any] | None = None,
) -> Handler:
    """`GET …/{id}`: the sync's body (in the provider's envelope, if `wrap`), or a 404 whose
    detail is `missing` with `{id}` filled in."""

    async def handle(request: web.Request) -> web.StreamResponse:
        sync_id = request.match_info["id"]
        early, fault = await admit(sim, provider, request, sync_id, check=check)
        if early is not None:
            return early
        body = sim.world.state(provider.name).body(sync_id, sim.world.moment(sim.clock()))
        if body is None:
            return provider.error_response(404, missing.format(id=sync_id))
        return answer(body if wrap is None else wrap(body), fault)

    return handle
