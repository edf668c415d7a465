"""The `/_sim/` control API: overrides, ad-hoc syncs, faults, request counts and the clock."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from exporter.simulator.api import json_response
from exporter.simulator.config import demo_config
from exporter.simulator.faults import parse_fault
from exporter.simulator.syncs import PROVIDERS, Provider
from exporter.simulator.world import parse_provider

if TYPE_CHECKING:
    from exporter.simulator.app import Simulator


def _problem(status: int, message: str) -> web.Response:
    return json_response({"error": message}, status)


class _BadRequest(Exception):
    """A control request that cannot be carried out; its message goes back to the caller."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def _json_body(request: web.Request) -> Any:
    try:
        return await request.json(loads=json.loads)
    except ValueError as exc:
        raise _BadRequest(400, f"request body is not JSON: {exc}") from exc


def _provider(request: web.Request) -> Provider:
    provider = parse_provider(request.match_info["provider"])
    if provider is None:
        raise _BadRequest(404, f"unknown provider; use one of: {', '.join(PROVIDERS)}")
    return provider


def _existing(sim: Simulator, request: web.Request) -> tuple[Provider, str]:
    provider = _provider(request)
    sync_id = request.match_info["id"]
    if sim.world.sync(provider, sync_id) is None:
        raise _BadRequest(404, f"no {provider} sync {sync_id!r}")
    return provider, sync_id


