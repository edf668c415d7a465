"""JSON bodies of lists, where one bad item must cost that item and not the whole list.

orjson refuses a whole document for one string holding a lone surrogate escape (`"\\ud800"`,
which no UTF-8 text can carry). Such a list is read again by the standard library, which
takes the escape, and every list element holding such a string is dropped and counted.
Anything else orjson refused (NaN, 1e400, truncation, invalid UTF-8) stays refused.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("a number too large for a double")
    return value


def _clean(value: Any) -> tuple[Any, bool, int]:
    """The value with bad list elements dropped, whether it is bad itself, and how many went."""
    if isinstance(value, str):
        return value, _SURROGATE.search(value) is not None, 0
    if isinstance(value, dict):
        dropped = 0
        for key, item in value.items():
            if _SURROGATE.search(key) is not None:
                return value, True, dropped
            value[key], bad, count = _clean(item)
            dropped += count
            if bad:
                return value, True, dropped
        return value, False, dropped
    if isinstance(value, list):
        kept, dropped = [], 0
        for item in value:
            cleaned, bad, count = _clean(item)
            if bad:
                dropped += 1
            else:
                kept.append(cleaned)
                dropped += count
        return kept, False, dropped
    return value, False, 0


def without_bad_items(content: bytes) -> tuple[Any, int]:
    """The list body with every element holding a lone surrogate dropped, and how many were.

    ValueError when the body is not JSON, or the bad string is outside every list.
    """
    try:
        document = json.loads(
            content.decode("utf-8"), parse_constant=_no_constant, parse_float=_finite
        )
        cleaned, bad, dropped = _clean(document)
    except (UnicodeDecodeError, RecursionError) as exc:
        raise ValueError(type(exc).__name__) from None
    if bad:
        raise ValueError("a string no UTF-8 can carry, outside any list")
    return cleaned, dropped
