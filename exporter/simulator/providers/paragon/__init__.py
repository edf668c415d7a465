"""Paragon Managed Sync: every sync belongs to one connected user, who reads it with a Paragon
User Token, an RS256 JWT signed with the project's signing key.

    {sim}/paragon  GET /api/syncs[?credentialId=]   the token user's syncs: {"data": [...]}
                   GET /api/syncs/{id}             the status body; another user's sync is 404
    control        GET /_sim/paragon               project id, audience, signing key, users
                   GET /_sim/paragon/token?user=U[&ttl=seconds][&aud=A]   a minted user token
                   POST /_sim/syncs/paragon        {"id", "body", "user"?}: an ad-hoc sync
"""

from __future__ import annotations

from exporter.simulator.providers.paragon.fixtures import bulk_sync, bulk_user, demo_syncs
from exporter.simulator.providers.paragon.keys import (
    Unauthorized,
    generate_signing_key,
    key_pem,
    load_signing_key,
    project_id_of,
    signing_key_file,
)
from exporter.simulator.providers.paragon.model import (
    ACME,
    AUDIENCE_HOST,
    DEFAULT_USER,
    DISABLED,
    ERRORED,
    GLOBEX,
    IAT_SKEW,
    INITECH,
    LEGACY,
    LEGACY_PAUSED,
    MIGRATING,
    NAME,
    ORDERS,
    SYNCS_PER_USER,
    TICKETS,
    TOKEN_TTL,
    UMBRELLA,
    AdHocSync,
    Entry,
    Lifecycle,
    ParagonSync,
    Snapshot,
    active_idle,
    first_sync_then_incremental,
    fixed,
    rate_limited,
)
from exporter.simulator.providers.paragon.routes import Paragon
from exporter.simulator.providers.paragon.world import ParagonWorld

PROVIDER = Paragon()

__all__ = [
    "ACME",
    "AUDIENCE_HOST",
    "DEFAULT_USER",
    "DISABLED",
    "ERRORED",
    "GLOBEX",
    "IAT_SKEW",
    "INITECH",
    "LEGACY",
    "LEGACY_PAUSED",
    "MIGRATING",
    "NAME",
    "ORDERS",
    "PROVIDER",
    "SYNCS_PER_USER",
    "TICKETS",
    "TOKEN_TTL",
    "UMBRELLA",
    "AdHocSync",
    "Entry",
    "Lifecycle",
    "Paragon",
    "ParagonSync",
    "ParagonWorld",
    "Snapshot",
    "Unauthorized",
    "active_idle",
    "bulk_sync",
    "bulk_user",
    "demo_syncs",
    "first_sync_then_incremental",
    "fixed",
    "generate_signing_key",
    "key_pem",
    "load_signing_key",
    "project_id_of",
    "rate_limited",
    "signing_key_file",
]
