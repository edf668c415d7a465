"""Lenient value readers: every timestamp form the providers write, durations, free text."""

from __future__ import annotations

import pytest

from exporter import values


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-11-07T05:31:56Z", 1699335116.0),
        ("2021-01-06T03:24:53.000Z", 1609903493.0),
        ("2021-01-06T03:24:53.250Z", 1609903493.25),
        ("2023-11-07T07:31:56.5+02:00", 1699335116.5),
        ("2023-11-07T00:31:56-05:00", 1699335116.0),
        ("2023-12-15 01:29:29", 1702603769.0),
        ("2023-12-15T01:29:29", 1702603769.0),
    ],
)
def test_timestamps_in_every_provider_form(text: str, expected: float) -> None:
    assert values.timestamp(text) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("junk", [None, "", "yesterday", 12, "2023-13-45T99:00:00Z", {}])
def test_unreadable_timestamps_are_absent(junk: object) -> None:
    assert values.timestamp(junk) is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1m", 60), ("5m", 300), ("24h", 86400), ("4h", 14400), ("1h30m", 5400), ("500ms", 0.5)],
)
def test_durations(text: str, seconds: float) -> None:
    assert values.duration(text) == seconds


@pytest.mark.parametrize("junk", ["", "continuous", "5", "m5", "5 m", "1h junk", None, 5])
def test_non_durations(junk: object) -> None:
    assert values.duration(junk) is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("every 30 minutes", 1800),
        ("every hour", 3600),
        ("every half hour", 1800),
        ("every quarter of an hour", 900),
        ("Every  2 Days", 172800),
        ("every 1.5 hrs", 5400),
        ("every 5m", 300),
        ("1h30m", 5400),
        ("a week", 604800),
    ],
)
def test_frequencies_written_out(text: str, seconds: float) -> None:
    assert values.spoken_duration(text) == seconds


@pytest.mark.parametrize(
    "junk", ["every 30", "continuous", "every 30 parsecs", "every", "hourly", "x" * 65, None, 30]
)
def test_frequencies_that_are_not_durations(junk: object) -> None:
    assert values.spoken_duration(junk) is None


def test_numbers_reject_booleans_strings_and_nan() -> None:
    assert values.number(3) == 3.0
    assert values.number(2.5) == 2.5
    assert values.number(True) is None
    assert values.number("3") is None
    assert values.number(float("nan")) is None
    assert values.number(float("inf")) is None


def test_reason_is_cut_and_cleaned() -> None:
    cleaned = values.label_text("line one\nline\ttwo\x00" + "x" * 500)
    assert "\n" not in cleaned and "\t" not in cleaned and "\x00" not in cleaned
    assert len(cleaned) == 200
    assert cleaned.startswith("line one line two ")
