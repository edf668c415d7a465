"""Which counter a failed read goes to: the one rule scrape, probe and bulk reads share."""

from __future__ import annotations

import pytest

from exporter.collect.failures import classify
from exporter.errors import BadResponse, UpstreamError


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (UpstreamError("http_500", "HTTP 500"), ("http_500", "HTTP 500", "errors")),
        # A 429 answered is an error; the requests the back-off then holds back are skipped.
        (UpstreamError("rate_limited", "HTTP 429"), ("rate_limited", "HTTP 429", "errors")),
        (
            UpstreamError("rate_limited", "backing off", sent=False),
            ("rate_limited", "backing off", "skipped"),
        ),
        (UpstreamError("budget", "spent", sent=False), ("budget", "spent", "deferred")),
        (UpstreamError("timeout", "no time", sent=False), ("timeout", "no time", "not_started")),
        (BadResponse("no status field"), ("bad_response", "no status field", "errors")),
        (KeyError("x"), ("bad_response", "unreadable status (KeyError)", "errors")),
    ],
)
def test_each_failed_read_goes_to_one_counter(
    exc: Exception, expected: tuple[str, str, str]
) -> None:
    assert classify(exc) == expected
