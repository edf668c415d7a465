"""Lenient readers for provider JSON values: a field of the wrong type is absent, never a crash."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from math import isfinite
from typing import Any

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
    "y": 31536000.0,
}
_SPOKEN = re.compile(
    r"(?:every )?(?:(\d+(?:\.\d+)?|an?|one|half(?: an?)?|(?:a )?quarter(?: of an?)?) ?)?"
    r"(second|sec|minute|min|hour|hr|day|week)s?"
)
_SPOKEN_AMOUNT = {"a": 1.0, "an": 1.0, "one": 1.0, "half": 0.5, "quarter": 0.25}
_SPOKEN_UNIT = {"sec": "s", "min": "m", "hr": "h"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
MAX_LABEL_LENGTH = 200


def number(value: Any) -> float | None:
    """A finite JSON number as float; booleans, strings and NaN are treated as absent."""
    kind = type(value)
    if kind is float:  # what JSON decodes to, checked without the isinstance chain
        return value if isfinite(value) else None
    if kind is int:
        return float(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    result = float(value)
    return result if math.isfinite(result) else None


def text(value: Any) -> str:
    """A JSON string, or '' for anything else (labels want strings)."""
    return value if isinstance(value, str) else ""


def timestamp(value: Any) -> float | None:
    """Unix seconds from an ISO-8601 string with any offset or none (read as UTC).

    Sequin writes `2023-12-15 01:29:29` with no `T` and no zone; Paragon and Terminal
    write `2023-11-07T05:31:56Z` or with fractions and offsets.
    """
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def duration(value: Any) -> float | None:
    """Seconds from a duration such as `5m`, `1h30m` or `500ms`; None when it is not one."""
    if not isinstance(value, str):
        return None
    return _duration(value) if len(value) <= 64 else _parse_duration(value)


@functools.lru_cache(maxsize=1024)
def _duration(value: str) -> float | None:
    """Providers repeat a few frequencies on every sync: parse each once."""
    return _parse_duration(value)


def _parse_duration(value: str) -> float | None:
    spec = value.strip().lower()
    if not spec:
        return None
    position = 0
    total = 0.0
    for match in _DURATION_PART.finditer(spec):
        if match.start() != position:
            return None
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    return total if position == len(spec) else None


def spoken_duration(value: Any) -> float | None:
    """Seconds from a frequency written out (`every 30 minutes`, `every hour`, `every half
    hour`, as Nango reports it) or from a duration such as `every 5m`; None otherwise."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    return _spoken(value)


@functools.lru_cache(maxsize=1024)
def _spoken(value: str) -> float | None:
    """Read on every scrape for every sync, from a few distinct texts: parse each once."""
    spec = " ".join(value.lower().split())
    seconds = duration(spec.removeprefix("every "))
    if seconds is not None:
        return seconds
    match = _SPOKEN.fullmatch(spec)
    if match is None:
        return None
    amount, unit = match.groups()
    if amount is None:
        factor = 1.0
    elif amount[0].isdigit():
        factor = float(amount)
    else:
        words = amount.split()
        factor = _SPOKEN_AMOUNT[words[1] if len(words) > 1 and words[0] == "a" else words[0]]
    return factor * _UNIT_SECONDS[_SPOKEN_UNIT.get(unit, unit[0])]


def label_text(value: Any) -> str:
    """Free text fit for a label value: control characters replaced, cut to 200 characters."""
    if isinstance(value, str) and len(value) <= MAX_LABEL_LENGTH and value.isprintable():
        return value  # the common case, without a regular expression
    return _CONTROL.sub(" ", text(value))[:MAX_LABEL_LENGTH]


def label_texts(mapping: Mapping[str, Any]) -> dict[str, str]:
    """`label_text` of every value, checked in one pass (in C) when all are short printable
    strings, as nearly all are; a plain dict that passes is returned as it is, not copied."""
    try:
        joined = "".join(mapping.values())
    except TypeError:
        pass
    else:
        if joined.isprintable() and (
            len(joined) <= MAX_LABEL_LENGTH or max(map(len, mapping.values())) <= MAX_LABEL_LENGTH
        ):
            return mapping if type(mapping) is dict else dict(mapping)
    return {key: label_text(value) for key, value in mapping.items()}


def format_number(value: float) -> str:
    """A JSON number as label text: integers without a decimal point, others as Python prints."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def finite(value: float | None) -> float | None:
    """The value if it is a finite number, else None (NaN and infinities are never exported)."""
    if type(value) is float:
        return value if isfinite(value) else None
    if value is None or not math.isfinite(value):
        return None
    return float(value)
