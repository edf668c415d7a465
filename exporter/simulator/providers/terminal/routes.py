"""Terminal's API, its request checks and pagination, and its control endpoints."""

from __future__ import annotations

import base64
import binascii
import contextlib
import math
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

from exporter.simulator.clock import Moment
from exporter.simulator.host import Host, WorldView
from exporter.simulator.providers.base import (
    JSON,
    ControlError,
    SimProvider,
    phrase,
    snake,
)
from exporter.simulator.providers.terminal.fixtures import bulk_connection, demo_connections
from exporter.simulator.providers.terminal.model import (
    CONNECTION_STATUSES,
    DEFAULT_LIMIT,
    ERROR_CODES,
    JOB_STATUSES,
    LOG_ORDERS,
    MAX_LIMIT,
    NAME,
    SYNC_MODES,
    Cadence,
    Connection,
    ConnectionSpec,
    JobRef,
    Key,
    T,
    ulid_like,
)
from exporter.simulator.providers.terminal.webhooks import (
    WEBHOOK_SECRET,
    connection_subjects,
    terminal_events,
)
from exporter.simulator.providers.terminal.world import TerminalWorld, terminal_state
from exporter.simulator.serving import Handler, admit, answer, bearer, json_response

# --- pagination and request checks --------------------------------------------------------------


def encode_cursor(key: Key) -> str:
    """An opaque cursor: the sort key of the last item of a page (keyset pagination, so a job
    starting between two pages neither repeats nor hides an item)."""
    text = f"p={key[0]!r}&k={key[1]}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Key | None:
    """The sort key in a cursor, or None if it is not one of ours."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    position, sep, key = text.partition("&k=")
    if not sep or not position.startswith("p="):
        return None
    try:
        value = float(position[2:])
    except ValueError:
        return None
    return (value, key) if math.isfinite(value) else None


def paginate(
    items: Sequence[tuple[Key, T]], after: Key | None, limit: int, *, newest_first: bool
) -> tuple[list[T], Key | None]:
    """One page of sorted `items` after the cursor key, and the next page's cursor key."""
    if after is not None:
        items = [(k, v) for k, v in items if (k < after if newest_first else k > after)]
    page = items[:limit]
    more = len(items) > limit
    return [value for _, value in page], (page[-1][0] if more and page else None)


class _BadRequest(Exception):
    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.path = path


def _bad_request(problem: _BadRequest) -> web.Response:
    message = str(problem)
    body = {
        "code": "bad_request",
        "message": message,
        "detail": [{"message": message, "path": problem.path}],
    }
    return json_response(body, 400)


def _page_params(query: Mapping[str, str]) -> tuple[int, Key | None]:
    raw = query.get("limit", str(DEFAULT_LIMIT))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise _BadRequest(
            f"'limit' must be an integer from 1 to {MAX_LIMIT}", "{requestQuery}.limit"
        )
    after = None
    if "cursor" in query:
        after = decode_cursor(query["cursor"])
        if after is None:
            raise _BadRequest("'cursor' is not a valid cursor", "{requestQuery}.cursor")
    return int(raw), after


def _choice(query: Mapping[str, str], name: str, allowed: Sequence[str]) -> str | None:
    value = query.get(name)
    if value is not None and value not in allowed:
        raise _BadRequest(
            f"'{name}' must be one of: {', '.join(allowed)}", f"{{requestQuery}}.{name}"
        )
    return value


def _expand(query: Mapping[str, str]) -> bool:
    return _choice(query, "expand", ("issues",)) is not None


# --- the provider -------------------------------------------------------------------------------


def _text(data: Mapping[str, Any], key: str, default: str | None = None) -> str | None:
    value = data.get(key, default)
    if value is not None and (not isinstance(value, str) or not value):
        raise ControlError(400, f"{key} must be a non-empty string")
    return value


