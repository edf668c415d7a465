"""Paragon's demo and bulk catalogues (demo ids are stable: tests and docs refer to them)."""

from __future__ import annotations

from exporter.simulator.clock import (
    DAY,
    HOUR,
    MINUTE,
    iso_micros_offset,
)
from exporter.simulator.providers.base import (
    bulk_id,
    derived_uuid,
    spread,
)
from exporter.simulator.providers.paragon.model import (
    ACME,
    DISABLED,
    ERRORED,
    GLOBEX,
    INITECH,
    LEGACY,
    LEGACY_PAUSED,
    MIGRATING,
    NAME,
    ORDERS,
    SYNCS_PER_USER,
    TICKETS,
    UMBRELLA,
    ParagonSync,
    active_idle,
    first_sync_then_incremental,
    fixed,
    rate_limited,
)

# --- catalogues ---------------------------------------------------------------------------------


def demo_syncs() -> list[ParagonSync]:
    """The demo syncs: between them every status, both timestamp forms and the legacy body."""
    revoked = derived_uuid(ERRORED, "credential")
    return [
        ParagonSync(
            ORDERS,
            ACME,
            "salesforce",
            "opportunities",
            "Acme Corp - Salesforce Opportunities",
            first_sync_then_incremental(total=12_480, growth=37),
            credential_id=derived_uuid(ORDERS, "credential"),
            frequency="1m",
            created_ago=MINUTE,
            labels={"team": "data"},
        ),
        ParagonSync(
            TICKETS,
            ACME,
            "zendesk",
            "tickets",
            "Acme Corp - Zendesk Tickets",
            rate_limited(total=88_215, growth=900),
            credential_id=derived_uuid(TICKETS, "credential"),
            frequency="5m",
            # guess: microseconds and a `+00:00` offset, a form no Paragon document shows but
            # ISO 8601 allows; readers must take it as they take the documented `Z` form.
            timestamp=iso_micros_offset,
            labels={"team": "support"},
        ),
        ParagonSync(
            ERRORED,
            INITECH,
            "googledrive",
            "files",
            "Initech - Google Drive Files",
            fixed(
                "ERRORED",
                4_302,
                3 * HOUR,
                reason=f"Credential ID [{revoked}] is no longer valid or has been deleted.",
            ),
            credential_id=revoked,
            frequency="30m",
        ),
        ParagonSync(
            DISABLED,
            GLOBEX,
            "hubspot",
            "contacts",
            "Globex - HubSpot Contacts",
            fixed("DISABLED", 51_876, 2 * DAY),
            credential_id=derived_uuid(DISABLED, "credential"),
            frequency="1h",
        ),
        ParagonSync(
            LEGACY,
            UMBRELLA,
            "notion",
            "pages",
            "Umbrella - Notion Pages (legacy)",
            active_idle(total=2_113, growth=12, active=0.3, phase=0.5),
            legacy=True,
            created_ago=400 * DAY,
        ),
        ParagonSync(
            LEGACY_PAUSED,
            UMBRELLA,
            "jira",
            "issues",
            "Umbrella - Jira Issues (legacy)",
            fixed("DISABLED", 9_940, 9 * DAY),
            legacy=True,
            created_ago=420 * DAY,
        ),
        ParagonSync(
            MIGRATING,
            INITECH,
            "sharepoint",
            "files",
            "Initech - SharePoint Files",
            fixed("MIGRATING", 730, 20 * MINUTE),
            credential_id=derived_uuid(MIGRATING, "credential"),
            frequency="24h",
        ),
    ]


def bulk_user(number: int, per_user: int = SYNCS_PER_USER) -> str:
    """The user owning the `number`-th (1-based) bulk sync, e.g. `bulk-user-0001`."""
    return f"bulk-user-{(number - 1) // per_user + 1:04d}"


def bulk_sync(number: int, per_user: int = SYNCS_PER_USER) -> ParagonSync:
    """The `number`-th bulk sync: mostly active/idle, every 10th rate limited, a few errored or
    disabled."""
    sync_id = bulk_id(NAME, number)
    if number % 10 == 0:
        lifecycle = rate_limited(total=1_000 + number, growth=60)
    elif number % 25 == 1:
        lifecycle = fixed("ERRORED", 500, 3 * HOUR, reason="Token revoked by the user.")
    elif number % 25 == 2:
        lifecycle = fixed("DISABLED", 500, 2 * DAY)
    else:
        lifecycle = active_idle(1_000 + number, 40, active=0.3, phase=spread(number))
    return ParagonSync(
        sync_id,
        bulk_user(number, per_user),
        "salesforce",
        "contacts",
        f"Bulk tenant {number} - Salesforce Contacts",
        lifecycle,
        credential_id=derived_uuid(sync_id, "credential"),
        frequency="5m",
    )
