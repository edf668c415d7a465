"""Nango: the syncs of one integration across its connections, each with a status, a type, the
end of its latest run and a record count per model, behind the environment's secret key.

    {sim}/nango  GET /sync/status?provider_config_key=&syncs=[&connection_id=]
                     Bearer <secret key>; `syncs` is `*` or a comma-separated list of names
                     {"syncs": [{id, connection_id, name, status, type, finishedAt,
                     nextScheduledSyncAt, frequency, latestResult, recordCount}]}

Shapes follow Nango's public API reference for the sync status endpoint: status RUNNING,
PAUSED, STOPPED, SUCCESS or ERROR, type INITIAL or INCREMENTAL, `recordCount` per model.
`finishedAt` is left out while a run is in progress (`--nango-older-server`: the running job's
last update instead, as older self-hosted servers send) and `type` is INITIAL for every run
that is not incremental (full-refresh syncs). Guesses, marked as such: each (connection, sync)
has an `id` of its own; a paused or stopped sync's `finishedAt` is the end of its latest run
whatever its outcome; the 400 for a request without the required parameters and the error
body `{error: {code, message}}`.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from exporter.simulator.catalog import Catalog, stretch
from exporter.simulator.clock import HOUR, MINUTE, Moment, iso_millis
from exporter.simulator.host import Host, WorldView
from exporter.simulator.providers.base import (
    JSON,
    SimProvider,
    config_syncs,
    derived_uuid,
    phrase,
    snake,
    state_of,
)
from exporter.simulator.serving import Handler, admit, answer, bearer

NAME = "nango"
SECRET = "sim-nango-secret-key"
WEBHOOK_SECRET = "sim-nango-webhook-secret"
INTEGRATION = "github-app"


@dataclass(frozen=True, slots=True)
class NangoSync:
    """One sync of one connection: `kind` picks its lifecycle (`first` an initial run and then
    incremental ones, `steady` incremental runs, `full` full-refresh runs, `error`, `paused`,
    `stopped`); `older_server` answers as older self-hosted Nango servers do."""

    name: str
    connection: str
    kind: str
    models: Mapping[str, int]
    integration: str = INTEGRATION
    labels: Mapping[str, str] = field(default_factory=dict)
    older_server: bool = False

    @property
    def id(self) -> str:
        """A stable id per connection and sync."""
        return derived_uuid(NAME, self.integration, self.connection, self.name)

    def render(self, m: Moment) -> JSON:
        """The sync's status entry at `m`."""
        status, kind = "SUCCESS", "INCREMENTAL"
        finished: float | None = m.now - 10 * MINUTE
        grown = 1.0
        if self.kind in ("first", "steady", "full"):
            phase = 0.0 if self.kind == "first" else 0.5
            k, index, begun = stretch(m, (0.4, 0.6), phase=phase)
            first = self.kind == "first" and k == 0
            # Every run that is not incremental is INITIAL (a full refresh is never incremental).
            if first or self.kind == "full":
                kind = "INITIAL"
            if index == 0:
                status = "RUNNING"
                # The spec: "ISO string of the most recently completed sync"; the server leaves
                # it out while a run is in progress.
                finished = None
                if self.older_server:
                    # guess: older servers send the running job's last update as finishedAt.
                    finished = m.now - 30
                grown = 0.0 if first else 1.0
            else:
                finished = begun
            grown += max(k, 0) * 0.1
        elif self.kind == "error":
            status, finished = "ERROR", m.now - HOUR
        elif self.kind == "paused":
            # guess: the latest job's end, and here that job failed (paused after an error).
            status, finished = "PAUSED", m.now - 2 * HOUR
        elif self.kind == "stopped":
            status, finished = "STOPPED", m.now - 26 * HOUR
        counts = {model: int(count * grown) for model, count in self.models.items()}
        body: JSON = {
            "id": self.id,
            "connection_id": self.connection,
            "name": self.name,
            "variant": "base",
            "status": status,
            "type": kind,
            "finishedAt": iso_millis(finished) if finished else None,
            "nextScheduledSyncAt": iso_millis(m.now + 20 * MINUTE),
            "frequency": "every 30 minutes",
            "latestResult": {
                model: {"added": count // 10, "updated": count // 20, "deleted": 0}
                for model, count in counts.items()
            },
            "recordCount": counts,
        }
        if body["finishedAt"] is None:
            del body["finishedAt"]  # a string in Nango's spec, never null: no run has ended
        return body


def demo_syncs(older_server: bool = False) -> list[NangoSync]:
    """Two connections of the GitHub integration, and one of another integration that a request
    for GitHub must not return; `older_server` answers as older self-hosted servers."""
    old = older_server
    return [
        NangoSync(
            "issues",
            "acme-gh",
            "first",
            {"GithubIssue": 1200},
            labels={"team": "eng"},
            older_server=old,
        ),
        NangoSync(
            "pull-requests",
            "acme-gh",
            "steady",
            {"GithubPullRequest": 800, "GithubReview": 950},
            older_server=old,
        ),
        NangoSync("repos", "acme-gh", "full", {"GithubRepo": 60}, older_server=old),
        NangoSync("issues", "wonka-gh", "error", {"GithubIssue": 40}),
        NangoSync("pull-requests", "wonka-gh", "paused", {"GithubPullRequest": 15}),
        NangoSync("commits", "wonka-gh", "stopped", {"GithubCommit": 5000}),
        NangoSync(
            "contacts",
            "acme-hs",
            "steady",
            {"HubspotContact": 300},
            integration="hubspot",
            older_server=old,
        ),
    ]


class NangoWorld(Catalog):
    """Nango's part of a world: the secret key and the syncs of every integration."""

    extras = frozenset({"integration"})

    def __init__(self, syncs: list[NangoSync]) -> None:
        super().__init__(syncs)
        self.secret = SECRET

    def integration(self, sync_id: str) -> str:
        """The integration (provider config key) the sync belongs to."""
        entry = self.entry(sync_id)
        if isinstance(entry, NangoSync):
            return entry.integration
        extra = getattr(entry, "extra", {}).get("integration")
        return extra if isinstance(extra, str) else INTEGRATION


def _state(world: WorldView) -> NangoWorld:
    return state_of(world, NAME, NangoWorld)


class Nango(SimProvider):
    """Nango's API behind `/nango`."""

    name = NAME
    prefix = "/nango"
    list_path = "/sync/status"
    rank = 60
    options = frozenset({"nango_older_server"})

    def demo(self, options: Mapping[str, Any]) -> NangoWorld:
        """Six GitHub syncs of two connections, one HubSpot sync."""
        older = options.get("nango_older_server", False)
        if not isinstance(older, bool):
            raise ValueError("nango_older_server must be true or false")
        return NangoWorld(demo_syncs(older))

    def error_body(self, status: int, detail: str, retry_after: str | None = None) -> JSON:
        """A guess at Nango's error shape."""
        return {"error": {"code": snake(phrase(status)), "message": detail}}

    def routes(self, sim: Host) -> list[web.RouteDef]:
        """The sync status endpoint."""
        return [web.get(f"{self.prefix}{self.list_path}", self._status(sim))]

    def _status(self, sim: Host) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            early, fault = await admit(sim, self, request)
            if early is not None:
                return early
            state = _state(sim.world)
            if bearer(request) != state.secret:
                return self.error_response(401, "Authentication failed: invalid secret key")
            integration = request.query.get("provider_config_key", "")
            wanted = request.query.get("syncs", "")
            if not integration or not wanted:
                return self.error_response(400, "provider_config_key and syncs are required")
            names = None if wanted == "*" else set(wanted.split(","))
            connection = request.query.get("connection_id")
            m = sim.world.moment(sim.clock())
            found = []
            for sync_id in state.ids(m):
                body = state.body(sync_id, m)
                if body is None or state.integration(sync_id) != integration:
                    continue
                if names is not None and body.get("name") not in names:
                    continue
                if connection is not None and body.get("connection_id") != connection:
                    continue
                found.append({"id": sync_id, **body})
            return answer({"syncs": found}, fault)

        return handle

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Whether to answer as an older self-hosted Nango server."""
        parser.add_argument(
            "--nango-older-server",
            action="store_true",
            help="answer as older self-hosted Nango servers: a running sync's finishedAt is "
            "its job's last update (a guess)",
        )

    def options_from(self, args: argparse.Namespace) -> dict[str, Any]:
        """The older-server switch."""
        return {"nango_older_server": bool(args.nango_older_server)}

    webhook_secret = WEBHOOK_SECRET

    def webhook_events(self, sync_id: str, before: JSON | None, after: JSON) -> list[JSON]:
        """A sync webhook per model when a run ends (Nango's webhook guide: type, connectionId,
        providerConfigKey, syncName, model, responseResults, syncType, queryTimeStamp)."""
        status = after.get("status")
        if before is None or status not in ("SUCCESS", "ERROR"):
            return []
        entered = status != before.get("status")
        # A failing sync's finishedAt here moves with the clock: only a success's marks a run.
        another = status == "SUCCESS" and after.get("finishedAt") != before.get("finishedAt")
        if not (entered or another):
            return []
        results = after.get("latestResult") or {}
        events = []
        for model, counts in results.items():
            event: JSON = {
                "type": "sync",
                "connectionId": after.get("connection_id"),
                "providerConfigKey": INTEGRATION,
                "syncName": after.get("name"),
                "model": model,
                "responseResults": {model: counts},
                "syncType": after.get("type"),
                "queryTimeStamp": after.get("finishedAt"),
                # guess: the newer payload's success, startedAt and failedAt fields.
                "success": after.get("status") == "SUCCESS",
                "startedAt": after.get("finishedAt"),
            }
            if after.get("status") == "ERROR":
                event["failedAt"] = after.get("finishedAt")
                event["error"] = {"type": "script_error", "description": "simulated failure"}
            events.append(event)
        return events

    def webhook_headers(self, body: bytes) -> dict[str, str]:
        """X-Nango-Hmac-Sha256: the hex HMAC-SHA256 of the body under the webhook secret."""
        key = WEBHOOK_SECRET.encode()
        return {"X-Nango-Hmac-Sha256": hmac.new(key, body, hashlib.sha256).hexdigest()}

    def source(self, base_url: str, world: WorldView, *, discover: bool) -> dict[str, Any] | None:
        """The preset for the GitHub integration, with the simulator's secret key."""
        state = _state(world)
        ids = world.ids(NAME)
        if not ids:
            return None
        source: dict[str, Any] = {
            "name": f"{world.name}-{NAME}",
            "provider": "generic",
            "preset": NAME,
            "base_url": base_url,
            "auth": {"token": state.secret},
            "generic": {"list": {"params": {"provider_config_key": INTEGRATION}}},
            "webhook": {"secret": WEBHOOK_SECRET},
        }
        if discover:
            source["discover"] = True
        kept = [sync_id for sync_id in ids if state.integration(sync_id) == INTEGRATION]
        syncs = config_syncs(state, kept, discover=discover)
        if syncs:
            source["syncs"] = syncs
        return source


PROVIDER = Nango()
