"""One collection's changes in sync failures, gathered while it reads and logged at its end."""

from __future__ import annotations

import logging
from typing import Literal

from exporter.errors import BadResponse, UpstreamError

# The collection's logger: the lines are the collection's, wherever the code lives.
log = logging.getLogger("exporter.collection")


Kind = Literal["errors", "skipped", "deferred", "not_started"]


def classify(exc: Exception) -> tuple[str, str, Kind]:
    """A failed read's reason, its detail, and the counter it goes to: `errors` for a request
    that failed or an answer that could not be read, `skipped` while backing off after a 429,
    `deferred` when the budget was spent, `not_started` for a request never sent."""
    if isinstance(exc, UpstreamError):
        kind: Kind = "not_started"
        if exc.sent:
            kind = "errors"
        elif exc.reason in ("rate_limited", "budget"):
            kind = "skipped" if exc.reason == "rate_limited" else "deferred"
        return exc.reason, exc.detail, kind
    if isinstance(exc, BadResponse):
        return "bad_response", str(exc), "errors"
    return "bad_response", f"unreadable status ({type(exc).__name__})", "errors"


class FailureReport:
    """One collection's changes in sync failures, logged as one line per source and reason.

    A wrong token on a source of a thousand syncs is one warning with `syncs=1000`, not a
    thousand lines; each sync's own line is at debug level.
    """

    def __init__(self) -> None:
        self._failed: dict[tuple[str, str], list[tuple[str, str]]] = {}
        self._recovered: dict[str, list[str]] = {}

    def failed(self, source: str, sync_id: str, reason: str, detail: str) -> None:
        self._failed.setdefault((source, reason), []).append((sync_id, detail))
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "cannot read sync status",
                extra={
                    "fields": {
                        "source": source,
                        "sync_id": sync_id,
                        "reason": reason,
                        "detail": detail,
                    }
                },
            )

    def recovered(self, source: str, sync_id: str) -> None:
        self._recovered.setdefault(source, []).append(sync_id)

    def log(self) -> None:
        for (source, reason), syncs in self._failed.items():
            first, detail = syncs[0]
            fields: dict[str, object] = {
                "source": source,
                "reason": reason,
                "syncs": len(syncs),
                "detail": detail,
            }
            if len(syncs) == 1:
                fields["sync_id"] = first
            else:
                fields["example"] = first
            log.warning("cannot read sync status", extra={"fields": fields})
        for source, ids in self._recovered.items():
            recovered: dict[str, object] = {"source": source, "syncs": len(ids)}
            if len(ids) == 1:
                recovered["sync_id"] = ids[0]
            log.info("sync status readable again", extra={"fields": recovered})
