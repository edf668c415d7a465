"""Injected faults: how a provider, or one of its syncs, misbehaves when tests ask it to."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

WRONG_SHAPES = ("list", "missing_status", "null")
_KEYS = frozenset(
    {"status", "retry_after", "retry_after_header", "malformed", "delay", "wrong_shape", "times"}
)


@dataclass(frozen=True, slots=True)
class Fault:
    """How to misbehave when a sync (or a whole provider) is requested.

    `status` answers with that HTTP status and the provider's error body, before auth is
    checked (`retry_after` becomes the Retry-After header, and Terminal's `retryAfter` in the
    body; `retry_after_header` false leaves the header out, as Terminal may); `malformed`
    answers 200 with a truncated, unparseable body; `wrong_shape` answers 200 with valid JSON
    of the wrong shape; `delay` sleeps first.
    `times` limits the fault to that many requests; None keeps it until it is deleted.
    """

    status: int | None = None
    retry_after: str | None = None
    malformed: bool = False
    delay: float = 0.0
    wrong_shape: str | None = None
    times: int | None = None
    retry_after_header: bool = True

    def to_json(self) -> dict[str, Any]:
        """The fault as the control API shows it (unset fields left out)."""
        shown: dict[str, Any] = {}
        if self.status is not None:
            shown["status"] = self.status
        if self.retry_after is not None:
            shown["retry_after"] = self.retry_after
        if not self.retry_after_header:
            shown["retry_after_header"] = False
        if self.malformed:
            shown["malformed"] = True
        if self.delay:
            shown["delay"] = self.delay
        if self.wrong_shape is not None:
            shown["wrong_shape"] = self.wrong_shape
        if self.times is not None:
            shown["times"] = self.times
        return shown


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_fault(data: object) -> Fault:
    """The fault described by a control request body; ValueError says what is wrong with it."""
    if not isinstance(data, dict):
        raise ValueError("a fault must be a JSON object")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ValueError(f"unknown fault fields: {', '.join(unknown)}")
    status = data.get("status")
    if status is not None and (not isinstance(status, int) or isinstance(status, bool)):
        raise ValueError("status must be an integer")
    if status is not None and not 400 <= status <= 599:
        raise ValueError("status must be an error status (400-599)")
    retry_after = data.get("retry_after")
    if retry_after is not None:
        if _number(retry_after):
            retry_after = str(retry_after)
        if not isinstance(retry_after, str) or not retry_after:
            raise ValueError("retry_after must be a non-empty string (seconds or an HTTP-date)")
    header = data.get("retry_after_header", True)
    if not isinstance(header, bool):
        raise ValueError("retry_after_header must be true or false")
    malformed = data.get("malformed", False)
    if not isinstance(malformed, bool):
        raise ValueError("malformed must be true or false")
    delay = data.get("delay", 0.0)
    if not _number(delay) or delay < 0:
        raise ValueError("delay must be a non-negative number of seconds")
    wrong_shape = data.get("wrong_shape")
    if wrong_shape is True:
        wrong_shape = "list"
    elif wrong_shape is False:
        wrong_shape = None
    if wrong_shape is not None and wrong_shape not in WRONG_SHAPES:
        raise ValueError(f"wrong_shape must be true or one of: {', '.join(WRONG_SHAPES)}")
    times = data.get("times")
    if times is not None and (not isinstance(times, int) or isinstance(times, bool) or times < 1):
        raise ValueError("times must be a positive integer")
    if sum((status is not None, malformed, wrong_shape is not None)) > 1:
        raise ValueError("status, malformed and wrong_shape are mutually exclusive")
    if status is None and not malformed and wrong_shape is None and not delay:
        raise ValueError("a fault needs status, malformed, wrong_shape or delay")
    return Fault(status, retry_after, malformed, float(delay), wrong_shape, times, header)


def misshape(body: Any, shape: str) -> Any:
    """Valid JSON that is not what the client expects."""
    if shape == "list":
        return [body]
    if shape == "missing_status" and isinstance(body, dict):
        return {key: value for key, value in body.items() if key != "status"}
    return None


class FaultBook:
    """Faults by provider and target (a sync id, or what else the provider lets tests aim at,
    such as a Paragon user or a Terminal connection); target None covers the whole provider."""

    def __init__(self, providers: Iterable[str]) -> None:
        self._providers = tuple(providers)
        self._faults: dict[tuple[str, str | None], Fault] = {}
        self._left: dict[tuple[str, str | None], int] = {}

    def set(self, provider: str, target: str | None, fault: Fault) -> None:
        """Install `fault`, replacing any fault at the same place."""
        key = (provider, target)
        self._faults[key] = fault
        self._left.pop(key, None)
        if fault.times is not None:
            self._left[key] = fault.times

    def clear(self, provider: str, target: str | None) -> bool:
        """Remove the fault; False if there was none."""
        self._left.pop((provider, target), None)
        return self._faults.pop((provider, target), None) is not None

    def clear_all(self) -> None:
        """Remove every fault."""
        self._faults.clear()
        self._left.clear()

    def __bool__(self) -> bool:
        return bool(self._faults)

    def take(self, provider: str, *targets: str | None) -> Fault | None:
        """The fault for this request, used up once: the first of `targets` that has one, else
        the provider-wide one."""
        if not self._faults:
            return None
        for target in (*targets, None):
            key = (provider, target)
            fault = self._faults.get(key)
            if fault is None:
                continue
            left = self._left.get(key)
            if left is not None:
                if left <= 1:
                    self.clear(*key)
                else:
                    self._left[key] = left - 1
            return fault
        return None

    def to_json(self) -> dict[str, Any]:
        """Installed faults per provider; `*` is the provider-wide one."""
        shown: dict[str, Any] = {provider: {} for provider in self._providers}
        for (provider, target), fault in self._faults.items():
            entry = fault.to_json()
            if (provider, target) in self._left:
                entry["times"] = self._left[(provider, target)]
            shown.setdefault(provider, {})["*" if target is None else target] = entry
        return shown
