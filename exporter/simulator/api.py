"""The three provider APIs as aiohttp routes: latency, faults, auth, bodies and error bodies."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import math
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from exporter.simulator.faults import Fault, misshape
from exporter.simulator.syncs import JSON, Provider

if TYPE_CHECKING:
    from exporter.simulator.app import Simulator

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PREFIXES: dict[Provider, str] = {
    "paragon": "/paragon",
    "terminal": "/terminal/tsp/v1",
    "sequin": "/sequin",
}
_SYNCS_PATHS: dict[Provider, str] = {
    "paragon": "/paragon/api/syncs",
    "terminal": "/terminal/tsp/v1/syncs",
    "sequin": "/sequin/v1/syncs",
}
TERMINAL_DEFAULT_LIMIT = 100
TERMINAL_MAX_LIMIT = 1000
_TERMINAL_STATUSES = frozenset({"requested", "in_progress", "completed", "failed"})
_TERMINAL_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    422: "unprocessable_entity",
    429: "too_many_requests",
    500: "internal_server_error",
    501: "not_implemented",
    502: "bad_gateway",
    504: "gateway_timeout",
}


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON response encoded with orjson."""
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers=headers
    )


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def error_body(
    provider: Provider, status: int, detail: str, retry_after: str | None = None
) -> JSON:
    """The provider's error JSON: Terminal's documented `{code, message, detail}`; Paragon and
    Sequin do not document theirs, so these are plausible stand-ins."""
    phrase = _phrase(status)
    if provider == "terminal":
        code = _TERMINAL_CODES.get(status, phrase.lower().replace(" ", "_").replace("-", "_"))
        body: JSON = {"code": code, "message": phrase, "detail": detail}
        if status == 429 and retry_after is not None:
            with contextlib.suppress(ValueError):
                body["retryAfter"] = math.ceil(float(retry_after))
        return body
    if provider == "paragon":
        return {"message": detail, "statusCode": status, "error": phrase}
    return {"summary": detail, "code": phrase.lower().replace(" ", "_").replace("-", "_")}


def error_response(
    provider: Provider, status: int, detail: str, retry_after: str | None = None
) -> web.Response:
    """An error answer in the provider's style, with Retry-After when given."""
    headers = None if retry_after is None else {"Retry-After": retry_after}
    return json_response(error_body(provider, status, detail, retry_after), status, headers)


def _bad_request(message: str, path: str) -> web.Response:
    body = {
        "code": "bad_request",
        "message": message,
        "detail": [{"message": message, "path": path}],
    }
    return json_response(body, 400)


def _bearer(request: web.Request) -> str | None:
    value = request.headers.get("Authorization", "")
    if value[:7].lower() != "bearer ":
        return None
    return value[7:].strip()


def _unauthorized(sim: Simulator, provider: Provider, request: web.Request) -> str | None:
    """Why the request is not authorized, or None if it is."""
    world = sim.world
    token = _bearer(request)
    if token is None:
        return "Missing bearer token in the Authorization header"
    expected = {
        "paragon": world.paragon_token,
        "terminal": world.terminal_secret,
        "sequin": world.sequin_token,
    }[provider]
    if token != expected:
        return "Please ensure you have a valid API key"
    if provider == "terminal":
        connection = request.headers.get("Connection-Token")
        if connection is None:
            return "Missing Connection-Token header"
        if connection != world.terminal_connection_token:
            return "Please ensure you have a valid connection token"
    return None


async def _admit(
    sim: Simulator, provider: Provider, request: web.Request, sync_id: str | None
) -> tuple[web.Response | None, Fault | None]:
    """Count, wait, apply a status fault and check auth: an early answer, or the fault to apply
    to the body."""
    sim.requests.record(provider, request.path)
    if sim.latency > 0:
        await asyncio.sleep(sim.latency)
    fault = sim.faults.take(provider, sync_id)
    if fault is not None:
        if fault.delay > 0:
            await asyncio.sleep(fault.delay)
        if fault.status is not None:
            detail = f"Injected fault: HTTP {fault.status}"
            return error_response(provider, fault.status, detail, fault.retry_after), None
    problem = _unauthorized(sim, provider, request)
    if problem is not None:
        return error_response(provider, 401, problem), None
    return None, fault


