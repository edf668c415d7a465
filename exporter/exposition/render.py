"""Write the per-sync families in the Prometheus text format directly.

prometheus_client's generate_latest costs about 9 µs a sample here; with label strings
pre-encoded per target this writer produces the same bytes (tests/test_render.py checks
byte for byte against prometheus_client) at a fraction of the cost. A family's own labels
follow the target's identity labels (`name{` + target.labels + `,state="idle"} 1.0`). Syncs
are written in batches as their statuses arrive, into one compressed stream per family
(exporter/exposition/deflate.py), so rendering overlaps the wait for providers and the
exposition is never held uncompressed (docs/performance.md).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client.utils import floatToGoString

from exporter.exposition import metrics
from exporter.exposition.deflate import Deflated, Deflater, deflated, gunzip, gzip_join
from exporter.exposition.families import EVERY_FAMILY, Selection
from exporter.exposition.targets import Target, escape_label_value
from exporter.model import STATES, SyncStatus
from exporter.providers import PROVIDER_FAMILIES
from exporter.providers.base import Adapter

# About 31 years: longer than any sync's schedule, short of overflowing to +Inf.
MAX_BUDGET = 1e9


@dataclass(frozen=True, slots=True)
class StalePolicy:
    """How a sync's staleness budget is derived when the config does not set one."""

    default: float
    intervals: float
    slack: float

    def threshold(self, target: Target, status: SyncStatus) -> float | None:
        """Configured budget, else a few sync intervals plus slack, else the default.

        A sync that runs only on demand has no budget unless one is configured.
        """
        if target.stale_after is not None:
            return target.stale_after
        if status.on_demand:
            return None
        if status.interval_seconds is not None:
            # A provider may claim any interval; a budget must stay a finite number.
            return min(status.interval_seconds * self.intervals + self.slack, MAX_BUDGET)
        return self.default


def format_value(value: float) -> str:
    """Format a sample value exactly as prometheus_client does, quickly for the common case."""
    if -math.inf < value < 1e6:
        return repr(float(value))
    text: str = floatToGoString(value)  # type: ignore[no-untyped-call]
    return text


def header(family: metrics.Family, openmetrics: bool = False) -> bytes:
    """A family's metadata lines, in the text format or in OpenMetrics (which also escapes `"`
    in help text and declares the unit)."""
    help_text = family.help.replace("\\", r"\\").replace("\n", r"\n")
    if not openmetrics:
        return f"# HELP {family.name} {help_text}\n# TYPE {family.name} {family.type}\n".encode()
    help_text = help_text.replace('"', r"\"")
    unit = f"# UNIT {family.name} {family.unit}\n" if family.unit else ""
    return f"# HELP {family.name} {help_text}\n# TYPE {family.name} {family.type}\n{unit}".encode()


_HEADER_PIECES: dict[bytes, Deflated] = {}


def _header_piece(family: metrics.Family, openmetrics: bool) -> Deflated:
    """A family's metadata, compressed once for the exporter's life (families are fixed)."""
    text = header(family, openmetrics)
    piece = _HEADER_PIECES.get(text)
    if piece is None:
        piece = _HEADER_PIECES[text] = deflated(text)
    return piece


_CORE = len(metrics.SYNC_FAMILIES)
_POSITION = {family.name: index for index, family in enumerate(metrics.SYNC_FAMILIES)}
_UP = _POSITION[metrics.SYNC_UP.name]
_STATE = _POSITION[metrics.SYNC_STATE.name]
_PROVIDER_STATUS = _POSITION[metrics.SYNC_PROVIDER_STATUS.name]
_INFO = _POSITION[metrics.SYNC_INFO.name]
_ERROR_INFO = _POSITION[metrics.SYNC_ERROR_INFO.name]
_VALUES = tuple((_POSITION[f.name], f.name, f.field) for f in metrics.VALUE_FAMILIES)
_READ = _POSITION[metrics.SYNC_READ_TIMESTAMP.name]
_AGE = _POSITION[metrics.SYNC_LAST_SYNCED_AGE.name]
_STALE = _POSITION[metrics.SYNC_STALE_THRESHOLD.name]
# Per state a sync may be in, every state line's text after `sync_state{` and the target's
# labels: a sync's lines are then one `head + head.join(tails)`.
_STATE_TAILS = {
    now_in: tuple(
        f',state="{state.value}"}} {"1.0" if state is now_in else "0.0"}\n' for state in STATES
    )
    for now_in in STATES
}

