"""Generated configs: loading one either succeeds or raises ConfigError, never anything else.

The documents are built structure-aware: the config's own keys at each level, mixed with
unknown keys, wrong types, YAML tags and dates that cannot be constructed, deep nesting and
`${VAR}` references, rendered as YAML text. A value from the environment never shows in
an error.
"""

from __future__ import annotations

import json
import os
from typing import Any
from unittest import mock

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from exporter.config import ConfigError, parse_config, parse_document
from exporter.web.webconfig import WebSecurityConfig

SECRET = "fuzz-secret-7Qx"
ENV = {
    "SSE_FUZZ_SECRET": SECRET,
    "SSE_FUZZ_DURATION": "5s",
    "SSE_FUZZ_URL": "https://u:" + SECRET + "@h",
    "SSE_FUZZ_EMPTY": "",
}
ENV_REFERENCES = [
    "${SSE_FUZZ_SECRET}",
    "x-${SSE_FUZZ_SECRET}-y",
    "${SSE_FUZZ_DURATION}",
    "${SSE_FUZZ_URL}",
    "${SSE_FUZZ_EMPTY}",
    "${SSE_FUZZ_UNSET}",
    "${not a reference",
]
TRICKY_PLAIN = [
    "null", "~", "true", "off", "yes", "0", "-1", "1e400", ".inf", "-.inf", ".nan", "0x1F",
    "0o17", "1_000", "2023-01-01", "2023-02-30", "2023-13-01T25:00:00Z", "!!int twelve",
    "!!float x", "!!binary aGk=", "!!binary '!'", "!!timestamp 2023-02-30", "!!str 5",
    "!!set {a, b}", "!!omap [{a: 1}]", "!!python/object:os.system x", "*undefined",
    "!custom x", "!!map [1]", "!!seq {a: 1}", "[a, [b, [c]]]", "{}", "[]",
]  # fmt: skip
STRINGS = [
    "", " ", "5s", "1h30m", "-1s", "0s", "soon", "500ms", "9999999999999h", "http://h",
    "https://api.sequin.io", "ftp://x", "https://u:p@h", "http://h/path@x", "//h", "h:80",
    ":9869", "127.0.0.1:0", "[::1]:9869", "localhost", ":99999", "paragon", "terminal",
    "sequin", "zapier", "debug", "json", "tok en", "line\nbreak", "é", "a" * 300,
    "/nonexistent/token", "/", "/dev/null", "/etc/hostname", "a\u0000b", "$2y$10$short",
]  # fmt: skip

TOP_KEYS = ["sources", "collector", "web", "log", "x-anchors", "unknown", "1", "on"]
SOURCE_KEYS = [
    "name", "provider", "base_url", "auth", "labels", "headers", "syncs", "stale_after",
    "max_concurrency", "request_timeout", "discover", "discover_interval", "tags", "null",
]  # fmt: skip
AUTH_KEYS = ["token", "token_file", "connection_token", "connection_token_file", "password"]
SYNC_KEYS = ["id", "labels", "stale_after", "name"]
COLLECTOR_KEYS = [
    "request_timeout", "max_concurrency", "timeout_offset", "default_timeout", "max_timeout",
    "default_retry_after", "max_retry_after", "stale_after", "stale_intervals", "stale_slack",
    "shard", "total_shards", "bogus",
]  # fmt: skip


def quoted(text: str) -> str:
    """A double-quoted YAML scalar (JSON's string syntax is valid YAML)."""
    return json.dumps(text)


scalars = st.one_of(
    st.sampled_from(STRINGS).map(quoted),
    st.sampled_from(ENV_REFERENCES).map(quoted),
    st.sampled_from(TRICKY_PLAIN),
    st.text(max_size=12).map(quoted),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr).filter(lambda s: "n" not in s),
)


def mapping(keys: list[str], value: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    pairs = st.lists(st.tuples(st.sampled_from(keys), value), max_size=len(keys))
    return pairs.map(lambda items: "{" + ", ".join(f"{k}: {v}" for k, v in items) + "}")


def sequence(item: st.SearchStrategy[str], size: int = 4) -> st.SearchStrategy[str]:
    return st.lists(item, max_size=size).map(lambda items: "[" + ", ".join(items) + "]")


anything = st.recursive(
    scalars,
    lambda inner: st.one_of(sequence(inner), mapping(["a", "b", "1", "id", "token"], inner)),
    max_leaves=12,
)


@st.composite
def nested(draw: st.DrawFn, value: st.SearchStrategy[str]) -> str:
    """Sometimes wrap a value in many levels of lists, as a hostile file would."""
    levels = draw(st.sampled_from([0, 0, 0, 1, 63, 64, 65, 300]))
    return "[" * levels + draw(value) + "]" * levels


labels = mapping(["team", "tier", "sync_id", "__x", "bad-name", "1"], scalars)
auth = st.one_of(mapping(AUTH_KEYS, st.one_of(scalars, anything)), anything)
sync = st.one_of(scalars, mapping(SYNC_KEYS, st.one_of(scalars, labels, anything)))
source_values = {
    "labels": labels,
    "headers": labels,
    "auth": auth,
    "syncs": st.one_of(sequence(sync, 5), anything),
}
source = st.lists(
    st.sampled_from(SOURCE_KEYS).flatmap(
        lambda key: st.tuples(st.just(key), source_values.get(key, st.one_of(scalars, anything)))
    ),
    max_size=8,
).map(lambda items: "{" + ", ".join(f"{k}: {v}" for k, v in items) + "}")
top_values: dict[str, st.SearchStrategy[str]] = {
    "sources": st.one_of(sequence(st.one_of(source, anything), 3), nested(anything)),
    "collector": mapping(COLLECTOR_KEYS, st.one_of(scalars, anything)),
    "web": mapping(["listen_address", "tls"], scalars),
    "log": mapping(["level", "format"], scalars),
}
document = st.one_of(
    st.lists(
        st.sampled_from(TOP_KEYS).flatmap(
            lambda key: st.tuples(st.just(key), top_values.get(key, anything))
        ),
        max_size=5,
    ).map(lambda items: "".join(f"{k}: {v}\n" for k, v in items)),
    anything,
)


def check(text: str) -> Any:
    with mock.patch.dict(os.environ, ENV):
        os.environ.pop("SSE_FUZZ_UNSET", None)
        try:
            return parse_config(text, "generated.yml")
        except ConfigError as exc:
            assert SECRET not in str(exc), str(exc)
            return None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document)
@example("x-when: 2023-02-30\nsources: []\n")
@example("sources: [{name: a, provider: paragon, auth: {token: t}, base_url: '${SSE_FUZZ_URL}'}]")
def test_generated_configs_load_or_raise_config_error(text: str) -> None:
    check(text)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["tls_server_config", "basic_auth_users", "other"]),
            st.one_of(mapping(["cert_file", "key_file", "min_version", "u"], scalars), anything),
        ),
        max_size=3,
    ).map(lambda items: "".join(f"{k}: {v}\n" for k, v in items))
)
def test_generated_web_configs_load_or_raise_config_error(text: str) -> None:
    with mock.patch.dict(os.environ, ENV):
        try:
            parse_document(WebSecurityConfig, text, "web.yml", "tls_server_config")
        except ConfigError as exc:
            assert SECRET not in str(exc), str(exc)
