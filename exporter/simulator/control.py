"""The `/_sim/` control API: overrides, ad-hoc syncs, faults, request counts and the clock.

Shared by every provider; a provider adds its own endpoints through `control_routes`.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from exporter.simulator.clock import Moment
from exporter.simulator.faults import parse_fault
from exporter.simulator.host import Host
from exporter.simulator.providers import PROVIDERS
from exporter.simulator.providers.base import ControlError, ProviderState
from exporter.simulator.serving import json_response


def _problem(exc: ControlError) -> web.Response:
    return json_response({"error": str(exc)}, exc.status)


async def _json_body(request: web.Request) -> Any:
    try:
        return await request.json(loads=json.loads)
    except ValueError as exc:
        raise ControlError(400, f"request body is not JSON: {exc}") from exc


class ControlApi:
    """Handlers of the control endpoints, bound to one simulator."""

    def __init__(self, sim: Host) -> None:
        self._sim = sim

    def routes(self) -> list[web.RouteDef]:
        """The `/_sim/` routes, the providers' own among them, and a landing page at `/`."""
        routes = [
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
        for name in self._sim.world.providers:
            routes += PROVIDERS[name].control_routes(self._sim)
        return routes

    def _provider(self, request: web.Request) -> tuple[str, ProviderState]:
        name = request.match_info["provider"]
        state = self._sim.world.find(name)
        if state is None:
            known = ", ".join(self._sim.world.providers)
            raise ControlError(404, f"unknown provider; use one of: {known}")
        return name, state

    def _existing(self, request: web.Request) -> tuple[str, ProviderState, str]:
        name, state = self._provider(request)
        sync_id = request.match_info["id"]
        if not state.has(sync_id, self._moment()):
            raise ControlError(404, f"no {name} sync {sync_id!r}")
        return name, state, sync_id

    def _moment(self) -> Moment:
        return self._sim.world.moment(self._sim.clock())

    async def index(self, request: web.Request) -> web.StreamResponse:
        """What this server is and where the provider APIs live."""
        base = self._sim.base_url
        lines = ["sync-status-exporter simulator: fake sync-status APIs", ""]
        for name in self._sim.world.providers:
            provider = PROVIDERS[name]
            lines.append(f"{name:<9} {base}{provider.prefix}{provider.list_path}")
        lines += ["", f"exporter config: {base}/_sim/config", ""]
        return web.Response(text="\n".join(lines))

    async def list_syncs(self, request: web.Request) -> web.StreamResponse:
        """Ids of every sync (Terminal: every job), per provider."""
        now = self._sim.clock()
        world = self._sim.world
        return json_response({name: world.ids(name, now) for name in world.providers})

    async def create_sync(self, request: web.Request) -> web.StreamResponse:
        """`{"id": ..., "body": {...}}` creates (or replaces) a sync answering exactly `body`;
        other fields are the provider's (Paragon `user`, Terminal `connection`)."""
        try:
            _, state = self._provider(request)
            data = await _json_body(request)
            if not isinstance(data, dict):
                raise ControlError(400, 'expected {"id": ..., "body": {...}}')
            sync_id, body = data.get("id"), data.get("body")
            if not isinstance(sync_id, str) or not sync_id or "/" in sync_id:
                raise ControlError(400, "id must be a non-empty string without '/'")
            if not isinstance(body, dict):
                raise ControlError(400, "body must be a JSON object")
            extra = {key: value for key, value in data.items() if key not in ("id", "body")}
            created = state.add_static(sync_id, body, self._moment(), extra)
        except ControlError as exc:
            return _problem(exc)
        return json_response({"id": sync_id, "body": body}, 201 if created else 200)

    async def show_sync(self, request: web.Request) -> web.StreamResponse:
        """The sync's body right now (no auth, not counted, no faults)."""
        try:
            _, state, sync_id = self._existing(request)
        except ControlError as exc:
            return _problem(exc)
        expand = request.query.get("expand") == "issues"
        return json_response(state.body(sync_id, self._moment(), expand=expand))

    async def override_sync(self, request: web.Request) -> web.StreamResponse:
        """Merge the posted fields over the lifecycle body from now on."""
        try:
            _, state, sync_id = self._existing(request)
            fields = await _json_body(request)
            if not isinstance(fields, dict):
                raise ControlError(400, "an override must be a JSON object")
        except ControlError as exc:
            return _problem(exc)
        m = self._moment()
        state.override(sync_id, fields, m)
        return json_response(state.body(sync_id, m))

    async def clear_override(self, request: web.Request) -> web.StreamResponse:
        """Back to the lifecycle; with `?remove=true`, remove a sync created by POST instead."""
        try:
            name, state, sync_id = self._existing(request)
        except ControlError as exc:
            return _problem(exc)
        m = self._moment()
        if request.query.get("remove", "").lower() in ("true", "1", "yes"):
            if not state.remove_static(sync_id, m):
                message = f"{name} sync {sync_id!r} was not created by POST /_sim/syncs/{name}"
                return json_response({"error": message}, 409)
            return json_response({"removed": sync_id})
        state.clear_override(sync_id, m)
        return json_response(state.body(sync_id, m))

    async def list_faults(self, request: web.Request) -> web.StreamResponse:
        """Installed faults."""
        return json_response(self._sim.faults.to_json())

    async def clear_faults(self, request: web.Request) -> web.StreamResponse:
        """Remove every fault."""
        self._sim.faults.clear_all()
        return json_response(self._sim.faults.to_json())

    def _fault_target(self, request: web.Request) -> tuple[str, str | None]:
        name, state = self._provider(request)
        target = request.match_info.get("id")
        if target is not None and not state.has_target(target, self._moment()):
            raise ControlError(404, f"no {name} sync (or other fault target) {target!r}")
        return name, target

    async def set_fault(self, request: web.Request) -> web.StreamResponse:
        """Install a fault on one target (a sync; a Paragon user; a Terminal connection), or on
        the whole provider (lists included)."""
        try:
            name, target = self._fault_target(request)
            fault = parse_fault(await _json_body(request))
        except ControlError as exc:
            return _problem(exc)
        except ValueError as exc:
            return json_response({"error": str(exc)}, 400)
        self._sim.faults.set(name, target, fault)
        return json_response(fault.to_json())

    async def clear_fault(self, request: web.Request) -> web.StreamResponse:
        """Remove one fault (no error if there was none)."""
        try:
            name, target = self._fault_target(request)
        except ControlError as exc:
            return _problem(exc)
        return json_response({"removed": self._sim.faults.clear(name, target)})

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
        except ControlError as exc:
            return _problem(exc)
        if not isinstance(data, dict) or not set(data) <= {"elapsed", "period"}:
            return json_response(
                {"error": 'expected {"elapsed": seconds} and/or {"period": seconds}'}, 400
            )
        for key, value in data.items():
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                return json_response({"error": f"{key} must be a non-negative number"}, 400)
        if "period" in data:
            if data["period"] <= 0:
                return json_response({"error": "period must be positive"}, 400)
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
        """An exporter config for this server's world, as JSON (which is also valid YAML);
        `?discover=false` lists every sync instead."""
        discover = request.query.get("discover", "true").lower() not in ("false", "0", "no")
        return json_response(self._sim.exporter_config(discover=discover))
