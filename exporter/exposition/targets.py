"""Syncs to read, with everything that does not change between scrapes encoded once.

A `Found` is a sync as configuration or a listing names it; a `Target` is that sync ready for
scrapes: its label set and per-family label templates pre-encoded for the exposition, so the
scrape path only fetches and formats numbers.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from exporter.exposition.metrics import SYNC_FAMILIES, SYNC_INFO, Family
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

    `memory` is the adapter's cache for this sync (e.g. the last job seen), kept as long as
    the sync stays a target, also across listings.
    """

    source: str
    sync_id: str
    labels: str
    templates: dict[str, tuple[str, ...]]
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


def _pieces(family: str, labels: Mapping[str, str], slots: Sequence[str]) -> tuple[str, ...]:
    """A family's sample line up to its value, as the literal pieces between its slots.

    The label set is sorted with the slots among it; a sample is the pieces with each slot's
    escaped value between them, in sorted slot order: one concatenation per sample instead
    of a template parsed on every scrape.
    """
    pieces: list[str] = []
    current = f"{family}{{"
    for index, name in enumerate(sorted({*labels, *slots})):
        comma = "," if index else ""
        if name in slots:
            pieces.append(f'{current}{comma}{name}="')
            current = '"'
        else:
            current = f'{current}{comma}{name}="{escape_label_value(labels[name])}"'
    pieces.append(current + "} ")
    return tuple(pieces)


def label_string(labels: Mapping[str, str]) -> str:
    """A label set as written between braces in the exposition, names sorted."""
    return ",".join(f'{name}="{escape_label_value(labels[name])}"' for name in sorted(labels))


@dataclass(frozen=True, slots=True)
class TargetMaker:
    """Turns what a source found into targets: its static labels, info labels and families."""

    source: str
    provider: str
    labels: Mapping[str, str]
    stale_after: float | None
    info_labels: tuple[str, ...]
    families: tuple[Family, ...]

    def __call__(self, found: Found, previous: Target | None = None) -> Target:
        """The target for `found`, keeping the memory and last reading of the one it replaces."""
        labels = {
            **self.labels,
            **found.labels,
            "source": self.source,
            "provider": self.provider,
            "sync_id": found.sync_id,
        }
        info = tuple(sorted({*CORE_INFO_LABELS, *self.info_labels}))
        templates = {f.name: _pieces(f.name, labels, f.labels) for f in SYNC_FAMILIES if f.labels}
        templates[SYNC_INFO.name] = _pieces(SYNC_INFO.name, labels, info)
        for family in self.families:
            if family.labels:
                templates[family.name] = _pieces(family.name, labels, family.labels)
        return Target(
            source=self.source,
            sync_id=found.sync_id,
            labels=label_string(labels),
            templates=templates,
            info_labels=info,
            stale_after=found.stale_after or self.stale_after,
            context=found.context,
            memory={} if previous is None else previous.memory,
            reading=None if previous is None else previous.reading,
            failure=None if previous is None else previous.failure,
            event_at=None if previous is None else previous.event_at,
        )
