"""Sequin: syncs whose health is data, a status plus notes on the credential and the provider,
and which carry the `external_id` and `metadata` customers map to their tenants.

    {sim}/sequin  GET /v1/syncs, GET /v1/syncs/{id}    Bearer <sequin key>
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from exporter.simulator.catalog import Catalog
from exporter.simulator.clock import DAY, MINUTE, Moment, sequin_time
from exporter.simulator.host import Host, WorldView
from exporter.simulator.providers.base import (
    JSON,
    SimProvider,
    bulk_id,
    config_syncs,
    derived_uuid,
    phrase,
    snake,
    spread,
    state_of,
)
from exporter.simulator.serving import Handler, admit, answer, bearer, one_sync

NAME = "sequin"
KEY = "sim-sequin-key"
ORG_ID = "6d6bbb73-a808-4d75-95ca-f2e9acfed605"

# Demo sync ids, stable across runs (tests and docs refer to them).
HEALTHY = "507613d9-b550-407d-8c4a-a5c410c4f10a"
EVERY_4H = "0bbb13de-5804-4cab-9625-b30de4afd177"
DISABLED = "d50c6f78-0d80-438b-bc7e-fd89373d803c"
ERROR = "a19d77db-82c0-4e14-aedb-35d3b6def2a8"
BACKFILLING = "31f8c86d-e5cb-4850-8b89-b3c58ff7a42a"
FLAKY = "dc39cd0d-ab0d-42bc-9932-db56ff7547e4"


@dataclass(frozen=True, slots=True)
class Health:
    """One reading of a sync's `health`: the overall status (an open set: `healthy`, `ok`,
    `warn`, `error` have been seen) and the credential's and provider's parts, whose notes say
    what is wrong when a part is not ok."""

    status: str = "healthy"
    credential: str = "ok"
    credential_notes: tuple[str, ...] = ()
    provider: str = "ok"
    provider_notes: tuple[str, ...] = ()

    def render(self, sync_id: str, since: float) -> JSON:
        """The `health` object, `since` being when the credential was last found so.

        Notes are arrays of strings, as Sequin documents them; guess: a part that is fine
        carries an empty array (not null, not left out).
        """
        return {
            "status": self.status,
            "sync_id": sync_id,
            "credential": {
                "status": self.credential,
                "notes": list(self.credential_notes),
                "time": sequin_time(since),
            },
            "provider": {"status": self.provider, "notes": list(self.provider_notes)},
        }


HEALTHY_READING = Health()
OK_READING = Health("ok")


def warn(notes: str) -> Health:
    """The provider misbehaves: overall `warn`, the provider's notes say how."""
    return Health("warn", provider="warn", provider_notes=(notes,))


def error(notes: str) -> Health:
    """The credential no longer works: overall `error`, the credential's notes say why."""
    return Health("error", credential="error", credential_notes=(notes,))


