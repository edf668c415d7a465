"""Terminal's demo and bulk catalogues (demo ids are stable: tests and docs refer to them)."""

from __future__ import annotations

from typing import Any

from exporter.simulator.clock import DAY, HOUR, MINUTE
from exporter.simulator.providers.base import (
    bulk_id,
    spread,
)
from exporter.simulator.providers.terminal.model import (
    ANCHOR_MS,
    DISCONNECTED,
    FAILED_JOB,
    FAILING,
    HEALTHY,
    HISTORICAL,
    HISTORICAL_JOB,
    ISSUES_JOB,
    JOB,
    MANUAL,
    NAME,
    ONGOING_ISSUE,
    RECOVERED,
    RESOLVED_ISSUE,
    SECOND_ONGOING_ISSUE,
    WITH_ISSUES,
    Cadence,
    ConnectionSpec,
    Issue,
    PastJob,
    ulid_like,
)

# --- catalogues ---------------------------------------------------------------------------------


def _completed(seed: str, ago: float, **fields: Any) -> PastJob:
    return PastJob(ulid_like("sync", seed, ANCHOR_MS - int(ago * 1000)), ago, **fields)


def demo_connections() -> list[ConnectionSpec]:
    """Every case the exporter must get right, one connection each."""
    ongoing = (
        Issue(
            ONGOING_ISSUE,
            "missing_permissions",
            "Failed to ingest HOS Logs, missing permissions to access Duty Status Logs",
            2 * DAY,
        ),
        Issue(
            SECOND_ONGOING_ISSUE,
            "inaccessible_data",
            "Could not read trailer assignments: the provider returned 403 for 4 vehicles",
            6 * HOUR,
        ),
    )
    resolved = Issue(
        RESOLVED_ISSUE,
        "unknown_device_type",
        "Skipped 3 devices of an unrecognised type",
        5 * HOUR,
        resolved_ago=HOUR,
    )
    return [
        ConnectionSpec(
            HEALTHY,
            "Frank's Trucking",
            "geotab",
            external_id="fleet-101",
            created_ago=360 * DAY,
            tags=("east",),
            history=(
                _completed("demo:healthy:1", 2 * DAY),
                _completed("demo:healthy:2", DAY),
            ),
            cadence=Cadence(first_id=JOB),
        ),
        ConnectionSpec(
            RECOVERED,
            "Bluebird Freight",
            "samsara",
            external_id="fleet-102",
            created_ago=330 * DAY,
            tags=("west",),
            history=(
                _completed("demo:recovered:1", 2 * DAY),
                PastJob(
                    FAILED_JOB,
                    DAY,
                    status="failed",
                    progress=37.42,
                    attempts=3,
                    failure_reason=(
                        "Provider rejected the connection's credentials (401 from Samsara API)"
                    ),
                ),
            ),
            cadence=Cadence(length=4.0, phase=0.5, requested=0.01, running=0.05),
        ),
        ConnectionSpec(
            FAILING,
            "Cascade Carriers",
            "motive",
            external_id="fleet-103",
            created_ago=300 * DAY,
            tags=("west",),
            history=(_completed("demo:failing:1", 3 * DAY),),
            cadence=Cadence(
                length=2.0,
                phase=0.5,
                requested=0.05,
                running=0.2,
                failure="Motive API answered 403 Forbidden: the API key lacks the fleet scope",
            ),
        ),
        ConnectionSpec(
            DISCONNECTED,
            "Delta Haulage",
            "samsara",
            status="disconnected",
            external_id="fleet-104",
            created_ago=270 * DAY,
            tags=("east",),
            updated_ago=2 * DAY,
            history=(
                _completed("demo:disconnected:1", 3 * DAY),
                PastJob(
                    ulid_like("sync", "demo:disconnected:2"),
                    2 * DAY,
                    status="failed",
                    progress=0.0,
                    attempts=3,
                    failure_reason="Connection disconnected: the Samsara API token was revoked",
                ),
            ),
        ),
        ConnectionSpec(
            MANUAL,
            "Evergreen Transport",
            "geotab",
            sync_mode="manual",
            external_id="fleet-105",
            created_ago=240 * DAY,
            history=(
                _completed("demo:manual:1", 20 * DAY),
                _completed("demo:manual:2", 4 * DAY, duration=25 * MINUTE),
            ),
        ),
        ConnectionSpec(
            WITH_ISSUES,
            "Frontier Fleet",
            "motive",
            external_id="fleet-106",
            created_ago=210 * DAY,
            tags=("central",),
            history=(_completed("demo:issues:1", 3 * DAY, issues=(resolved,)),),
            cadence=Cadence(
                length=3.0, phase=0.1, first_id=ISSUES_JOB, issues=(*ongoing, resolved)
            ),
        ),
        ConnectionSpec(
            HISTORICAL,
            "Glacier Logistics",
            "omnitracs",
            external_id="fleet-107",
            created_ago=180 * DAY,
            tags=("central",),
            history=(
                _completed("demo:historical:1", 2 * DAY),
                PastJob(
                    HISTORICAL_JOB,
                    3 * HOUR,
                    status="in_progress",
                    progress=12.0,
                    creep=0.5,
                    provider_requests=("historical_files",),
                    lookback=365 * DAY,
                ),
            ),
        ),
    ]


def bulk_connection(number: int) -> ConnectionSpec:
    """The `number`-th bulk connection: mostly healthy, some failing, disconnected or manual."""
    connection_id = bulk_id(NAME, number)
    provider = ("geotab", "samsara", "motive")[number % 3]
    history = (_completed(f"{connection_id}:past", DAY),)
    status, mode, cadence = "connected", "automatic", None
    if number % 25 == 7:
        status = "disconnected"
    elif number % 30 == 11:
        mode = "manual"
    elif number % 20 == 3:
        cadence = Cadence(phase=spread(number), failure="Connection credentials were rejected")
    else:
        cadence = Cadence(phase=spread(number))
    return ConnectionSpec(
        connection_id,
        f"Bulk fleet {number}",
        provider,
        status=status,
        sync_mode=mode,
        external_id=f"bulk-fleet-{number}",
        created_ago=60 * DAY - number * MINUTE,
        history=history,
        cadence=cadence,
    )
