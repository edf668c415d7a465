"""What the fakes behind the generic provider share: a catalogue of syncs whose bodies are pure
functions of the clock, syncs tests add, cursor pages, and Basic auth.

The fakes of the preset services (and the made-up API of `providers/generic.py`), Sequin's and
Paragon's differ only in routes and bodies, so they share this; Terminal's keeps its own
bookkeeping (connections and their job logs).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from exporter.simulator.clock import Moment
from exporter.simulator.state import JSON, ControlError, ProviderState


class Entry(Protocol):
    """A catalogue sync: its id, the labels the exporter config gives it, its body at a moment."""

    @property
    def id(self) -> str:
        """The sync's id."""
        ...

    @property
    def labels(self) -> Mapping[str, str]:
        """Labels the demo config gives the sync."""
        ...

    def render(self, m: Moment) -> JSON:
        """The sync's body at `m`."""
        ...


@dataclass(frozen=True, slots=True)
class AdHoc:
    """A sync a test created: it answers exactly `body`; `extra` holds the provider's own
    fields of the control request (a Merge account token, an Airbyte connection's name)."""

    id: str
    body: JSON
    extra: Mapping[str, Any] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)

    def render(self, m: Moment) -> JSON:
        """A shallow copy of the stored body."""
        return dict(self.body)


class Catalog(ProviderState):
    """A provider's syncs by id, in catalogue order, ad-hoc ones last.

    `extras` are the control-request fields an ad-hoc sync of this provider may carry.
    """

    extras: frozenset[str] = frozenset()

    def __init__(self, entries: Iterable[Entry]) -> None:
        super().__init__()
        self._catalog: dict[str, Entry] = {}
        for entry in entries:
            if entry.id in self._catalog:
                raise ValueError(f"duplicate sync id {entry.id!r}")
            self._catalog[entry.id] = entry
        self._syncs: dict[str, Entry] = dict(self._catalog)

    def entry(self, sync_id: str) -> Entry | None:
        """The catalogue or ad-hoc sync `sync_id`, if any."""
        return self._syncs.get(sync_id)

    def ids(self, m: Moment) -> list[str]:
        """Every sync id."""
        return list(self._syncs)

    def has(self, sync_id: str, m: Moment) -> bool:
        """Whether the sync exists."""
        return sync_id in self._syncs

    def render(self, sync_id: str, m: Moment, *, expand: bool = False) -> JSON | None:
        """The sync's body at `m`, before overrides."""
        entry = self._syncs.get(sync_id)
        return None if entry is None else entry.render(m)

    def labels(self, sync_id: str) -> Mapping[str, str]:
        """Labels the catalogue gives the sync."""
        entry = self._syncs.get(sync_id)
        return {} if entry is None else entry.labels

    def ad_hoc(self, sync_id: str, body: JSON, m: Moment, extra: Mapping[str, Any]) -> Entry:
        """The entry of a sync a test creates, answering exactly `body` (a provider whose
        syncs carry more, such as Paragon's owner, makes its own)."""
        unknown = sorted(set(extra) - self.extras)
        if unknown:
            raise ControlError(400, f"unknown fields: {', '.join(unknown)}")
        return AdHoc(sync_id, dict(body), dict(extra))

    def add_static(self, sync_id: str, body: JSON, m: Moment, extra: Mapping[str, Any]) -> bool:
        """An ad-hoc sync answering exactly `body`."""
        entry = self.ad_hoc(sync_id, body, m, extra)
        created = sync_id not in self._syncs
        self._syncs[sync_id] = entry
        self.drop_override(sync_id)
        return created

    def remove_static(self, sync_id: str, m: Moment) -> bool:
        """Forget an ad-hoc sync; the catalogue sync of the same id, if any, answers again."""
        entry = self._syncs.get(sync_id)
        if entry is None or entry is self._catalog.get(sync_id):
            return False
        if sync_id in self._catalog:
            self._syncs[sync_id] = self._catalog[sync_id]
        else:
            del self._syncs[sync_id]
        self.drop_override(sync_id)
        return True

    def _forget(self) -> None:
        self._syncs = dict(self._catalog)


class RunLog(Catalog):
    """A catalogue whose syncs each keep a log of runs, newest first: a catalogue sync's from
    its `runs(m)`, an ad-hoc sync's given with it (`runs` in the control request)."""

    extras = frozenset({"runs"})

    def runs(self, sync_id: str, m: Moment) -> list[JSON]:
        """The sync's runs, newest first (none for an unknown sync)."""
        entry = self.entry(sync_id)
        if isinstance(entry, AdHoc):
            return list(entry.extra.get("runs", []))
        runs = getattr(entry, "runs", None)
        return [] if runs is None else list(runs(m))


def stretch(m: Moment, shares: Sequence[float], phase: float = 0.0) -> tuple[int, int, float]:
    """Where a lifecycle of stretches (shares of one period, summing to 1) is at `m`: the cycle's
    index, the stretch's index, and the wall-clock time that stretch began."""
    k, f = m.cycle(phase=phase)
    begun = 0.0
    for index, share in enumerate(shares):
        if f < begun + share or index == len(shares) - 1:
            return k, index, m.at(k + begun, phase=phase)
        begun += share
    raise AssertionError("unreachable")


def cursor_page(
    items: Sequence[Any], cursor: str | None, limit: int
) -> tuple[Sequence[Any], str | None]:
    """One page of `items` after an opaque cursor, and the next page's cursor (None at the end).

    A cursor that does not decode is a 400, as a real API refuses a made-up one.
    """
    start = 0
    if cursor:
        try:
            start = int(base64.urlsafe_b64decode(cursor.encode()).decode())
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise web.HTTPBadRequest(text="invalid cursor") from None
    end = start + max(limit, 1)
    following = None
    if end < len(items):
        following = base64.urlsafe_b64encode(str(end).encode()).decode()
    return items[start:end], following


def basic(request: web.Request) -> tuple[str, str] | None:
    """The user name and password of a Basic Authorization header, or None."""
    value = request.headers.get("Authorization", "")
    if value[:6].lower() != "basic ":
        return None
    try:
        user, sep, password = (
            base64.b64decode(value[6:].strip(), validate=True).decode().partition(":")
        )
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def limit_of(request: web.Request, name: str, default: int, most: int) -> int:
    """The page-size query parameter `name` within 1..`most`, `default` when absent; else 400."""
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= most:
        raise web.HTTPBadRequest(text=f"{name} must be 1 to {most}")
    return int(raw)
