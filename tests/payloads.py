"""Hypothesis strategies for provider bodies: each provider's documented JSON, then broken.

A provider is described by a `PayloadSpec`: the fields of its documented body, each with a
strategy of valid values (nested objects are shapes of their own), and how its body is
parsed. From that, `bodies(name)` draws documented bodies, the provider's example bodies
(tests/data/<name>-seed.json and what the simulator serves) mutated field by field, and any
JSON at all. A new provider is covered by adding its spec to `SPECS`.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any, TypeAlias

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from exporter.model import SyncStatus
from exporter.providers import PROVIDERS
from exporter.simulator import PROVIDERS as SIMULATED
from exporter.simulator import World

DATA = Path(__file__).parent / "data"

Shape: TypeAlias = Mapping[str, "SearchStrategy[Any] | Shape"]

# --- values a provider documents ------------------------------------------------------------

COUNTS = st.one_of(
    st.integers(0, 10**9),
    st.sampled_from([0, 1, 2**31 - 1, 2**53 + 1, 2**63 - 1, 2**64 - 1]),
    st.floats(0, 1e15, allow_nan=False),
)
PERCENT = st.one_of(st.integers(0, 100), st.floats(0, 100, allow_nan=False))
NAMES = st.one_of(
    st.sampled_from(["Acme Corp - Salesforce Opportunities", "stripe", "hubspot", "<string>"]),
    st.text(max_size=40),
)
IDS = st.one_of(st.uuids().map(str), st.from_regex(r"\A[a-z]{3,4}_[0-9A-Z]{26}\Z"))


def _moment(value: datetime, style: str) -> str:
    """A datetime written the way one of the providers writes timestamps."""
    naive = value.replace(tzinfo=None)
    if style == "zulu":
        return naive.isoformat(timespec="milliseconds") + "Z"
    if style == "seconds":
        return naive.isoformat(timespec="seconds") + "Z"
    if style == "sequin":
        return naive.isoformat(sep=" ", timespec="seconds")
    if style == "date":
        return naive.date().isoformat()
    return value.isoformat()


OFFSETS = st.integers(-14 * 60, 14 * 60).map(lambda minutes: timezone(timedelta(minutes=minutes)))
TIMESTAMPS = st.builds(
    _moment,
    st.datetimes(
        datetime(1, 1, 2), datetime(9999, 12, 30), timezones=st.one_of(st.none(), OFFSETS)
    ),
    st.sampled_from(["zulu", "seconds", "sequin", "date", "offset"]),
)
DURATION_PARTS = st.tuples(st.integers(0, 10**6), st.sampled_from(["ms", "s", "m", "h", "d", "w"]))
DURATIONS = st.one_of(
    st.sampled_from(["1m", "5m", "30m", "1h", "24h", "1h30m", "500ms", "4h"]),
    st.lists(DURATION_PARTS, min_size=1, max_size=3).map(
        lambda parts: "".join(f"{n}{unit}" for n, unit in parts)
    ),
)

# --- values no provider should send -----------------------------------------------------------


def _nested(depth: int, leaf: Any, as_list: bool) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value] if as_list else {"a": value}
    return value


NUMBERS_AT_THE_EDGE = st.sampled_from(
    [
        -1,
        -(2**63),
        2**64,
        10**30,
        -(10**30),
        10**400,
        5e-324,
        -0.0,
        1.7976931348623157e308,
        -1.7976931348623157e308,
        float("nan"),
        float("inf"),
        float("-inf"),
    ]
)
STRINGS_AT_THE_EDGE = st.sampled_from(
    [
        "",
        " ",
        "NaN",
        "nan",
        "Infinity",
        "-Infinity",
        "inf",
        "1e400",
        "-1e400",
        "1e-400",
        "0x10",
        "null",
        "true",
        "2023-02-30T00:00:00Z",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "9" * 308 + "s",
        "9" * 400 + "y",
        "5m" * 5000,
        "-5m",
        "continuous",
        "line\nbreak",
        "\x00\x01\x1b[31mred\x7f\x85\x9f",
        "\r\n\t\v\f",
        'quote " backslash \\ brace {0} {}',
        "\u2028\u2029\u200b\u202e\ufeff",
        "é" * 201,
        "👨‍👩‍👧" * 100,
    ]
)
HUGE_STRINGS = st.builds(
    lambda char, size: char * size,
    st.sampled_from(["x", "é", "\n", "\x00", '"', "\\", "😀"]),
    st.integers(201, 300_000),
)
CONTROL_TEXT = st.text(st.characters(categories=["Cc", "Zl", "Zp", "Cf"]), min_size=1)
DEEP = st.builds(_nested, st.integers(1, 600), st.sampled_from([None, 1, "x", {}]), st.booleans())
LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(),
)
ANY_JSON = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
HOSTILE = st.one_of(
    NUMBERS_AT_THE_EDGE,
    STRINGS_AT_THE_EDGE,
    HUGE_STRINGS,
    CONTROL_TEXT,
    DEEP,
    ANY_JSON,
)

# --- each provider's documented body ------------------------------------------------------------

PARAGON_STATUSES = [
    "INITIALIZING", "ACTIVE", "IDLE", "RATE_LIMITED", "DISABLED", "ERRORED", "active", "idle",
    "paused", "errored", "rate_limited", "Rate_Limited", "MIGRATING",
]  # fmt: skip
PARAGON: Shape = {
    "status": st.sampled_from(PARAGON_STATUSES) | st.text(max_size=20),
    "summary": st.one_of(
        st.fixed_dictionaries(
            {},
            optional={
                "totalRecords": COUNTS,
                "syncedRecordsCount": COUNTS,
                "lastSyncedAt": TIMESTAMPS | st.none(),
                "latestCursor": st.text(max_size=20),
            },
        ),
        st.fixed_dictionaries(
            {},
            optional={
                "total_records": COUNTS,
                "synced_records_count": COUNTS,
                "last_synced_at": TIMESTAMPS,
            },
        ),
    ),
    "credentialId": IDS,
    "incrementalAccumulatorFrequency": DURATIONS,
    "rateLimitBackoffMs": COUNTS,
    "reason": NAMES,
    "configurationName": NAMES,
    "integration": NAMES,
    "pipeline": NAMES,
}

ISSUE = st.fixed_dictionaries(
    {"id": IDS},
    optional={
        "status": st.sampled_from(["ongoing", "resolved"]),
        "error": st.fixed_dictionaries({"code": NAMES, "message": NAMES}),
    },
)
TERMINAL: Shape = {
    "id": IDS,
    "status": st.sampled_from(["requested", "in_progress", "completed", "failed", "FAILED"]),
    "requestedAt": TIMESTAMPS,
    "failureReason": NAMES,
    "progress": PERCENT,
    "issues": st.lists(IDS | ISSUE, max_size=4),
    "startFrom": TIMESTAMPS,
    "completedAt": TIMESTAMPS,
    "attempts": st.integers(0, 10),
    "providerRequests": st.lists(
        st.fixed_dictionaries({"type": st.sampled_from(["historical_files", "api"]) | NAMES}),
        max_size=3,
    ),
}

HEALTH_STATUSES = st.sampled_from(["healthy", "ok", "warn", "error", "HEALTHY"]) | NAMES
HEALTH_PART: Shape = {"status": HEALTH_STATUSES, "notes": st.lists(NAMES) | NAMES | st.none()}
SEQUIN: Shape = {
    "id": IDS,
    "provider": NAMES,
    "name": NAMES,
    "status": st.sampled_from(["active", "disabled", "ACTIVE", "paused"]),
    "health": {
        "status": HEALTH_STATUSES,
        "sync_id": IDS,
        "credential": HEALTH_PART,
        "provider": HEALTH_PART,
    },
    "collection_ids": st.lists(NAMES, max_size=5),
    "rate_limit": {
        "allowed_requests": COUNTS,
        "interval": COUNTS,
        "max_concurrent_requests": COUNTS,
    },
    "credential_id": IDS,
    "sync_frequency": st.just("continuous") | DURATIONS,
    "initial_backfill_completed_at": TIMESTAMPS | st.none(),
    "max_age_days": st.integers(0, 3650) | st.none(),
    "metadata": st.dictionaries(st.text(max_size=10), NAMES, max_size=3),
}


# The simulator's made-up pipelines API: its detail body laid over its list item, as the
# generic provider reads it with the mapping the demo config gives it.
PHASES = st.sampled_from(
    ["QUEUED", "RUNNING", "SUCCEEDED", "THROTTLED", "PAUSED", "FAILED", "MIGRATING", "running"]
)
GENERIC: Shape = {
    "pipeline_id": IDS,
    "display_name": NAMES,
    "connector": {"kind": NAMES},
    "paused": st.booleans(),
    "owner": {"team": NAMES},
    "state": st.fixed_dictionaries(
        {"phase": PHASES | st.text(max_size=20)},
        optional={"error": st.none() | st.fixed_dictionaries({"message": NAMES})},
    ),
    "last_success_at": TIMESTAMPS | st.none(),
    "progress_pct": PERCENT,
    "stats": {"rows_done": COUNTS, "rows_total": COUNTS},
    "schedule_minutes": st.integers(0, 10**6) | st.none(),
    "throttle": st.none() | st.fixed_dictionaries({"retry_in_ms": COUNTS}),
}


def generic_parser() -> Callable[[Any], SyncStatus]:
    """The demo config's mapping of the pipelines API, compiled as the adapter compiles it."""
    from exporter.providers.generic import GenericApi, StatusMap
    from exporter.simulator.providers.generic import MAPPING

    parse: Callable[[Any], SyncStatus] = StatusMap.of(GenericApi.model_validate(MAPPING)).parse
    return parse


