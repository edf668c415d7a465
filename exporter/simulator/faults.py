"""Injected faults and request counts: the simulator state that tests steer and inspect."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from exporter.simulator.syncs import PROVIDERS, Provider

WRONG_SHAPES = ("list", "missing_status", "null")
_KEYS = frozenset({"status", "retry_after", "malformed", "delay", "wrong_shape", "times"})


@dataclass(frozen=True, slots=True)
class Fault:
    """How to misbehave when a sync (or a whole provider) is requested.

    `status` answers with that HTTP status and the provider's error body, before auth is
    checked (`retry_after` becomes the Retry-After header); `malformed` answers 200 with a
    truncated, unparseable body; `wrong_shape` answers 200 with valid JSON of the wrong shape;
    `delay` sleeps first.
    `times` limits the fault to that many requests; None keeps it until it is deleted.
    """

    status: int | None = None
    retry_after: str | None = None
    malformed: bool = False
    delay: float = 0.0
    wrong_shape: str | None = None
    times: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The fault as the control API shows it (unset fields left out)."""
        shown: dict[str, Any] = {}
        if self.status is not None:
            shown["status"] = self.status
        if self.retry_after is not None:
            shown["retry_after"] = self.retry_after
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
    return Fault(status, retry_after, malformed, float(delay), wrong_shape, times)


def misshape(body: Any, shape: str) -> Any:
    """Valid JSON that is not what the client expects."""
    if shape == "list":
        return [body]
    if shape == "missing_status" and isinstance(body, dict):
        return {key: value for key, value in body.items() if key != "status"}
    return None


class FaultBook:
    """Faults by provider and sync id; a fault under sync id None covers the whole provider."""

    def __init__(self) -> None:
        self._faults: dict[tuple[Provider, str | None], Fault] = {}
        self._left: dict[tuple[Provider, str | None], int] = {}

    def set(self, provider: Provider, sync_id: str | None, fault: Fault) -> None:
        """Install `fault`, replacing any fault at the same place."""
        key = (provider, sync_id)
        self._faults[key] = fault
        self._left.pop(key, None)
        if fault.times is not None:
            self._left[key] = fault.times

    def clear(self, provider: Provider, sync_id: str | None) -> bool:
        """Remove the fault; False if there was none."""
        self._left.pop((provider, sync_id), None)
        return self._faults.pop((provider, sync_id), None) is not None

    def clear_all(self) -> None:
        """Remove every fault."""
        self._faults.clear()
        self._left.clear()

    def take(self, provider: Provider, sync_id: str | None) -> Fault | None:
        """The fault for this request (the sync's own before the provider's), used up once."""
        if not self._faults:
            return None
        key: tuple[Provider, str | None] = (provider, sync_id)
        fault = self._faults.get(key)
        if fault is None:
            key = (provider, None)
            fault = self._faults.get(key)
            if fault is None:
                return None
        left = self._left.get(key)
        if left is not None:
            if left <= 1:
                self.clear(*key)
            else:
                self._left[key] = left - 1
        return fault

    def to_json(self) -> dict[str, Any]:
        """Installed faults per provider; `*` is the provider-wide one."""
        shown: dict[str, Any] = {provider: {} for provider in PROVIDERS}
        for (provider, sync_id), fault in self._faults.items():
            entry = fault.to_json()
            if (provider, sync_id) in self._left:
                entry["times"] = self._left[(provider, sync_id)]
            shown[provider]["*" if sync_id is None else sync_id] = entry
        return shown


class RequestLog:
    """Counts of provider requests received, per provider and per path (query left out)."""

    def __init__(self) -> None:
        self.total = 0
        self.by_provider: dict[str, int] = dict.fromkeys(PROVIDERS, 0)
        self.by_path: dict[str, int] = {}

    def record(self, provider: Provider, path: str) -> None:
        """Count one request."""
        self.total += 1
        self.by_provider[provider] += 1
        self.by_path[path] = self.by_path.get(path, 0) + 1

    def reset(self) -> None:
        """Start counting from zero."""
        self.total = 0
        self.by_provider = dict.fromkeys(PROVIDERS, 0)
        self.by_path = {}

    def to_json(self) -> dict[str, Any]:
        """The counts as `GET /_sim/requests` shows them."""
        return {"total": self.total, "providers": self.by_provider, "paths": self.by_path}
