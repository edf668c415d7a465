"""Reading values out of JSON with compiled JMESPath: the generic provider's small toolbox.

JMESPath compares strings as strings, so two times written with different precision or
offsets order wrongly; `to_epoch()` gives mappings a way to compare them as times.
"""

from __future__ import annotations

import math
import re
from typing import Any

import jmespath
from jmespath import functions
from jmespath.exceptions import JMESPathError

from exporter import values

_NUMBER = re.compile(r"^\s*-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class _Functions(functions.Functions):
    """JMESPath's functions and ours."""

    @functions.signature({"types": []})
    def _func_to_epoch(self, value: Any) -> float | None:
        """Unix seconds of an ISO-8601 time (a number stays as it is), else null."""
        if isinstance(value, bool):
            return None
        if isinstance(value, int | float):
            return float(value)
        return values.timestamp(value)


_OPTIONS = jmespath.Options(custom_functions=_Functions())


def search(expression: Any, document: Any) -> Any:
    """What a compiled path finds; nothing (None) when a function meets the wrong type, an
    overflow (`ceil` of 1e308 + 1e308) or a document too deep to walk."""
    try:
        return expression.search(document, options=_OPTIONS)
    except (JMESPathError, TypeError, ValueError, ArithmeticError, RecursionError):
        return None


def truthy(value: Any) -> bool:
    """JMESPath's truth: false, null and empty strings, arrays and objects are false."""
    if value is None or value is False:
        return False
    return not (isinstance(value, str | list | dict) and not value)


def text(value: Any) -> str | None:
    """A string, or a number or boolean written as text; None for anything else."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value) if abs(value) < 2**64 else None
    if isinstance(value, float) and math.isfinite(value):
        return values.format_number(value)
    return None


def number(value: Any) -> float | None:
    """A JSON number, or a string holding one; None for anything else."""
    try:
        if isinstance(value, str) and len(value) <= 64 and _NUMBER.match(value):
            return values.number(float(value))
        return values.number(value)
    except OverflowError:
        return None


def point(value: Any, format: str) -> float | None:
    """Unix seconds from an ISO-8601 string or an epoch number; None when it is neither."""
    if format == "iso":
        return values.timestamp(value)
    found = number(value)
    if found is None:
        return None
    return found / 1000.0 if format == "epoch_ms" else found


def duration(value: Any, unit: str) -> float | None:
    """Seconds from a number of `unit`s, a duration string such as `1h30m`, or one written out
    such as `every 30 minutes`."""
    found = number(value)
    if found is not None:
        return found * _UNIT_SECONDS[unit]
    return values.spoken_duration(value)