def _named(data: Mapping[str, Any], key: str, inner: str, default: str) -> str:
    value = data.get(key, default)
    if isinstance(value, dict):
        value = value.get(inner)
    if not isinstance(value, str) or not value:
        raise ControlError(400, f"{key} must be a non-empty string or {{{inner!r}: ...}}")
    return value


def _one_of(data: Mapping[str, Any], key: str, allowed: Sequence[str]) -> str | None:
    value = data.get(key)
    if value is not None and value not in allowed:
        raise ControlError(400, f"{key} must be one of: {', '.join(allowed)}")
    return value


def _spec_from(data: Any, now: float) -> ConnectionSpec:
    if not isinstance(data, dict):
        raise ControlError(400, "expected a JSON object")
    known = {
        "id",
        "status",
        "syncMode",
        "company",
        "provider",
        "token",
        "externalId",
        "tags",
        "cadence",
        "logOrder",
    }
    unknown = sorted(set(data) - known)
    if unknown:
        raise ControlError(400, f"unknown fields: {', '.join(unknown)}")
    connection_id = _text(data, "id") or ulid_like("conn", f"control:{now!r}")
    if "/" in connection_id:
        raise ControlError(400, "id must not contain '/'")
    token = _text(data, "token")
    if token is not None and (not token.startswith("con_tkn_") or not token[8:].isprintable()):
        raise ControlError(400, "token must look like con_tkn_...")
    tags = data.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise ControlError(400, "tags must be a list of strings")
    provider = data.get("provider", "geotab")
    provider_name = provider.get("name") if isinstance(provider, dict) else None
    cadence = data.get("cadence", False)
    if not isinstance(cadence, bool):
        raise ControlError(400, "cadence must be true or false")
    return ConnectionSpec(
        connection_id,
        _named(data, "company", "name", f"Company of {connection_id}"),
        _named(data, "provider", "code", "geotab"),
        token=token,
        status=_one_of(data, "status", CONNECTION_STATUSES) or "connected",
        sync_mode=_one_of(data, "syncMode", SYNC_MODES) or "automatic",
        external_id=_text(data, "externalId"),
        tags=tuple(tags),
        provider_name=provider_name if isinstance(provider_name, str) else None,
        cadence=Cadence() if cadence else None,
        log_order=_one_of(data, "logOrder", LOG_ORDERS) or "newest",
    )


