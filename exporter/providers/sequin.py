"""Sequin: `GET /v1/syncs` and `GET /v1/syncs/{id}` with an API key.

Sequin's `health` is data: its `status` is an open set (`healthy`, `ok`, `warn`, `error` seen),
and its `credential` and `provider` parts carry notes saying what is wrong. Sequin reports no
last-success time, so its syncs export no staleness budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from exporter import values
from exporter.exposition.metrics import SYNC_HEALTH, Family
from exporter.exposition.targets import Found, Target
from exporter.model import State, SyncStatus
from exporter.providers.base import (
    Adapter,
    BadResponse,
    Http,
    Listing,
    UpstreamError,
    listed_id,
    objects_in,
    path_id,
    require_object,
)
from exporter.schema import BearerAuth, SourceConfig, SyncConfig

_FINE = frozenset({"healthy", "ok"})

HEALTH = SYNC_HEALTH
BACKFILL = Family(
    "sync_initial_backfill_completed_timestamp_seconds",
    "Unix time the initial backfill completed.",
    field="backfill",
)
ALLOWED = Family(
    "sync_rate_limit_allowed_requests",
    "Requests the sync may make to the third-party API per rate-limit interval.",
    field="allowed_requests",
)
LIMIT_INTERVAL = Family(
    "sync_rate_limit_interval_seconds",
    "Length of the sync's rate-limit interval.",
    field="limit_interval",
)
MAX_CONCURRENT = Family(
    "sync_rate_limit_max_concurrent_requests",
    "Maximum concurrent requests the sync may make to the third-party API (0: no limit).",
    field="max_concurrent",
)
COLLECTIONS = Family(
    "sync_collections",
    "Number of collections the sync writes.",
    field="collections",
)


class SequinConfig(SourceConfig[BearerAuth, SyncConfig]):
    """A Sequin account (API key)."""

    provider: Literal["sequin"]


def _state(status: str, health: str, backfilled: bool) -> State:
    status = status.lower()
    if status == "disabled":
        return State.DISABLED
    if status != "active":
        return State.UNKNOWN
    if health == "error":
        return State.ERRORED
    if not backfilled:
        return State.INITIALIZING
    return State.ACTIVE


def _notes(value: Any) -> str:
    """Sequin's notes are an array of strings, joined; a lone string is read as one note."""
    items = value if isinstance(value, list) else [value]
    return "; ".join(note for note in (values.text(item) for item in items) if note)


def _reason(health: dict[str, Any]) -> str:
    """The notes of whichever part of the health (credential, provider) is not fine."""
    for part in ("credential", "provider"):
        detail = health.get(part)
        if isinstance(detail, dict) and values.text(detail.get("status")).lower() not in _FINE:
            notes = _notes(detail.get("notes"))
            if notes:
                return notes
    return ""


def parse(body: Any) -> SyncStatus:
    """Map a Get a Sync response to SyncStatus; health.status is an open set of strings."""
    data = require_object(body)
    health = data.get("health")
    if not isinstance(health, dict):
        health = {}
    health_status = values.text(health.get("status")).lower()
    backfill = values.timestamp(data.get("initial_backfill_completed_at"))
    state = _state(data["status"], health_status, backfill is not None)
    rate_limit = data.get("rate_limit")
    if not isinstance(rate_limit, dict):
        rate_limit = {}
    frequency = values.text(data.get("sync_frequency"))
    interval = 0.0 if frequency.lower() == "continuous" else values.duration(frequency)
    collections = data.get("collection_ids")
    return SyncStatus(
        state=state,
        provider_status=data["status"],
        info={
            "name": values.text(data.get("name")),
            "integration": values.text(data.get("provider")),
            "credential_id": values.text(data.get("credential_id")),
            "frequency": frequency,
        },
        interval_seconds=interval,
        error_reason=_reason(health),
        values={
            BACKFILL.field: backfill,
            ALLOWED.field: values.number(rate_limit.get("allowed_requests")),
            LIMIT_INTERVAL.field: values.number(rate_limit.get("interval")),
            MAX_CONCURRENT.field: values.number(rate_limit.get("max_concurrent_requests")),
            COLLECTIONS.field: float(len(collections)) if isinstance(collections, list) else None,
        },
        sets={HEALTH.field: health_status or "unknown"},
    )


class Sequin(Adapter[SequinConfig]):
    """A Sequin source: the account's syncs."""

    name = "sequin"
    default_base_url = "https://api.sequin.io"
    config_model = SequinConfig
    families = (HEALTH, BACKFILL, ALLOWED, LIMIT_INTERVAL, MAX_CONCURRENT, COLLECTIONS)
    info_labels = ("credential_id", "frequency")
    reads_alone_when_bulk_fails = True

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config.auth.bearer()}"}

    async def discover(self, http: Http) -> Listing:
        """`GET /v1/syncs`: every sync object, in full."""
        try:
            body = await http.get(f"{self.base_url}/v1/syncs", self._headers(), listing=True)
            items = objects_in(require_object(body, status=False).get("data"), "syncs")
        except UpstreamError as exc:
            return {"": exc}
        except BadResponse as exc:
            return {"": UpstreamError("bad_response", str(exc))}
        return {"": [Found(listed_id(item), context=item) for item in items]}

    def reads_in_bulk(self) -> bool:
        """`GET /v1/syncs` returns every sync object in full: one request answers them all."""
        return True

    async def read_many(self, targets: Sequence[Target], http: Http) -> dict[str, SyncStatus]:
        """Every listed sync's status from one `GET /v1/syncs`."""
        body = await http.get(f"{self.base_url}/v1/syncs", self._headers(), listing=True)
        items = objects_in(require_object(body, status=False).get("data"), "syncs")
        statuses = {}
        for item in items:
            try:
                status = parse(item)
            except BadResponse:
                continue  # that sync is then read on its own, and fails there if it must
            status.info.update(self.described(item))
            statuses[listed_id(item)] = status
        return statuses

    async def read(self, target: Target, http: Http) -> SyncStatus:
        """`GET /v1/syncs/{id}`."""
        url = f"{self.base_url}/v1/syncs/{path_id(target.sync_id)}"
        body = await http.get(url, self._headers())
        status = parse(body)
        status.info.update(self.described(body))
        return status


PROVIDER = Sequin
