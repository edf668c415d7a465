"""Counts of the provider requests the simulator received, so tests and the benchmark can see
what an exporter costs each provider from the provider's side."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

PER_SECOND_WINDOW = 300


class RequestLog:
    """Requests per provider and per path (query left out), per wall-clock second over the last
    `window` seconds, and the most any provider received within one second since the reset.

    Every provider request counts, whatever the answer (401, 404 and injected faults too).
    """

    def __init__(
        self,
        providers: Iterable[str],
        *,
        window: int = PER_SECOND_WINDOW,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._providers = tuple(providers)
        self._window = window
        self._clock = clock
        self.reset()

    def reset(self) -> None:
        """Start counting from zero."""
        self.total = 0
        self.by_provider: dict[str, int] = dict.fromkeys(self._providers, 0)
        self.by_path: dict[str, int] = {}
        self._seconds: dict[str, dict[int, int]] = {p: {} for p in self._providers}
        self._recent: dict[str, deque[float]] = {p: deque() for p in self._providers}
        self._max: dict[str, int] = dict.fromkeys(self._providers, 0)
        self.limited: dict[str, int] = dict.fromkeys(self._providers, 0)

    def last_second(self, provider: str) -> int:
        """Requests `provider` received within the last second, this one included."""
        return len(self._recent.get(provider, ()))

    def record(self, provider: str, path: str) -> None:
        """Count one request, now."""
        now = self._clock()
        self.total += 1
        self.by_provider[provider] = self.by_provider.get(provider, 0) + 1
        self.by_path[path] = self.by_path.get(path, 0) + 1
        seconds = self._seconds.setdefault(provider, {})
        second = int(now)
        if second not in seconds:
            self._forget_before(seconds, second - self._window)
        seconds[second] = seconds.get(second, 0) + 1
        recent = self._recent.setdefault(provider, deque())
        recent.append(now)
        while recent and recent[0] <= now - 1.0:
            recent.popleft()
        self._max[provider] = max(self._max.get(provider, 0), len(recent))

    @staticmethod
    def _forget_before(seconds: dict[int, int], oldest: int) -> None:
        for stale in [second for second in seconds if second <= oldest]:
            del seconds[stale]

    def to_json(self) -> dict[str, Any]:
        """The counts as `GET /_sim/requests` shows them."""
        oldest = int(self._clock()) - self._window
        per_second = {
            provider: {str(s): n for s, n in sorted(seconds.items()) if s > oldest}
            for provider, seconds in self._seconds.items()
        }
        return {
            "total": self.total,
            "providers": self.by_provider,
            "paths": self.by_path,
            "per_second": per_second,
            "max_per_second": self._max,
            "rate_limited": self.limited,
        }