def _answer(body: Any, fault: Fault | None) -> web.Response:
    if fault is None:
        return json_response(body)
    if fault.malformed:
        raw = orjson.dumps(body)
        return web.Response(body=raw[: max(1, len(raw) // 2)], content_type="application/json")
    if fault.wrong_shape is not None:
        return json_response(misshape(body, fault.wrong_shape))
    return json_response(body)


def _expand(request: web.Request) -> tuple[bool, web.Response | None]:
    value = request.query.get("expand")
    if value is None:
        return False, None
    if value != "issues":
        return False, _bad_request("'expand' must be one of: issues", "{requestQuery}.expand")
    return True, None


def _get_sync(sim: Simulator, provider: Provider) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        sync_id = request.match_info["id"]
        early, fault = await _admit(sim, provider, request, sync_id)
        if early is not None:
            return early
        expand = False
        if provider == "terminal":
            expand, invalid = _expand(request)
            if invalid is not None:
                return invalid
        body = sim.world.body(provider, sync_id, sim.clock(), expand=expand)
        if body is None:
            return error_response(provider, 404, f"Could not find sync with ID: {sync_id}")
        return _answer(body, fault)

    return handle


def _list_all(sim: Simulator, provider: Provider) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        early, fault = await _admit(sim, provider, request, None)
        if early is not None:
            return early
        items, _ = sim.world.listing(provider, sim.clock())
        return _answer({"data": items}, fault)

    return handle


def encode_cursor(offset: int) -> str:
    """An opaque Terminal pagination cursor for a list offset."""
    return base64.urlsafe_b64encode(f"o={offset}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int | None:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    if not text.startswith("o=") or not text[2:].isdigit():
        return None
    return int(text[2:])


def _terminal_list(sim: Simulator) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        early, fault = await _admit(sim, "terminal", request, None)
        if early is not None:
            return early
        expand, invalid = _expand(request)
        if invalid is not None:
            return invalid
        query = request.query
        raw_limit = query.get("limit", str(TERMINAL_DEFAULT_LIMIT))
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= TERMINAL_MAX_LIMIT:
            message = f"'limit' must be an integer from 1 to {TERMINAL_MAX_LIMIT}"
            return _bad_request(message, "{requestQuery}.limit")
        offset = 0
        if "cursor" in query:
            decoded = _decode_cursor(query["cursor"])
            if decoded is None:
                return _bad_request("'cursor' is not a valid cursor", "{requestQuery}.cursor")
            offset = decoded
        status = query.get("status")
        if status is not None and status not in _TERMINAL_STATUSES:
            message = f"'status' must be one of: {', '.join(sorted(_TERMINAL_STATUSES))}"
            return _bad_request(message, "{requestQuery}.status")
        limit = int(raw_limit)
        items, more = sim.world.listing(
            "terminal",
            sim.clock(),
            expand=expand,
            offset=offset,
            limit=limit,
            where=None if status is None else (lambda item: item.get("status") == status),
        )
        body: JSON = {"results": items}
        if more:
            body["next"] = encode_cursor(offset + limit)
        return _answer(body, fault)

    return handle


def provider_routes(sim: Simulator) -> list[web.RouteDef]:
    """Routes of the three provider APIs, each under its own prefix (see `PREFIXES`)."""
    return [
        web.get(_SYNCS_PATHS["paragon"], _list_all(sim, "paragon")),
        web.get(_SYNCS_PATHS["paragon"] + "/{id}", _get_sync(sim, "paragon")),
        web.get(_SYNCS_PATHS["terminal"], _terminal_list(sim)),
        web.get(_SYNCS_PATHS["terminal"] + "/{id}", _get_sync(sim, "terminal")),
        web.get(_SYNCS_PATHS["sequin"], _list_all(sim, "sequin")),
        web.get(_SYNCS_PATHS["sequin"] + "/{id}", _get_sync(sim, "sequin")),
    ]
