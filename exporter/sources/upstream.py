"""One source's door to its provider: its connection limit, its 429 back-off, its accounting.

Every request of a source goes through here, whoever makes it (a scrape's reads, discovery),
so `max_concurrency` and a 429's Retry-After hold across all of them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from exporter.exposition.selfmetrics import SelfMetrics
from exporter.providers.base import UpstreamError
from exporter.transport.client import MAX_BODY_BYTES, MAX_LIST_BYTES, env_proxy, get_json
from exporter.transport.http1 import Client, StaleConnection

log = logging.getLogger("exporter.upstream")


class Budget:
    """At most `rate` requests in any one-second window, for everything a source sends.

    A token bucket whose spent tokens come back exactly one `window` later: the bucket holds
    `rate` tokens per second (at least one), so a full bucket cannot double the rate over a
    window the way a refilling bucket of the same size would. A token is stamped when its
    request is written, not when it is granted: a busy event loop may hold granted requests
    back and then send them together, which grant-time stamps would let exceed the rate.
    """

    # Added to the window, so that requests written just over a window apart and delayed
    # unevenly on the way never arrive at the provider within one.
    MARGIN = 0.02
    # How often a request waits for a token while every token is granted but not yet sent.
    UNSENT_POLL = 0.01

    def __init__(self, rate: float) -> None:
        self._sent: deque[float] = deque()
        self._unsent = 0
        self.retune(rate)

    def retune(self, rate: float) -> None:
        """Take a new rate, keeping every token spent or granted: a reload that changes the
        limit starts from what was sent, never from a full bucket."""
        self.rate = rate
        self.capacity = max(1, int(rate))
        self.window = self.capacity / rate + self.MARGIN

    def busy(self, now: float) -> bool:
        """Whether a token is out: a bucket of a source gone from the config still counts."""
        self._expire(now)
        return bool(self._sent) or self._unsent > 0

    def _expire(self, now: float) -> None:
        while self._sent and self._sent[0] <= now - self.window:
            self._sent.popleft()

    def affordable(self, now: float, until: float) -> int:
        """How many requests the budget allows from `now` until `until`."""
        self._expire(now)
        if until <= now:
            return 0
        later = sum(1 for spent in self._sent if spent + self.window < until)
        if now + self.window < until:
            later += self._unsent
        whole_windows = int((until - now) / self.window)
        live = len(self._sent) + self._unsent
        return self.capacity - live + later + self.capacity * max(whole_windows - 1, 0)

    async def take(self, deadline: float) -> Spend | None:
        """A token, waiting for one to come back; None if none would before `deadline`."""
        while True:
            now = time.monotonic()
            self._expire(now)
            if len(self._sent) + self._unsent < self.capacity:
                self._unsent += 1
                return Spend(self)
            back = self._sent[0] + self.window if self._sent else now + self.UNSENT_POLL
            if back >= deadline:
                return None
            await asyncio.sleep(back - now)

    def _stamp(self) -> None:
        self._unsent -= 1
        self._sent.append(time.monotonic())


class Spend:
    """A granted token, stamped the first time it is called: when its request is written,
    or when the request is given up unsent (a connection that failed counts as spent)."""

    __slots__ = ("_budget",)

    def __init__(self, budget: Budget) -> None:
        self._budget: Budget | None = budget

    def __call__(self) -> None:
        if self._budget is not None:
            self._budget._stamp()
            self._budget = None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long a 429 stops a source: its Retry-After, else a default, never beyond a cap."""

    default: float
    cap: float

    def wait(self, asked: float | None) -> float:
        """Seconds to stop for, given the wait the provider asked for (None when it did not)."""
        return min(self.default if asked is None else asked, self.cap)


