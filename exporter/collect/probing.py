"""What a `/probe` adds to the probed syncs' series: which of them it served, and
blackbox_exporter's `probe_success` and `probe_duration_seconds`."""

from __future__ import annotations

from typing import Any

from exporter.exposition.families import Selection
from exporter.exposition.metrics import Family
from exporter.exposition.render import Renderer, StalePolicy, format_value, header
from exporter.exposition.targets import Target
from exporter.model import SyncStatus


class ProbeRenderer(Renderer):
    """A renderer that also remembers, per sync, whether this probe served it a status."""

    __slots__ = ("outcomes",)

    def __init__(self, stale: StalePolicy, adapters: Any, selection: Selection) -> None:
        super().__init__(stale, adapters, selection)
        self.outcomes: dict[str, bool] = {}

    def add(
        self, target: Target, status: SyncStatus | None, now: float, read_at: float | None = None
    ) -> None:
        """Queue the sync's series and note whether it was read."""
        self.outcomes[target.sync_id] = status is not None
        super().add(target, status, now, read_at)


PROBE_SUCCESS = Family("probe_success", "1 if every requested sync of the source was read, else 0.")
PROBE_DURATION = Family(
    "probe_duration_seconds", "Seconds the probe took to read the syncs and write them."
)


def probe_families(success: bool, duration: float, openmetrics: bool = False) -> bytes:
    """blackbox_exporter's two probe families, after the probed syncs' own (and in
    OpenMetrics the closing `# EOF`)."""
    return b"".join(
        [
            header(PROBE_SUCCESS, openmetrics),
            f"probe_success {format_value(1.0 if success else 0.0)}\n".encode(),
            header(PROBE_DURATION, openmetrics),
            f"probe_duration_seconds {format_value(duration)}\n".encode(),
            b"# EOF\n" if openmetrics else b"",
        ]
    )
