"""Merge: per linked account, the sync status of each common model, read with the
organisation's API key and that account's own `X-Account-Token`.

    {sim}/merge  GET /api/{category}/v1/sync-status[?cursor=&page_size=]
                     Bearer <API key>, X-Account-Token: <linked account's token>
                     {"next": ..., "previous": ..., "results": [{model_name, model_id,
                     last_sync_start, next_sync_start, last_sync_result, last_sync_finished,
                     status, is_initial_sync, selective_sync_configurations_usage}]}

Shapes follow Merge's public API reference for `/sync-status`: `status` and
`last_sync_result` are DISABLED, DONE, FAILED, PARTIALLY_SYNCED, PAUSED or SYNCING; pages by
`cursor` and `page_size` (at most 100), `next` the following page's cursor. Merge's help
center: PAUSED is an account without API requests for two weeks, or failing its syncs for
two weeks; PARTIALLY_SYNCED means some fields of a model failed while the rest synced.
Guesses, marked as such: the default page size (3 here, so a client that does not ask for
100 reads several pages); a paused failing account's `last_sync_result` FAILED; an unknown
account token is a 401 and an account read under another category a 404; the error body
`{detail}`.

The exporter's sync id is whatever name the config gives a linked account (the simulator's
demo calls them acme, wonka, initech and tyrell); the token says which account is read.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from exporter.simulator.catalog import AdHoc, Catalog, cursor_page, limit_of, stretch
from exporter.simulator.clock import DAY, HOUR, Moment, iso_millis
from exporter.simulator.host import Host, WorldView
from exporter.simulator.providers.base import JSON, SimProvider, derived_uuid, state_of
from exporter.simulator.serving import Handler, admit, answer, bearer

NAME = "merge"
API_KEY = "sim-merge-api-key"
MODELS = ("Employee", "Employment", "Team", "TimeOff")
DEFAULT_PAGE = 3
WEBHOOK_SECRET = "sim-merge-webhook-signature-key"


def account_token(account: str) -> str:
    """The demo account's X-Account-Token."""
    return f"sim-merge-account-{account}"


@dataclass(frozen=True, slots=True)
class Account:
    """A linked account of one category; `kind` picks its models' lifecycle: `first` (an
    initial sync, then daily ones), `failing` (one model fails), `steady` (one model disabled,
    the others done), `partial` (some fields of one model failed to sync), `paused` (the
    account has been inactive), `paused_failing` (paused after two weeks of failed syncs)."""

    id: str
    kind: str
    category: str = "hris"
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def token(self) -> str:
        """The account's token."""
        return account_token(self.id)

    def render(self, m: Moment) -> JSON:
        """The first page of the account's sync status at `m`."""
        return {"results": [self._model(name, m) for name in MODELS]}

    def _model(self, name: str, m: Moment) -> JSON:
        status = "DONE"
        result: str | None = "DONE"
        initial = False
        # invented: a steady model's run ends once a period, and a paused one's never again, so
        # its finish time moves only when a run ended.
        cycle = stretch(m, (1.0,))[2]
        started = cycle - 2 * HOUR
        finished: float | None = cycle - HOUR
        if self.kind == "first":
            k, index, begun = stretch(m, (0.4, 0.6))
            if index == 0:
                status, initial = "SYNCING", k == 0
                started = begun
                finished = m.at(k - 0.6) if k else None
                result = "DONE" if k else None
            else:
                started, finished = m.at(k), begun
        elif self.kind == "failing" and name == "TimeOff":
            status = result = "FAILED"
        elif self.kind == "steady" and name == "Team":
            status = "DISABLED"
        elif self.kind == "partial" and name == "Employee":
            status = result = "PARTIALLY_SYNCED"
        elif self.kind == "paused":
            status, started, finished = "PAUSED", m.started_at - 15 * DAY, m.started_at - 15 * DAY
        elif self.kind == "paused_failing":
            # Help center: paused after "failed syncs for over 2 weeks"; the result then is a
            # guess (FAILED, the last sync's outcome).
            status, result = "PAUSED", "FAILED"
            started, finished = m.started_at - DAY, m.started_at - DAY + HOUR
        return {
            "model_name": name,
            "model_id": f"{self.category}.{name}",
            "last_sync_start": iso_millis(started),
            "next_sync_start": iso_millis(m.now + DAY),
            "last_sync_result": result,
            "last_sync_finished": None if finished is None else iso_millis(finished),
            "status": status,
            "is_initial_sync": initial,
            "selective_sync_configurations_usage": "IN_LAST_SYNC",
        }


def demo_accounts() -> list[Account]:
    """Six HRIS accounts: syncing for the first time, failing on one model, done, partly
    synced, paused, paused after failing."""
    return [
        Account("acme", "first", labels={"team": "people"}),
        Account("wonka", "failing"),
        Account("initech", "steady"),
        Account("hooli", "partial"),
        Account("tyrell", "paused"),
        Account("cyberdyne", "paused_failing"),
    ]


class MergeWorld(Catalog):
    """Merge's part of a world: the API key and the linked accounts."""

    extras = frozenset({"token", "category"})

    def __init__(self, accounts: list[Account]) -> None:
        super().__init__(accounts)
        self.key = API_KEY

    def token(self, sync_id: str) -> str:
        """The account's X-Account-Token (an ad-hoc account's `token`)."""
        entry = self.entry(sync_id)
        if isinstance(entry, Account):
            return entry.token
        extra = entry.extra.get("token") if isinstance(entry, AdHoc) else None
        return extra if isinstance(extra, str) else account_token(sync_id)

    def category(self, sync_id: str) -> str:
        """The account's category."""
        entry = self.entry(sync_id)
        if isinstance(entry, Account):
            return entry.category
        extra = entry.extra.get("category") if isinstance(entry, AdHoc) else None
        return extra if isinstance(extra, str) else "hris"