class ControlApi:
    """Handlers of the control endpoints, bound to one simulator."""

    def __init__(self, sim: Simulator) -> None:
        self._sim = sim

    def routes(self) -> list[web.RouteDef]:
        """The `/_sim/` routes, plus a plain-text landing page at `/`."""
        return [
            web.get("/", self.index),
            web.get("/_sim/syncs", self.list_syncs),
            web.post("/_sim/syncs/{provider}", self.create_sync),
            web.get("/_sim/syncs/{provider}/{id}", self.show_sync),
            web.put("/_sim/syncs/{provider}/{id}", self.override_sync),
            web.delete("/_sim/syncs/{provider}/{id}", self.clear_override),
            web.get("/_sim/faults", self.list_faults),
            web.delete("/_sim/faults", self.clear_faults),
            web.put("/_sim/faults/{provider}", self.set_fault),
            web.delete("/_sim/faults/{provider}", self.clear_fault),
            web.put("/_sim/faults/{provider}/{id}", self.set_fault),
            web.delete("/_sim/faults/{provider}/{id}", self.clear_fault),
            web.get("/_sim/requests", self.requests),
            web.delete("/_sim/requests", self.reset_requests),
            web.get("/_sim/clock", self.clock),
            web.put("/_sim/clock", self.set_clock),
            web.post("/_sim/reset", self.reset),
            web.get("/_sim/config", self.config),
        ]

    async def index(self, request: web.Request) -> web.StreamResponse:
        """What this server is and where the provider APIs live."""
        base = self._sim.base_url
        text = (
            "sync-status-exporter simulator: fake Paragon, Terminal and Sequin APIs\n\n"
            f"paragon   {base}/paragon/api/syncs\n"
            f"terminal  {base}/terminal/tsp/v1/syncs\n"
            f"sequin    {base}/sequin/v1/syncs\n\n"
            f"exporter config: {base}/_sim/config\n"
        )
        return web.Response(text=text)

    async def list_syncs(self, request: web.Request) -> web.StreamResponse:
        """Ids of every sync, per provider."""
        world = self._sim.world
        return json_response({provider: world.ids(provider) for provider in PROVIDERS})

    async def create_sync(self, request: web.Request) -> web.StreamResponse:
        """`{"id": ..., "body": {...}}` creates (or replaces) a sync answering exactly `body`."""
        try:
            provider = _provider(request)
            data = await _json_body(request)
        except _BadRequest as exc:
            return _problem(exc.status, str(exc))
        if not isinstance(data, dict):
            return _problem(400, 'expected {"id": ..., "body": {...}}')
        sync_id, body = data.get("id"), data.get("body")
        if not isinstance(sync_id, str) or not sync_id or "/" in sync_id:
            return _problem(400, "id must be a non-empty string without '/'")
        if not isinstance(body, dict):
            return _problem(400, "body must be a JSON object")
        created = self._sim.world.add_static(provider, sync_id, body, self._sim.clock())
        return json_response({"id": sync_id, "body": body}, 201 if created else 200)

    async def show_sync(self, request: web.Request) -> web.StreamResponse:
        """The sync's body right now (no auth, not counted, no faults)."""
        try:
            provider, sync_id = _existing(self._sim, request)
        except _BadRequest as exc:
            return _problem(exc.status, str(exc))
        expand = request.query.get("expand") == "issues"
        return json_response(
            self._sim.world.body(provider, sync_id, self._sim.clock(), expand=expand)
        )

    async def override_sync(self, request: web.Request) -> web.StreamResponse:
        """Merge the posted fields over the lifecycle body from now on."""
        try:
            provider, sync_id = _existing(self._sim, request)
            fields = await _json_body(request)
        except _BadRequest as exc:
            return _problem(exc.status, str(exc))
        if not isinstance(fields, dict):
            return _problem(400, "an override must be a JSON object")
        self._sim.world.override(provider, sync_id, fields)
        return json_response(self._sim.world.body(provider, sync_id, self._sim.clock()))

    async def clear_override(self, request: web.Request) -> web.StreamResponse:
        """Back to the lifecycle."""
        try:
            provider, sync_id = _existing(self._sim, request)
        except _BadRequest as exc:
            return _problem(exc.status, str(exc))
        self._sim.world.clear_override(provider, sync_id)
        return json_response(self._sim.world.body(provider, sync_id, self._sim.clock()))

    async def list_faults(self, request: web.Request) -> web.StreamResponse:
        """Installed faults."""
        return json_response(self._sim.faults.to_json())

    async def clear_faults(self, request: web.Request) -> web.StreamResponse:
        """Remove every fault."""
        self._sim.faults.clear_all()
        return json_response(self._sim.faults.to_json())

    def _fault_target(self, request: web.Request) -> tuple[Provider, str | None]:
        if "id" in request.match_info:
            return _existing(self._sim, request)
        return _provider(request), None

    async def set_fault(self, request: web.Request) -> web.StreamResponse:
        """Install a fault on one sync, or on the whole provider (lists included)."""
        try:
            provider, sync_id = self._fault_target(request)
            fault = parse_fault(await _json_body(request))
        except _BadRequest as exc:
            return _problem(exc.status, str(exc))
        except ValueError as exc:
            return _problem(400, str(exc))
        self._sim.faults.set(provider, sync_id, fault)
        return json_response(fault.to_json())

    async def clear_fault(self, request: web.Request) -> web.StreamResponse:
        """Remove one fault (no error if there was none)."""
        try:
            provider, sync_id = self._fault_target(request)
        except _BadRequest as exc:
            return _problem(exc.status, str(exc))
        removed = self._sim.faults.clear(provider, sync_id)
        return json_response({"removed": removed})

    async def requests(self, request: web.Request) -> web.StreamResponse:
        """Provider requests received so far."""
        return json_response(self._sim.requests.to_json())

    async def reset_requests(self, request: web.Request) -> web.StreamResponse:
        """Start counting again."""
        self._sim.requests.reset()
        return json_response(self._sim.requests.to_json())

    def _clock_json(self) -> dict[str, float]:
        world, now = self._sim.world, self._sim.clock()
        return {
            "now": now,
            "started_at": world.started_at,
            "elapsed": now - world.started_at,
            "period": world.period,
        }

    async def clock(self, request: web.Request) -> web.StreamResponse:
        """Where the lifecycles are: elapsed seconds and the period."""
        return json_response(self._clock_json())

    async def set_clock(self, request: web.Request) -> web.StreamResponse:
        """`{"elapsed": s}` jumps the lifecycles to `s` seconds after start; `{"period": p}`
        changes the period."""
        try:
            data = await _json_body(request)
        except _BadRequest as exc:
            return _problem(exc.status, str(exc))
        if not isinstance(data, dict) or not set(data) <= {"elapsed", "period"}:
            return _problem(400, 'expected {"elapsed": seconds} and/or {"period": seconds}')
        for key, value in data.items():
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                return _problem(400, f"{key} must be a non-negative number")
        if "period" in data:
            if data["period"] <= 0:
                return _problem(400, "period must be positive")
            self._sim.world.period = float(data["period"])
        if "elapsed" in data:
            self._sim.world.restart(self._sim.clock(), float(data["elapsed"]))
        return json_response(self._clock_json())

    async def reset(self, request: web.Request) -> web.StreamResponse:
        """Drop overrides, ad-hoc syncs, faults and request counts (the clock keeps running)."""
        self._sim.world.reset()
        self._sim.faults.clear_all()
        self._sim.requests.reset()
        return json_response({"reset": True})

    async def config(self, request: web.Request) -> web.StreamResponse:
        """An exporter config for this server's world, as JSON (which is also valid YAML)."""
        return json_response(demo_config(self._sim.base_url, self._sim.world))