Result = tuple[Target, SyncStatus | None]


AdapterLike = type[Adapter[Any]] | Adapter[Any]


def provider_families(adapters: Iterable[AdapterLike]) -> list[metrics.Family]:
    """The families of these adapters, in the one order every exposition uses."""
    names = {family.name for adapter in adapters for family in adapter.families}
    return [family for family in PROVIDER_FAMILIES if family.name in names]


class Renderer:
    """The per-sync families of one collection, written a batch of syncs at a time.

    Statuses are written as they arrive, so rendering overlaps the wait for providers, but
    in batches, family by family: writing each sync on its own, between network events,
    took ~65% more render time (docs/performance.md). Within a family, series come in the
    order `add` was called; `seconds` is the time spent writing, for the render-duration
    self-metric. The core families come first, then the families of the providers whose
    adapters are given; families `selection` drops are neither written nor headed.
    """

    __slots__ = (
        "_buffers",
        "_every",
        "_families",
        "_keep",
        "_pending",
        "_stale",
        "seconds",
    )

    BATCH = 256

    def __init__(
        self,
        stale: StalePolicy,
        adapters: Iterable[AdapterLike] = (),
        selection: Selection = EVERY_FAMILY,
    ) -> None:
        self._stale = stale
        families = provider_families(adapters)
        self._families = [family for family in families if selection.keeps(family.name)]
        every = (*metrics.SYNC_FAMILIES, *self._families)
        self._every = every
        self._keep = [selection.keeps(family.name) for family in every]
        self._buffers = [Deflater() for _ in every]
        self._pending: list[tuple[Target, SyncStatus | None, float, float]] = []
        self.seconds = 0.0

    def add(
        self, target: Target, status: SyncStatus | None, now: float, read_at: float | None = None
    ) -> None:
        """Queue one sync's series; `status` None means it could not be read (sync_up 0).

        `now` is the collection's time, for sync_last_synced_age_seconds; `read_at` when the
        status was read (now, unless an earlier reading is served).
        """
        self._pending.append((target, status, now, now if read_at is None else read_at))
        if len(self._pending) >= self.BATCH:
            self._flush()

    def pieces(self, openmetrics: bool = False) -> list[Deflated]:
        """The exposition of every selected family in order, compressed, to join into gzip.

        OpenMetrics differs from the text format only in the families' metadata here: every
        per-sync family is a gauge, whose sample lines the two formats write alike.
        """
        self._flush()
        pieces: list[Deflated] = []
        for family, buffer, keep in zip(self._every, self._buffers, self._keep, strict=True):
            if keep:
                pieces.append(_header_piece(family, openmetrics))
                pieces.append(buffer.finish())
        return pieces

    def _flush(self) -> None:
        started = time.perf_counter()
        batch, self._pending = self._pending, []
        buffers = self._buffers
        keep = self._keep
        read = [(target, status, now) for target, status, now, _ in batch if status is not None]

        if keep[_UP]:
            out = [
                f"sync_up{{{t.labels}}} {'0.0' if s is None else '1.0'}\n" for t, s, _, _ in batch
            ]
            buffers[_UP] += "".join(out).encode()

        if keep[_STATE]:
            out = []
            append = out.append
            tails = _STATE_TAILS
            for target, status, _ in read:
                head = f"sync_state{{{target.labels}"
                append(head + head.join(tails[status.state]))
            buffers[_STATE] += "".join(out).encode()

        if keep[_PROVIDER_STATUS]:
            name = metrics.SYNC_PROVIDER_STATUS.name
            out = []
            append = out.append
            for target, status, _ in read:
                value = escape_label_value(status.provider_status)
                append(f'{name}{{{target.labels},status="{value}"}} 1.0\n')
            buffers[_PROVIDER_STATUS] += "".join(out).encode()

        if keep[_INFO]:
            out = []
            append = out.append
            keys: tuple[str, ...] | None = None
            template = ""
            for target, status, _ in read:
                if target.info_labels is not keys:  # one tuple per source: a template each
                    keys = target.info_labels
                    template = _info_template(target.info_labels)
                described = status.info
                values = [escape_label_value(described.get(key, "")) for key in target.info_labels]
                append(template % (target.labels, *values))
            buffers[_INFO] += "".join(out).encode()

        if keep[_ERROR_INFO]:
            out = []
            append = out.append
            name = metrics.SYNC_ERROR_INFO.name
            for target, status, _ in read:
                if status.error_reason is not None:
                    reason = escape_label_value(status.error_reason)
                    append(f'{name}{{{target.labels},reason="{reason}"}} 1.0\n')
            buffers[_ERROR_INFO] += "".join(out).encode()

        for position, name, field in _VALUES:
            if not keep[position]:
                continue
            out = []
            append = out.append
            for target, status, _ in read:
                value = getattr(status, field)
                if value is not None:
                    append(f"{name}{{{target.labels}}} {format_value(value)}\n")
            buffers[position] += "".join(out).encode()

        if keep[_READ]:
            name = metrics.SYNC_READ_TIMESTAMP.name
            out = []
            append = out.append
            last_at, text = None, ""
            for target, answer, _, at in batch:
                if answer is not None:
                    if at != last_at:  # a collection's reads share one time: format it once
                        last_at, text = at, format_value(at)
                    append(f"{name}{{{target.labels}}} {text}\n")
            buffers[_READ] += "".join(out).encode()

        if keep[_AGE]:
            out = []
            append = out.append
            name = metrics.SYNC_LAST_SYNCED_AGE.name
            for target, status, now in read:
                if status.last_synced_timestamp is not None:
                    age = max(now - status.last_synced_timestamp, 0.0)
                    append(f"{name}{{{target.labels}}} {format_value(age)}\n")
            buffers[_AGE] += "".join(out).encode()

        if keep[_STALE]:
            out = []
            append = out.append
            name = metrics.SYNC_STALE_THRESHOLD.name
            threshold = self._stale.threshold
            for target, status, _ in read:
                if status.last_synced_timestamp is not None:
                    budget = threshold(target, status)
                    if budget is not None:
                        append(f"{name}{{{target.labels}}} {format_value(budget)}\n")
            buffers[_STALE] += "".join(out).encode()

        for offset, family in enumerate(self._families, start=_CORE):
            buffers[offset] += _provider_family(family, read).encode()
        self.seconds += time.perf_counter() - started