@dataclass(frozen=True, slots=True)
class SequinSync:
    """A Sequin sync, rendered as `GET /v1/syncs/{id}` returns it.

    `health` is a cycle of readings, each shown for an equal share of a period.
    """

    id: str
    name: str
    provider: str
    collection_ids: tuple[str, ...]
    stream_id: str
    credential_id: str
    credential_kind: str
    status: str = "active"
    health: tuple[Health, ...] = (HEALTHY_READING,)
    health_phase: float = 0.0
    sync_frequency: str = "continuous"
    backfilled: bool = True
    max_age_days: int | None = None
    allowed_requests: int = 1000
    created_ago: float = 30 * DAY
    external_id: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)

    def render(self, m: Moment) -> JSON:
        """The sync object, with its credential inlined as Sequin does."""
        k, f = m.cycle(phase=self.health_phase)
        share = min(int(f * len(self.health)), len(self.health) - 1)
        since = m.at(k + share / len(self.health), phase=self.health_phase)
        born = m.started_at - self.created_ago
        created = sequin_time(born)
        updated = sequin_time(born + min(3600.0, self.created_ago / 2))
        backfilled = sequin_time(born + min(7200.0, self.created_ago * 0.75))
        return {
            "id": self.id,
            "provider": self.provider,
            "stream_id": self.stream_id,
            "name": self.name,
            "external_id": self.external_id,
            "status": self.status,
            "org_id": ORG_ID,
            "health": self.health[share].render(self.id, max(since, born)),
            "collection_ids": list(self.collection_ids),
            "rate_limit": {
                "allowed_requests": self.allowed_requests,
                "interval": 60,
                "max_concurrent_requests": 0,
            },
            "credential_id": self.credential_id,
            "credential": {
                "id": self.credential_id,
                "provider": self.provider,
                "properties": {
                    "kind": self.credential_kind,
                    "name": self.name,
                    "secret": "***********",
                    "test": False,
                },
                "oauth_app_id": None,
                "oauth_app": {"kind": "sequin"},
                "metadata": {},
                "created_at": created,
                "updated_at": created,
            },
            "max_age_days": self.max_age_days,
            "sync_frequency": self.sync_frequency,
            "initial_backfill_completed_at": backfilled if self.backfilled else None,
            "metadata": dict(self.metadata),
            "created_at": created,
            "updated_at": updated,
        }


class SequinWorld(Catalog):
    """Sequin's part of a world: the API key and the syncs, ad-hoc ones as any catalogue's."""

    def __init__(self, syncs: Iterable[SequinSync], key: str = KEY) -> None:
        super().__init__(syncs)
        self.key = key


def _state(world: WorldView) -> SequinWorld:
    return state_of(world, NAME, SequinWorld)


# --- catalogues ---------------------------------------------------------------------------------


def sequin_sync(
    sync_id: str,
    name: str,
    provider: str,
    collections: tuple[str, ...],
    tenant: str,
    **fields: Any,
) -> SequinSync:
    """A sync with derived stream and credential ids, mapped to `tenant` by its metadata."""
    return SequinSync(
        sync_id,
        name,
        provider,
        collections,
        stream_id=derived_uuid(sync_id, "stream"),
        credential_id=derived_uuid(sync_id, "credential"),
        # invented: `<provider>_oauth2`; the docs' example shows only Stripe's `stripe_key`.
        credential_kind="stripe_key" if provider == "stripe" else f"{provider}_oauth2",
        external_id=f"{tenant}-{provider}",
        metadata={"tenant_id": tenant},
        **fields,
    )


def demo_syncs() -> list[SequinSync]:
    """Healthy and ok syncs, one warning (provider notes), one error (credential notes), one
    disabled, one still backfilling, one syncing every 4 hours."""
    return [
        sequin_sync(
            HEALTHY,
            "Choam Corp - HubSpot Production",
            "hubspot",
            ("hubspot:contact", "hubspot:company"),
            "t-choam",
            labels={"team": "growth"},
        ),
        sequin_sync(
            EVERY_4H,
            "Choam Corp - Stripe Billing",
            "stripe",
            ("stripe:customer", "stripe:invoice", "stripe:subscription"),
            "t-choam",
            sync_frequency="4h",
            health=(OK_READING,),
            max_age_days=365,
        ),
        sequin_sync(
            DISABLED,
            "Wonka - Salesforce Sandbox",
            "salesforce",
            ("salesforce:account",),
            "t-wonka",
            status="disabled",
            health=(OK_READING,),
        ),
        sequin_sync(
            ERROR,
            "Wonka - GitHub Issues",
            "github",
            ("github:issue", "github:pull_request"),
            "t-wonka",
            health=(error("Token was revoked by the user"),),
        ),
        sequin_sync(
            BACKFILLING,
            "Tyrell - Airtable Inventory",
            "airtable",
            ("airtable:record",),
            "t-tyrell",
            backfilled=False,
            created_ago=10 * MINUTE,
        ),
        sequin_sync(
            FLAKY,
            "Tyrell - Close CRM Leads",
            "close",
            ("close:lead", "close:activity"),
            "t-tyrell",
            health=(
                HEALTHY_READING,
                HEALTHY_READING,
                warn("Close API is returning 5xx for 3% of requests"),
            ),
            health_phase=0.7,
        ),
    ]