@dataclass(frozen=True)
class PayloadSpec:
    """What a provider's bodies look like, and how the exporter parses one.

    `parse` defaults to the provider module's own `parse(body)`; a provider whose parsing
    depends on its config gives one bound to a config here. `status_key` is the top-level
    field that holds (or leads to) the status, which documented bodies always carry.
    """

    shape: Shape
    required: frozenset[str] = frozenset({"status"})
    parse: Callable[[Any], SyncStatus] | None = field(default=None)
    status_key: str = "status"


SPECS: dict[str, PayloadSpec] = {
    "paragon": PayloadSpec(PARAGON),
    "terminal": PayloadSpec(TERMINAL),
    "sequin": PayloadSpec(SEQUIN),
    "generic": PayloadSpec(
        GENERIC, required=frozenset({"state"}), parse=generic_parser(), status_key="state"
    ),
}


def parser(name: str) -> Callable[[Any], SyncStatus]:
    """The function the exporter maps a provider's body with."""
    spec = SPECS[name]
    if spec.parse is not None:
        return spec.parse
    module = importlib.import_module(PROVIDERS[name].__module__)
    parse: Callable[[Any], SyncStatus] = module.parse
    return parse


# --- bodies -----------------------------------------------------------------------------------


def _valid(value: SearchStrategy[Any] | Shape) -> SearchStrategy[Any]:
    if isinstance(value, SearchStrategy):
        return value
    return st.fixed_dictionaries({}, optional={key: _valid(inner) for key, inner in value.items()})