def _info_template(keys: Sequence[str]) -> str:
    """The sync_info line of a source's info labels, a `%s` for the target's labels and for
    each value (which are arguments, so a `%` in them is written as it is)."""
    labels = "".join(f',{key.replace("%", "%%")}="%s"' for key in keys)
    return f"{metrics.SYNC_INFO.name}{{%s{labels}}} 1.0\n"


def _provider_family(
    family: metrics.Family, read: Sequence[tuple[Target, SyncStatus, float]]
) -> str:
    """One adapter-declared family's samples for a batch: numbers, or a state set."""
    name = family.name
    key = family.field
    out: list[str] = []
    append = out.append
    if family.states:
        (label,) = family.labels
        lines = []
        for state in family.states:
            text = escape_label_value(state)
            lines.append((state, f',{label}="{text}"}} 1.0\n', f',{label}="{text}"}} 0.0\n'))
        for target, status, _ in read:
            seen = status.sets.get(key)
            if seen is None:
                continue
            head = f"{name}{{{target.labels}"
            for state, on, off in lines:
                append(head + (on if state == seen else off))
            if seen not in family.states:
                append(f'{head},{label}="{escape_label_value(seen)}"}} 1.0\n')
        return "".join(out)
    for target, status, _ in read:
        number = status.values.get(key)
        if number is not None:
            append(f"{name}{{{target.labels}}} {format_value(number)}\n")
    return "".join(out)


def render_syncs(
    results: Sequence[Result],
    now: float,
    stale: StalePolicy,
    adapters: Iterable[AdapterLike] = (),
    selection: Selection = EVERY_FAMILY,
    openmetrics: bool = False,
) -> str:
    """The selected per-sync families, family by family, core first, then the adapters' own
    (in OpenMetrics without its closing `# EOF`, which comes after the exporter's own)."""
    renderer = Renderer(stale, adapters, selection)
    for target, status in results:
        renderer.add(target, status, now)
    return gunzip(gzip_join(renderer.pieces(openmetrics))).decode("utf-8")