def bulk_sync(number: int) -> SequinSync:
    """The `number`-th bulk sync: mostly healthy, some warning, erroring, disabled or
    backfilling."""
    if number % 30 == 5:
        health: tuple[Health, ...] = (error("Token was revoked by the user"),)
    elif number % 7 == 0:
        health = (HEALTHY_READING, warn("HubSpot API is returning 5xx for 3% of requests"))
    else:
        health = (HEALTHY_READING,)
    return sequin_sync(
        bulk_id(NAME, number),
        f"Bulk tenant {number} - HubSpot",
        "hubspot",
        ("hubspot:contact",),
        f"bulk-tenant-{number}",
        status="disabled" if number % 15 == 4 else "active",
        health=health,
        health_phase=spread(number),
        backfilled=number % 40 != 6,
    )


# --- the provider -------------------------------------------------------------------------------


class Sequin(SimProvider):
    """Sequin behind `/sequin`."""

    name = NAME
    prefix = "/sequin"
    list_path = "/v1/syncs"
    rank = 30

    def demo(self, options: Mapping[str, Any]) -> SequinWorld:
        """Six syncs of three tenants (Choam, Wonka, Tyrell)."""
        return SequinWorld(demo_syncs())

    def bulk(self, count: int, options: Mapping[str, Any]) -> SequinWorld:
        """`count` syncs, `bulk-sequin-NNNNNN`, one tenant each."""
        return SequinWorld(bulk_sync(number) for number in range(1, count + 1))

    def error_body(self, status: int, detail: str, retry_after: str | None = None) -> JSON:
        """Sequin documents no error body; this `{summary, code}` shape is a plausible guess."""
        return {"summary": detail, "code": snake(phrase(status))}

    def routes(self, sim: Host) -> list[web.RouteDef]:
        """`GET /v1/syncs` (every sync object in full) and `GET /v1/syncs/{id}`."""
        return [
            web.get(f"{self.prefix}{self.list_path}", self._list(sim)),
            web.get(
                f"{self.prefix}{self.list_path}/{{id}}",
                one_sync(sim, self, "Could not find sync with ID: {id}", check=self._unauthorized),
            ),
        ]

    def _unauthorized(self, world: WorldView, request: web.Request) -> web.Response | None:
        state = _state(world)
        if bearer(request) != state.key:
            return self.error_response(401, "Please provide a valid API key")
        return None

    def _list(self, sim: Host) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            early, fault = await admit(sim, self, request, check=self._unauthorized)
            if early is not None:
                return early
            state = _state(sim.world)
            m = sim.world.moment(sim.clock())
            # Every listed sync object has its id, also an ad-hoc one whose body left it out.
            items = [{"id": sync_id, **(state.body(sync_id, m) or {})} for sync_id in state.ids(m)]
            return answer({"data": items}, fault)

        return handle

    def source(self, base_url: str, world: WorldView, *, discover: bool) -> dict[str, Any] | None:
        """The API key, tenants from `metadata.tenant_id`; with `discover` only the syncs that
        carry labels, without every sync."""
        state = _state(world)
        ids = world.ids(NAME)
        if not ids:
            return None
        source: dict[str, Any] = {
            "name": f"{world.name}-{NAME}",
            "provider": NAME,
            "base_url": base_url,
            "auth": {"token": state.key},
        }
        if discover:
            source["discover"] = True
        source["label_from"] = {"tenant": "metadata.tenant_id"}
        syncs = config_syncs(state, ids, discover=discover)
        if syncs:
            source["syncs"] = syncs
        return source


PROVIDER = Sequin()
