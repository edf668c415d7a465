"""Clock readings and the timestamp formats the three providers use."""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime

MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": MINUTE, "h": HOUR, "d": DAY, "w": 7 * DAY, "y": 365 * DAY}


def duration(text: str) -> float | None:
    """Seconds from `30s`, `2m` or `1h30m` (the simulator's own flags); None when it is not one,
    so the simulator needs none of the exporter's parsing."""
    spec = text.strip().lower()
    total, position = 0.0, 0
    for match in _PART.finditer(spec):
        if match.start() != position:
            return None
        total += float(match.group(1)) * _UNIT[match.group(2)]
        position = match.end()
    return total if spec and position == len(spec) else None


@dataclass(frozen=True, slots=True)
class Moment:
    """A clock reading tied to the world's start, so every lifecycle is a pure function of it."""

    started_at: float
    now: float
    period: float

    @property
    def elapsed(self) -> float:
        """Seconds since the world started (never negative)."""
        return max(0.0, self.now - self.started_at)

    def cycle(self, length: float = 1.0, phase: float = 0.0) -> tuple[int, float]:
        """Index of the current cycle and the fraction of it done, for cycles of `length` periods.

        `phase` (0..1) shifts the cycle so that at the world's start it is already that far along.
        """
        position = self.elapsed / (self.period * length) + phase
        index = math.floor(position)
        return index, position - index

    def at(self, cycle_position: float, length: float = 1.0, phase: float = 0.0) -> float:
        """Wall-clock time of a position (cycle index plus fraction) on the cycle of `cycle()`."""
        return self.started_at + (cycle_position - phase) * length * self.period


def iso_millis(ts: float) -> str:
    """ISO 8601 with milliseconds and `Z`, as Terminal and Paragon write it."""
    millis = int(ts * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{millis:03d}Z"


def parse_iso(text: str) -> float | None:
    """Seconds since the epoch of an ISO 8601 timestamp (`Z` or an offset), or None."""
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def iso_micros_offset(ts: float) -> str:
    """ISO 8601 with microseconds and a `+00:00` offset, a form clients must also accept."""
    micros = int(ts * 1_000_000) % 1_000_000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{micros:06d}+00:00"


def iso_seconds(ts: float) -> str:
    """ISO 8601 without fractional seconds, as older Paragon documents show it."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def sequin_time(ts: float) -> str:
    """Sequin's UTC timestamps: a space instead of `T` and no zone."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))