class Upstream:
    """A source's requests: at most `concurrency` in flight, none while backing off after 429."""

    def __init__(
        self,
        *,
        source: str,
        base_url: str,
        headers: Mapping[str, str],
        concurrency: int,
        request_timeout: float,
        client: Callable[[], Client],
        metrics: SelfMetrics,
        retry: RetryPolicy,
        budget: Budget | None = None,
    ) -> None:
        """`base_url` picks the proxy, `headers` go on every request, `client` gives the one
        shared HTTP client, `budget` is the source's `ReadPolicy` bucket."""
        self.source = source
        self.headers = dict(headers)
        self.concurrency = concurrency
        self.request_timeout = request_timeout
        self.blocked_until = 0.0
        self.retry = retry
        self.budget = budget
        self._client = client
        self._metrics = metrics
        self._requests = metrics.requests.source(source)
        self._limit = asyncio.Semaphore(concurrency)
        self._proxy = env_proxy(base_url)
        self._told_dropped = False

    def _dropped(self, then: Callable[[int], None] | None, count: int) -> None:
        if not self._told_dropped:
            self._told_dropped = True
            log.warning(
                "a list page holds items no UTF-8 can carry; reading the list without them",
                extra={"fields": {"source": self.source, "items": count}},
            )
        if then is not None:
            then(count)

    def backing_off(self) -> bool:
        """Whether a 429's Retry-After still stops this source."""
        return self.blocked_until > time.monotonic()

    def within(self, deadline: float) -> SourceHttp:
        """This source's requests as an adapter makes them, each ending by `deadline`."""
        return SourceHttp(self, deadline)

    def back_off(self, asked: float | None) -> float:
        """Stop calling the source until the wait a 429 asked for (capped) is over."""
        wait = self.retry.wait(asked)
        self.blocked_until = max(self.blocked_until, time.monotonic() + wait)
        return wait

    async def get(
        self,
        url: str,
        headers: Mapping[str, str],
        listing: bool,
        deadline: float,
        on_dropped: Callable[[int], None] | None = None,
        form: bytes | None = None,
    ) -> Any:
        """One request, counted, within the source's limits; UpstreamError when it fails.

        A list page loses the items no UTF-8 can carry, not the whole page: their number
        goes to `on_dropped` (and the log, once per source).
        """
        if self.backing_off():
            raise UpstreamError("rate_limited", "source is backing off after HTTP 429", sent=False)
        async with self._limit:
            now = time.monotonic()
            if self.blocked_until > now:
                raise UpstreamError(
                    "rate_limited", "source is backing off after HTTP 429", sent=False
                )
            # A kept-alive connection the provider closed before answering: sent again once,
            # on a new connection, as a new request with a token of its own.
            for fresh in (False, True):
                spend = None
                if self.budget is not None:
                    spend = await self.budget.take(deadline)
                    if spend is None and fresh:
                        raise UpstreamError(
                            "connect", "connection closed unanswered; no token to send again"
                        )
                    if spend is None:
                        raise UpstreamError(
                            "budget", "max_requests_per_second spent until the deadline", sent=False
                        )
                try:
                    dropped = None
                    if listing:
                        dropped = partial(self._dropped, on_dropped)
                    return await self._send(
                        url, headers, listing, deadline, spend, fresh, dropped, form
                    )
                except StaleConnection:
                    if fresh:
                        raise UpstreamError("connect", "connection closed unanswered") from None
                finally:
                    if spend is not None:
                        spend()
            raise AssertionError("unreachable")

    async def _send(
        self,
        url: str,
        headers: Mapping[str, str],
        listing: bool,
        deadline: float,
        spend: Spend | None,
        fresh: bool,
        on_dropped: Callable[[int], None] | None,
        form: bytes | None = None,
    ) -> Any:
        timeout = min(self.request_timeout, deadline - time.monotonic())
        if timeout <= 0:
            raise UpstreamError("timeout", "no time left before the deadline", sent=False)
        started = time.perf_counter()
        code = ""
        try:
            code, body = await get_json(
                self._client(),
                url,
                {**self.headers, **headers} if self.headers else headers,
                timeout=timeout,
                limit=MAX_LIST_BYTES if listing else MAX_BODY_BYTES,
                proxy=self._proxy,
                on_send=spend,
                form=form,
                on_dropped=on_dropped,
                pool=self.source,
                fresh=fresh,
            )
        except UpstreamError as exc:
            code = exc.code
            if exc.reason == "rate_limited":
                wait = self.back_off(exc.retry_after)
                exc.detail = f"HTTP 429, backing off {wait:.3g}s"
            raise
        finally:
            self._requests.record(code, time.perf_counter() - started)
        return body


@dataclass(frozen=True, slots=True)
class SourceHttp:
    """The `Http` an adapter is handed: the source's upstream with one deadline.

    `dropped` collects, per list page, how many unreadable items were left out.
    """

    upstream: Upstream
    deadline: float
    dropped: list[int] = field(default_factory=list)

    # Plain functions handing back the upstream's coroutine: one frame fewer per answer.
    def get(
        self, url: str, headers: Mapping[str, str], *, listing: bool = False
    ) -> Coroutine[Any, Any, Any]:
        """GET `url`; awaited, its decoded JSON body."""
        return self.upstream.get(
            url, headers, listing, self.deadline, self.dropped.append if listing else None
        )

    def post(self, url: str, headers: Mapping[str, str], form: bytes) -> Coroutine[Any, Any, Any]:
        """POST `form` to `url` (a token request); awaited, its decoded JSON body."""
        return self.upstream.get(url, headers, False, self.deadline, form=form)