def _state(world: WorldView) -> MergeWorld:
    return state_of(world, NAME, MergeWorld)


class Merge(SimProvider):
    """Merge's unified API behind `/merge`."""

    name = NAME
    prefix = "/merge"
    list_path = "/api/hris/v1/sync-status"
    rank = 70

    def demo(self, options: Mapping[str, Any]) -> MergeWorld:
        """Six linked HRIS accounts."""
        return MergeWorld(demo_accounts())

    def error_body(self, status: int, detail: str, retry_after: str | None = None) -> JSON:
        """A guess at Merge's error shape."""
        return {"detail": detail}

    def routes(self, sim: Host) -> list[web.RouteDef]:
        """Every category's sync status."""
        return [web.get(f"{self.prefix}/api/{{category}}/v1/sync-status", self._status(sim))]

    def _status(self, sim: Host) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            state = _state(sim.world)
            m = sim.world.moment(sim.clock())
            given = request.headers.get("X-Account-Token", "")
            account = next((i for i in state.ids(m) if state.token(i) == given), None)
            early, fault = await admit(sim, self, request, account)
            if early is not None:
                return early
            if bearer(request) != state.key:
                return self.error_response(401, "Invalid API key")
            if account is None:
                return self.error_response(401, "Invalid account token")
            if state.category(account) != request.match_info["category"]:
                return self.error_response(404, "This linked account has another category")
            body = state.body(account, m) or {}
            results = body.get("results")
            # guess: the default page size (Merge documents only the maximum, 100).
            size = limit_of(request, "page_size", DEFAULT_PAGE, 100)
            every = results if isinstance(results, list) else []
            page, following = cursor_page(every, request.query.get("cursor"), size)
            return answer(
                {**body, "next": following, "previous": None, "results": list(page)}, fault
            )

        return handle

    def source(self, base_url: str, world: WorldView, *, discover: bool) -> dict[str, Any] | None:
        """The preset, one sync per linked account with its token as a header (Merge cannot
        list accounts with their tokens, so there is nothing to discover)."""
        state = _state(world)
        m = world.moment(world.started_at)
        ids = [i for i in world.ids(NAME) if state.category(i) == "hris"]
        if not ids:
            return None
        syncs: list[Any] = []
        for sync_id in ids:
            sync: dict[str, Any] = {"id": sync_id}
            labels = dict(state.labels(sync_id))
            if labels:
                sync["labels"] = labels
            sync["headers"] = {"X-Account-Token": state.token(sync_id)}
            if state.has(sync_id, m):
                syncs.append(sync)
        return {
            "name": f"{world.name}-{NAME}",
            "provider": "generic",
            "preset": NAME,
            "base_url": base_url,
            "auth": {"token": state.key},
            "syncs": syncs,
        }

    webhook_secret = WEBHOOK_SECRET

    def webhook_events_in(
        self, world: WorldView, sync_id: str, before: JSON | None, after: JSON, now: float
    ) -> list[JSON]:
        """LinkedAccount.sync_completed when a model's last sync finishes or its result
        changes."""
        return merge_events(_state(world).category(sync_id), sync_id, before, after)

    def webhook_headers(self, body: bytes) -> dict[str, str]:
        """X-Merge-Webhook-Signature: the base64url HMAC-SHA256 of the body under the key."""
        digest = hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).digest()
        return {"X-Merge-Webhook-Signature": base64.urlsafe_b64encode(digest).decode()}


def _models(body: JSON | None) -> dict[str, tuple[Any, Any]]:
    results = [] if body is None else body.get("results") or []
    return {
        str(r.get("model_id")): (r.get("status"), r.get("last_sync_result"))
        for r in results
        if isinstance(r, dict)
    }


def merge_events(category: str, sync_id: str, before: JSON | None, after: JSON) -> list[JSON]:
    """Merge's linked-account sync event when a model's sync ends or its result changes (the
    shape of Merge's own sync guides: `hook`, `linked_account`, `data.sync_status` keyed by
    model id with its last finish and result): a model leaving SYNCING, or its result
    changing."""
    if before is None:
        return []
    was, now = _models(before), _models(after)
    ended = any(
        was.get(model, (None, None))[0] == "SYNCING" and state != "SYNCING"
        for model, (state, _) in now.items()
    )
    changed = any(was.get(model, (None, None))[1] != result for model, (_, result) in now.items())
    if not (ended or changed):
        return []
    results = [r for r in after.get("results") or [] if isinstance(r, dict)]
    status = {
        str(r.get("model_id")): {
            "last_sync_finished": r.get("last_sync_finished"),
            "last_sync_result": r.get("last_sync_result"),
        }
        for r in results
    }
    initial = any(r.get("is_initial_sync") for r in results)
    return [
        {
            "hook": {
                # invented: the webhook's id, one per simulated account.
                "id": derived_uuid(NAME, "hook", sync_id),
                "event": "LinkedAccount.sync_completed",
                "target": "https://exporter.invalid/webhooks/merge",
            },
            # invented: the demo's linked account ids are the account names.
            "linked_account": {
                "id": sync_id,
                "integration": "BambooHR",
                "integration_slug": "bamboohr",
                "category": category,
                "end_user_origin_id": sync_id,
                "status": "COMPLETE",
            },
            "data": {
                "is_initial_sync": initial,
                "integration_name": "BambooHR",
                "integration_id": "bamboohr",
                "sync_status": status,
            },
        }
    ]


PROVIDER = Merge()
