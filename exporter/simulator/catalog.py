"""The syncs of the demo world and of the bulk (benchmark) world."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from exporter.simulator.clock import iso_micros_offset
from exporter.simulator.syncs import (
    DAY,
    HOUR,
    MINUTE,
    FakeSync,
    ParagonSync,
    Provider,
    SequinSync,
    TerminalIssue,
    TerminalSync,
    paragon_active_idle,
    paragon_first_sync_then_incremental,
    paragon_fixed,
    paragon_rate_limited,
    terminal_failed,
    terminal_job,
)

Catalog = dict[Provider, list[FakeSync]]

_NAMESPACE = uuid.UUID("267cd510-86bc-4be1-9d4e-ea828c343db5")

# Demo sync ids, stable across runs (tests and docs refer to them).
PARAGON_ORDERS = "0a3b24a3-5675-4ed2-9f63-dc8a1da269b1"
PARAGON_TICKETS = "cf41dc6c-11ff-48b4-a6c0-e8a1174f582a"
PARAGON_ERRORED = "07e5c66b-3a4f-4b8f-9b93-59a2bf341d1a"
PARAGON_DISABLED = "f8f3b897-9924-406e-941e-b3b75187ea14"
PARAGON_LEGACY = "e0b812f7-a80e-402f-9181-b4f43d8642e8"
PARAGON_LEGACY_PAUSED = "ded981be-8b88-443b-b067-82dd60092eb3"
PARAGON_MIGRATING = "72c9f9a7-8496-4678-80c6-64e5bac5060a"

TERMINAL_JOB = "sync_01M7WCAP67GWM666TX4H6G7ZRA"
TERMINAL_FAILED = "sync_01M7WCAXXPRAKQM4VEW775FX7B"
TERMINAL_WITH_ISSUES = "sync_01M7WCB5N5KYG3J7V546Q4WRC7"
TERMINAL_CONNECTION = "conn_01M7WCBDCMH4QCHFB7DF785KF6"

SEQUIN_HEALTHY = "507613d9-b550-407d-8c4a-a5c410c4f10a"
SEQUIN_EVERY_4H = "0bbb13de-5804-4cab-9625-b30de4afd177"
SEQUIN_DISABLED = "d50c6f78-0d80-438b-bc7e-fd89373d803c"
SEQUIN_ERROR = "a19d77db-82c0-4e14-aedb-35d3b6def2a8"
SEQUIN_BACKFILLING = "31f8c86d-e5cb-4850-8b89-b3c58ff7a42a"
SEQUIN_FLAKY = "dc39cd0d-ab0d-42bc-9932-db56ff7547e4"


def derived_uuid(*parts: str) -> str:
    """A UUID that is a stable function of `parts` (credential, stream ids...)."""
    return str(uuid.uuid5(_NAMESPACE, ":".join(parts)))


def _paragon_demo() -> list[FakeSync]:
    revoked = derived_uuid(PARAGON_ERRORED, "credential")
    return [
        ParagonSync(
            PARAGON_ORDERS,
            "salesforce",
            "opportunities",
            "Acme Corp - Salesforce Opportunities",
            paragon_first_sync_then_incremental(total=12_480, growth=37),
            credential_id=derived_uuid(PARAGON_ORDERS, "credential"),
            frequency="1m",
            created_ago=MINUTE,
            labels={"team": "data"},
        ),
        ParagonSync(
            PARAGON_TICKETS,
            "zendesk",
            "tickets",
            "Acme Corp - Zendesk Tickets",
            paragon_rate_limited(total=88_215, growth=900),
            credential_id=derived_uuid(PARAGON_TICKETS, "credential"),
            frequency="5m",
            timestamp=iso_micros_offset,
            labels={"team": "support"},
        ),
        ParagonSync(
            PARAGON_ERRORED,
            "googledrive",
            "files",
            "Initech - Google Drive Files",
            paragon_fixed(
                "ERRORED",
                4_302,
                3 * HOUR,
                reason=f"Credential ID [{revoked}] is no longer valid or has been deleted.",
            ),
            credential_id=revoked,
            frequency="30m",
        ),
        ParagonSync(
            PARAGON_DISABLED,
            "hubspot",
            "contacts",
            "Globex - HubSpot Contacts",
            paragon_fixed("DISABLED", 51_876, 2 * DAY),
            credential_id=derived_uuid(PARAGON_DISABLED, "credential"),
            frequency="1h",
        ),
        ParagonSync(
            PARAGON_LEGACY,
            "notion",
            "pages",
            "Umbrella - Notion Pages (legacy)",
            paragon_active_idle(total=2_113, growth=12, active=0.3, phase=0.5),
            legacy=True,
            created_ago=400 * DAY,
        ),
        ParagonSync(
            PARAGON_LEGACY_PAUSED,
            "jira",
            "issues",
            "Umbrella - Jira Issues (legacy)",
            paragon_fixed("DISABLED", 9_940, 9 * DAY),
            legacy=True,
            created_ago=420 * DAY,
        ),
        ParagonSync(
            PARAGON_MIGRATING,
            "sharepoint",
            "files",
            "Initech - SharePoint Files",
            paragon_fixed("MIGRATING", 730, 20 * MINUTE),
            credential_id=derived_uuid(PARAGON_MIGRATING, "credential"),
            frequency="24h",
        ),
    ]


def _terminal_demo() -> list[FakeSync]:
    issues = (
        TerminalIssue(
            "isu_01M7WCBN43R6BHXGAVBHF0TXCS",
            "missing_permissions",
            "Failed to ingest HOS Logs, missing permissions to access Duty Status Logs",
            2 * DAY,
        ),
        TerminalIssue(
            "isu_01M7WCBWVJ8T957C1X7DHNX7J1",
            "unknown_device_type",
            "Skipped 3 devices of an unrecognised type",
            5 * HOUR,
        ),
    )
    return [
        TerminalSync(TERMINAL_JOB, terminal_job(), TERMINAL_CONNECTION, labels={"fleet": "east"}),
        TerminalSync(
            TERMINAL_FAILED,
            terminal_failed(
                "Provider rejected the connection's credentials (401 from Samsara API)",
                progress=37.42,
                attempts=3,
                requested_ago=40 * MINUTE,
            ),
            TERMINAL_CONNECTION,
        ),
        TerminalSync(
            TERMINAL_WITH_ISSUES,
            terminal_job(length=3.0, phase=0.1),
            TERMINAL_CONNECTION,
            issues=issues,
            lookback=7 * DAY,
        ),
    ]


def _sequin(
    sync_id: str,
    name: str,
    provider: str,
    collections: tuple[str, ...],
    *,
    status: str = "active",
    health: tuple[str, ...] = ("healthy",),
    health_phase: float = 0.0,
    sync_frequency: str = "continuous",
    backfilled: bool = True,
    max_age_days: int | None = None,
    created_ago: float = 30 * DAY,
    labels: Mapping[str, str] | None = None,
) -> SequinSync:
    return SequinSync(
        sync_id,
        name,
        provider,
        collections,
        stream_id=derived_uuid(sync_id, "stream"),
        credential_id=derived_uuid(sync_id, "credential"),
        credential_kind="stripe_key" if provider == "stripe" else f"{provider}_oauth2",
        status=status,
        health=health,
        health_phase=health_phase,
        sync_frequency=sync_frequency,
        backfilled=backfilled,
        max_age_days=max_age_days,
        created_ago=created_ago,
        labels=labels or {},
    )


def _sequin_demo() -> list[FakeSync]:
    hubspot = ("hubspot:contact", "hubspot:company")
    return [
        _sequin(
            SEQUIN_HEALTHY,
            "Choam Corp - HubSpot Production",
            "hubspot",
            hubspot,
            labels={"team": "growth"},
        ),
        _sequin(
            SEQUIN_EVERY_4H,
            "Choam Corp - Stripe Billing",
            "stripe",
            ("stripe:customer", "stripe:invoice", "stripe:subscription"),
            sync_frequency="4h",
            health=("ok",),
            max_age_days=365,
        ),
        _sequin(
            SEQUIN_DISABLED,
            "Wonka - Salesforce Sandbox",
            "salesforce",
            ("salesforce:account",),
            status="disabled",
            health=("ok",),
        ),
        _sequin(
            SEQUIN_ERROR,
            "Wonka - GitHub Issues",
            "github",
            ("github:issue", "github:pull_request"),
            health=("error",),
        ),
        _sequin(
            SEQUIN_BACKFILLING,
            "Tyrell - Airtable Inventory",
            "airtable",
            ("airtable:record",),
            backfilled=False,
            created_ago=10 * MINUTE,
        ),
        _sequin(
            SEQUIN_FLAKY,
            "Tyrell - Close CRM Leads",
            "close",
            ("close:lead", "close:activity"),
            health=("healthy", "healthy", "warn"),
        ),
    ]


def demo_catalog() -> Catalog:
    """The default world: a few syncs per provider that together show every canonical state."""
    return {"paragon": _paragon_demo(), "terminal": _terminal_demo(), "sequin": _sequin_demo()}


def bulk_counts(count: int) -> tuple[int, int, int]:
    """How `count` bulk syncs are split over paragon, terminal and sequin (as evenly as possible,
    earlier providers taking the remainder)."""
    base, extra = divmod(count, 3)
    return base + (extra > 0), base + (extra > 1), base


def bulk_id(provider: Provider, number: int) -> str:
    """Id of the `number`-th (1-based) bulk sync of `provider`, e.g. `bulk-paragon-000001`."""
    return f"bulk-{provider}-{number:06d}"


def _spread(number: int) -> float:
    # Golden-ratio steps spread the phases of consecutive syncs evenly over the cycle.
    return (number * 0.6180339887) % 1.0


def _bulk_paragon(number: int) -> ParagonSync:
    sync_id = bulk_id("paragon", number)
    if number % 10 == 0:
        lifecycle = paragon_rate_limited(total=1_000 + number, growth=60)
    elif number % 25 == 1:
        lifecycle = paragon_fixed("ERRORED", 500, 3 * HOUR, reason="Token revoked by the user.")
    elif number % 25 == 2:
        lifecycle = paragon_fixed("DISABLED", 500, 2 * DAY)
    else:
        lifecycle = paragon_active_idle(1_000 + number, 40, active=0.3, phase=_spread(number))
    return ParagonSync(
        sync_id,
        "salesforce",
        "contacts",
        f"Bulk tenant {number} - Salesforce Contacts",
        lifecycle,
        credential_id=derived_uuid(sync_id, "credential"),
        frequency="5m",
    )


def _bulk_terminal(number: int) -> TerminalSync:
    if number % 20 == 3:
        lifecycle = terminal_failed("Connection disconnected", 12.5, 2, 30 * MINUTE)
    else:
        lifecycle = terminal_job(phase=_spread(number))
    return TerminalSync(bulk_id("terminal", number), lifecycle, TERMINAL_CONNECTION)


def _bulk_sequin(number: int) -> SequinSync:
    if number % 30 == 5:
        health: tuple[str, ...] = ("error",)
    elif number % 7 == 0:
        health = ("healthy", "warn")
    else:
        health = ("healthy",)
    return _sequin(
        bulk_id("sequin", number),
        f"Bulk tenant {number} - HubSpot",
        "hubspot",
        ("hubspot:contact",),
        status="disabled" if number % 15 == 4 else "active",
        health=health,
        health_phase=_spread(number),
        backfilled=number % 40 != 6,
    )


def bulk_catalog(count: int) -> Catalog:
    """`count` syncs split across the providers, ids `bulk-<provider>-NNNNNN`, states spread out."""
    paragon, terminal, sequin = bulk_counts(count)
    return {
        "paragon": [_bulk_paragon(n) for n in range(1, paragon + 1)],
        "terminal": [_bulk_terminal(n) for n in range(1, terminal + 1)],
        "sequin": [_bulk_sequin(n) for n in range(1, sequin + 1)],
    }