def documented(shape: Shape, required: frozenset[str]) -> SearchStrategy[dict[str, Any]]:
    """Bodies as the provider documents them: required fields, any of the optional ones."""
    return st.fixed_dictionaries(
        {key: _valid(value) for key, value in shape.items() if key in required},
        optional={key: _valid(value) for key, value in shape.items() if key not in required},
    )


@st.composite
def mutated(draw: st.DrawFn, body: Any) -> Any:
    """`body` with fields dropped, replaced by hostile values or wrapped, objects recursed into."""
    if not isinstance(body, dict):
        return body
    result: dict[str, Any] = {}
    for key, value in body.items():
        action = draw(st.sampled_from(["keep", "keep", "keep", "drop", "hostile", "recurse"]))
        if action == "drop":
            continue
        if action == "hostile":
            result[key] = draw(HOSTILE)
        elif action == "recurse" and isinstance(value, dict):
            result[key] = draw(mutated(value))
        elif action == "recurse":
            result[key] = draw(st.sampled_from([[value], {"value": value}, str(value)]))
        else:
            result[key] = value
    extra = draw(st.dictionaries(st.text(max_size=12), HOSTILE, max_size=2))
    return {**extra, **result}


@cache
def seeds(name: str) -> tuple[Any, ...]:
    """The provider's example bodies: its documentation's, and the simulator's demo world's."""
    found: list[Any] = []
    seed = DATA / f"{name}-seed.json"
    if seed.exists():
        found.append(json.loads(seed.read_text()))
    if name in SIMULATED:
        world = World.demo(period=100.0, started_at=0.0)
        for step in range(0, 400, 7):
            for sync_id in world.ids(name, step):
                for expand in (False, True):
                    body = world.body(name, sync_id, float(step), expand=expand)
                    if body is not None and body not in found:
                        found.append(body)
    return tuple(found)


def bodies(name: str) -> SearchStrategy[Any]:
    """Every kind of body a provider might answer with, for `name` in SPECS."""
    spec = SPECS[name]
    valid = documented(spec.shape, spec.required)
    examples = seeds(name)
    options = [valid, valid.flatmap(mutated), ANY_JSON, HOSTILE]
    if examples:
        options.append(st.sampled_from(examples).flatmap(mutated))
    return st.one_of(*options)


def _encode(body: Any, ascii_only: bool) -> bytes:
    text = json.dumps(body, ensure_ascii=ascii_only, allow_nan=True)
    return text.encode("utf-8", "surrogatepass")


def wire(strategy: SearchStrategy[Any]) -> SearchStrategy[bytes]:
    """Bodies as bytes on the wire: NaN and Infinity tokens, \\u escapes or raw UTF-8."""
    return st.builds(_encode, strategy, st.booleans())
