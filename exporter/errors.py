"""The errors the transport, the adapters and the config share, defined below all three
so the HTTP client need not import the adapters' base or the config schema."""

from __future__ import annotations


class ConfigError(Exception):
    """The configuration cannot be used; the message lists every problem found."""


class BadResponse(Exception):
    """The provider answered, but not with something we can read."""


class UpstreamError(Exception):
    """A request that failed: `reason` is one of metrics.ERROR_REASONS.

    `sent` is False when the request never left (the source is backing off after a 429),
    which is counted as skipped, not as an upstream error; `code` is the HTTP status code
    when an answer came; `retry_after` the wait a 429 asked for.
    """

    def __init__(self, reason: str, detail: str, *, sent: bool = True, code: str = "") -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.sent = sent
        self.code = code
        self.retry_after: float | None = None