class Terminal(SimProvider):
    """Terminal behind `/terminal/tsp/v1`."""

    name = NAME
    prefix = "/terminal/tsp/v1"
    list_path = "/connections"
    rank = 20

    def demo(self, options: Mapping[str, Any]) -> TerminalWorld:
        """Seven connections, one per case the exporter must get right."""
        return TerminalWorld(demo_connections())

    def bulk(self, count: int, options: Mapping[str, Any]) -> TerminalWorld:
        """`count` connections, `bulk-terminal-NNNNNN`, one job log each."""
        return TerminalWorld(bulk_connection(number) for number in range(1, count + 1))

    def error_body(self, status: int, detail: str, retry_after: str | None = None) -> JSON:
        """Terminal's documented `{code, message, detail}`; a 429 also carries `retryAfter`
        (whole seconds) when the wait is a number."""
        code = ERROR_CODES.get(status, snake(phrase(status)))
        body: JSON = {"code": code}
        if status == 429 and retry_after is not None:
            with contextlib.suppress(ValueError, OverflowError):
                body["retryAfter"] = math.ceil(float(retry_after))
        body["message"] = phrase(status)
        body["detail"] = detail
        return body

    def routes(self, sim: Host) -> list[web.RouteDef]:
        """`GET /connections`, `GET /syncs` and `GET /syncs/{id}`."""
        return [
            web.get(f"{self.prefix}/connections", self._connections(sim)),
            web.get(f"{self.prefix}/syncs", self._log(sim)),
            web.get(f"{self.prefix}/syncs/{{id}}", self._job(sim)),
        ]

    def _secret_problem(self, world: WorldView, request: web.Request) -> web.Response | None:
        state = terminal_state(world)
        if bearer(request) != state.secret:
            return self.error_response(401, "Please ensure you have a valid API key")
        return None

    def _connection(
        self, world: WorldView, request: web.Request
    ) -> tuple[Connection | None, web.Response | None]:
        state = terminal_state(world)
        problem = self._secret_problem(world, request)
        if problem is not None:
            return None, problem
        token = request.headers.get("Connection-Token")
        if token is None:
            return None, self.error_response(401, "Missing Connection-Token header")
        connection = state.by_token(token)
        if connection is None:
            return None, self.error_response(401, "Please ensure you have a valid connection token")
        return connection, None

    def _connections(self, sim: Host) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            early, fault = await admit(sim, self, request, check=self._secret_problem)
            if early is not None:
                return early
            state = terminal_state(sim.world)
            query = request.query
            try:
                limit, after = _page_params(query)
                status = _choice(query, "status", CONNECTION_STATUSES)
            except _BadRequest as exc:
                return _bad_request(exc)
            tag, code, external = query.get("tag"), query.get("provider"), query.get("externalId")
            m = sim.world.moment(sim.clock())
            chosen = [
                (key, c)
                for key, c in state.listing(m)
                if (status is None or c.status == status)
                and (tag is None or tag in c.spec.tags)
                and (code is None or c.spec.provider == code)
                and (external is None or c.spec.external_id == external)
            ]
            page, more = paginate(chosen, after, limit, newest_first=False)
            body: JSON = {"results": [c.render(m) for c in page]}
            if more is not None:
                body["next"] = encode_cursor(more)
            return answer(body, fault)

        return handle

    def _log(self, sim: Host) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            state = terminal_state(sim.world)
            hint = state.by_token(request.headers.get("Connection-Token"))
            early, fault = await admit(sim, self, request, None if hint is None else hint.id)
            if early is not None:
                return early
            connection, problem = self._connection(sim.world, request)
            if problem is not None:
                return problem
            assert connection is not None
            query = request.query
            try:
                expand = _expand(query)
                limit, after = _page_params(query)
                status = _choice(query, "status", JOB_STATUSES)
            except _BadRequest as exc:
                return _bad_request(exc)
            m = sim.world.moment(sim.clock())
            newest = connection.spec.log_order == "newest"
            refs = connection.log(m) if newest else connection.log(m)[::-1]

            def body_of(ref: JobRef) -> JSON:
                return state.overlay(ref.id, connection.render_job(ref, m, expand=expand))

            if status is None:
                refs_page, more = paginate(
                    [(r.key, r) for r in refs], after, limit, newest_first=newest
                )
                results = [body_of(ref) for ref in refs_page]
            else:
                bodies = [(r.key, body_of(r)) for r in refs]
                matching = [(key, body) for key, body in bodies if body.get("status") == status]
                results, more = paginate(matching, after, limit, newest_first=newest)
            body: JSON = {"results": results}
            if more is not None:
                body["next"] = encode_cursor(more)
            return answer(body, fault)

        return handle

    def _job(self, sim: Host) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            job_id = request.match_info["id"]
            state = terminal_state(sim.world)
            hint = state.by_token(request.headers.get("Connection-Token"))
            early, fault = await admit(
                sim, self, request, job_id, None if hint is None else hint.id
            )
            if early is not None:
                return early
            connection, problem = self._connection(sim.world, request)
            if problem is not None:
                return problem
            assert connection is not None
            try:
                expand = _expand(request.query)
            except _BadRequest as exc:
                return _bad_request(exc)
            m = sim.world.moment(sim.clock())
            ref = connection.find(job_id, m)
            if ref is None:
                return self.error_response(404, f"Could not find sync with ID: {job_id}")
            body = state.overlay(job_id, connection.render_job(ref, m, expand=expand))
            return answer(body, fault)

        return handle

    def control_routes(self, sim: Host) -> list[web.RouteDef]:
        """Connections for tests: list (tokens and job ids), create, show, change, delete."""

        def described(connection: Connection, m: Moment) -> JSON:
            return {**connection.render(m), "jobs": [ref.id for ref in connection.log(m)]}

        def problem(exc: ControlError) -> web.Response:
            return json_response({"error": str(exc)}, exc.status)

        async def list_all(request: web.Request) -> web.StreamResponse:
            m = sim.world.moment(sim.clock())
            connections = terminal_state(sim.world).connections.values()
            return json_response({"connections": [described(c, m) for c in connections]})

        async def create(request: web.Request) -> web.StreamResponse:
            m = sim.world.moment(sim.clock())
            try:
                try:
                    data = await request.json()
                except ValueError as exc:
                    raise ControlError(400, f"request body is not JSON: {exc}") from exc
                connection = terminal_state(sim.world).add_connection(_spec_from(data, m.now), m)
            except ControlError as exc:
                return problem(exc)
            return json_response(described(connection, m), 201)

        def existing(request: web.Request) -> Connection:
            connection = terminal_state(sim.world).connections.get(request.match_info["id"])
            if connection is None:
                raise ControlError(404, f"no terminal connection {request.match_info['id']!r}")
            return connection

        async def show(request: web.Request) -> web.StreamResponse:
            try:
                connection = existing(request)
            except ControlError as exc:
                return problem(exc)
            return json_response(described(connection, sim.world.moment(sim.clock())))

        async def change(request: web.Request) -> web.StreamResponse:
            now = sim.clock()
            m = sim.world.moment(now)
            try:
                connection = existing(request)
                try:
                    data = await request.json()
                except ValueError as exc:
                    raise ControlError(400, f"request body is not JSON: {exc}") from exc
                if (
                    not isinstance(data, dict)
                    or not data
                    or not set(data) <= {"status", "syncMode"}
                ):
                    raise ControlError(400, 'expected {"status": ...} and/or {"syncMode": ...}')
                status = _one_of(data, "status", CONNECTION_STATUSES)
                mode = _one_of(data, "syncMode", SYNC_MODES)
            except ControlError as exc:
                return problem(exc)
            connection.change(m, now, status, mode)
            return json_response(described(connection, m))

        async def delete(request: web.Request) -> web.StreamResponse:
            connection_id = request.match_info["id"]
            if not terminal_state(sim.world).remove_connection(connection_id):
                return problem(ControlError(404, f"no terminal connection {connection_id!r}"))
            return json_response({"removed": connection_id})

        path = "/_sim/terminal/connections"
        return [
            web.get(path, list_all),
            web.post(path, create),
            web.get(path + "/{id}", show),
            web.patch(path + "/{id}", change),
            web.delete(path + "/{id}", delete),
        ]

    def source(self, base_url: str, world: WorldView, *, discover: bool) -> dict[str, Any] | None:
        """The secret key only: the exporter lists `/connections`, then each connection's log
        (static entries would be job ids, which change with every job)."""
        if not terminal_state(world).connections:
            return None
        return {
            "name": f"{world.name}-{NAME}",
            "provider": NAME,
            "base_url": base_url,
            "auth": {"token": terminal_state(world).secret},
            "discover": True,
        }

    webhook_secret = WEBHOOK_SECRET

    def webhook_events_in(
        self, world: WorldView, sync_id: str, before: JSON | None, after: JSON, now: float
    ) -> list[JSON]:
        """sync.completed and sync.failed, naming the job's connection; connection.disconnected."""
        return terminal_events(terminal_state(world), sync_id, before, after, world.moment(now))

    def webhook_subjects(self, world: WorldView, now: float) -> list[tuple[str, JSON]]:
        """The connections, for connection.disconnected."""
        return connection_subjects(terminal_state(world), world.moment(now))
