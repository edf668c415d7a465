"""Syncs to read, with everything that does not change between scrapes encoded once.

A `Found` is a sync as configuration or a listing names it; a `Target` is that sync ready for
scrapes: its identity label set pre-encoded once for the exposition, so the scrape path only
fetches and formats numbers. A family's own labels (`state`, `status`, `reason`, the info
labels) come after that set, in sorted order, as kube-state-metrics writes them: every series
of a sync shares the one label string, not a copy per family (docs/performance.md).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from exporter.model import CORE_INFO_LABELS, SyncStatus


def escape_label_value(value: str) -> str:
    """Escape a label value for the text exposition format (most values need nothing)."""
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


@dataclass(frozen=True, slots=True)
class Found:
    """A sync named by the config or found in a listing, before it becomes a target.

    `labels` are identity labels from the adapter (`user`) and the config (a sync's labels);
    `context` is the adapter's own data about the sync (its user, its connection, what the
    listing said); `shard_key` is what sharding hashes (the sync id unless the adapter groups
    syncs, e.g. per user, so that a replica lists only its own users).
    """

    sync_id: str
    context: Any = None
    labels: Mapping[str, str] = field(default_factory=dict)
    stale_after: float | None = None
    shard_key: str = ""


@dataclass(frozen=True, slots=True)
class Reading:
    """A sync's last successful read: its status and the Unix time of the collection that read it.

    A reading younger than a source's `min_interval` is served again instead of read, and
    the least recently read syncs go first when a request budget cannot cover them all.
    """

    status: SyncStatus
    at: float


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a sync was not read the last time it should have been, and when."""

    reason: str
    detail: str
    at: float


@dataclass(slots=True)
class Target:
    """One sync to read: its label set, pre-encoded, and the adapter's data about it.

    `labels` is the identity label set, names sorted, as written between braces; `info_labels`
    the sync_info labels written after it, sorted, one tuple shared by a source's targets.
    `memory` is the adapter's cache for this sync (e.g. the last job seen), kept as long as
    the sync stays a target, also across listings.
    """

    source: str
    sync_id: str
    labels: str
    info_labels: tuple[str, ...]
    stale_after: float | None
    context: Any = None
    memory: dict[str, Any] = field(default_factory=dict)
    reading: Reading | None = None
    failure: Failure | None = None
    # Unix time of the last webhook event about this sync.
    event_at: float | None = None

    def told_stale(self) -> bool:
        """Whether an event came since the last reading: the next scrape must read the sync,
        whatever min_interval says."""
        if self.event_at is None:
            return False
        return self.reading is None or self.event_at >= self.reading.at


@dataclass(frozen=True, slots=True)
class Shard:
    """This replica's share of the syncs: a stable hash, the same in every replica and run."""

    index: int = 0
    total: int = 1

    def owns(self, source: str, key: str) -> bool:
        """Whether this replica reads the syncs hashed by `key` in `source`."""
        if self.total == 1:
            return True
        return zlib.crc32(f"{source}\0{key}".encode()) % self.total == self.index


def label_string(labels: Mapping[str, str]) -> str:
    """A label set as written between braces in the exposition, names sorted."""
    return ",".join(f'{name}="{escape_label_value(labels[name])}"' for name in sorted(labels))


@dataclass(frozen=True, slots=True)
class TargetMaker:
    """Turns what a source found into targets: its static labels and info labels.

    The sync_info labels are the same for every target of a source: sorted once here and
    shared, not a tuple per target.
    """

    source: str
    provider: str
    labels: Mapping[str, str]
    stale_after: float | None
    info_labels: tuple[str, ...]
    info: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        info = tuple(sorted({*CORE_INFO_LABELS, *self.info_labels}))
        object.__setattr__(self, "info", info)

    def __call__(self, found: Found, previous: Target | None = None) -> Target:
        """The target for `found`, keeping the memory and last reading of the one it replaces."""
        labels = {
            **self.labels,
            **found.labels,
            "source": self.source,
            "provider": self.provider,
            "sync_id": found.sync_id,
        }
        return Target(
            source=self.source,
            sync_id=found.sync_id,
            labels=label_string(labels),
            info_labels=self.info,
            stale_after=found.stale_after or self.stale_after,
            context=found.context,
            memory={} if previous is None else previous.memory,
            reading=None if previous is None else previous.reading,
            failure=None if previous is None else previous.failure,
            event_at=None if previous is None else previous.event_at,
        )
