"""The direct text writer is byte-for-byte what prometheus_client writes for the same families.

prometheus_client sorts every sample's label names; the exporter writes a sync's identity
labels sorted, then the family's own labels sorted (kube-state-metrics' order). The reference
is prometheus_client's output with each sample's labels put back in that order.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from exporter.collect.collector import Collector as SyncCollector
from exporter.config import parse_config
from exporter.exposition import metrics
from exporter.exposition.render import StalePolicy, format_value, provider_families, render_syncs
from exporter.exposition.targets import Found, Target, TargetMaker
from exporter.model import STATES, State, SyncStatus
from exporter.providers import PROVIDERS

NOW = 1_700_000_000.5
POLICY = StalePolicy(default=3600.0, intervals=3.0, slack=900.0)
ADAPTERS = list(PROVIDERS.values())

CONFIG = r"""
sources:
  - name: 'we"ird\source'
    provider: paragon
    auth: {token: t}
    labels: {aaa: first, tenant: "a{b}c", zzz: "line\nbreak"}
    syncs:
      - id: one
        labels: {team: data, credential: x}
        stale_after: 10m
      - two
      - three
  - name: plain
    provider: sequin
    auth: {token: t}
    label_from: {customer: metadata.customer}
    syncs: [four, five, six]
  - name: trucks
    provider: terminal
    auth: {token: t, connection_token: con_tkn_x}
    syncs: [sync_seven]
"""


def statuses() -> list[SyncStatus | None]:
    return [
        SyncStatus(
            state=State.ERRORED,
            provider_status='ERR"ORED\\',
            info={"name": "n{0}", "integration": "", "credential_id": "c\\1", "frequency": "1m"},
            progress_ratio=0.125,
            records_expected=123456789.0,
            records_synced=1e20,
            last_synced_timestamp=1699335116.25,
            rate_limit_backoff_seconds=0.0,
            interval_seconds=60.0,
            error_reason='a "quoted" reason with {braces}',
        ),
        None,
        SyncStatus(
            state=State.IDLE,
            provider_status="idle",
            info={"name": "", "pipeline": "p"},
            last_synced_timestamp=NOW + 10,
        ),
        SyncStatus(
            state=State.UNKNOWN,
            provider_status="weird",
            interval_seconds=14400.0,
            info={"customer": "acme \\ corp"},
            values={
                "backfill": 1702603769.0,
                "allowed_requests": 1000.0,
                "limit_interval": 60.0,
                "max_concurrent": 0.0,
                "collections": 2.0,
            },
            sets={"health": "warn"},
        ),
        SyncStatus(
            state=State.ACTIVE,
            provider_status="active",
            progress_ratio=1.0,
            sets={"health": "degraded"},
            last_synced_timestamp=1.0,
        ),
        SyncStatus(state=State.ACTIVE, provider_status="active", sets={"health": "unknown"}),
        SyncStatus(
            state=State.IDLE,
            provider_status="completed",
            info={"job_id": "sync_seven", "sync_mode": "manual"},
            last_synced_timestamp=1609903493.0,
            on_demand=True,
            values={"attempts": 3.0, "issues": 0.0, "requested": 1609903493.0, "completed": -1.5},
        ),
    ]


def results() -> list[tuple[Target, SyncStatus | None]]:
    sources = SyncCollector(parse_config(CONFIG, "render.yml")).sources
    targets = [target for source in sources for target in source.targets]
    return list(zip(targets, statuses(), strict=True))


def labels_of(target: Target) -> dict[str, str]:
    config = parse_config(CONFIG, "render.yml")
    for source in config.sources:
        for sync in source.syncs:
            if source.name == target.source and sync.id == target.sync_id:
                return {
                    **source.labels,
                    **sync.labels,
                    "source": source.name,
                    "provider": source.provider,
                    "sync_id": sync.id,
                }
    raise AssertionError(target)


_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"')


def split_sample(line: str) -> tuple[str, list[str], str]:
    """A sample line's name, its labels as written (`name="escaped value"`) and what follows."""
    name, rest = line.split("{", 1)
    labels: list[str] = []
    at = 0
    while True:
        match = _LABEL.match(rest, at)
        assert match is not None, line
        labels.append(match[0])
        at = match.end()
        if rest[at] == "}":
            return name, labels, rest[at + 1 :]
        assert rest[at] == ",", line
        at += 1


def label_names(line: str) -> list[str]:
    """The label names of a sample line, in the order written."""
    return [label.split("=", 1)[0] for label in split_sample(line)[1]]


class Sampled(Metric):
    """A reference family that notes each sample's label names in the exporter's order."""

    def __init__(self, name: str, text: str, kind: str, orders: dict[str, list[list[str]]]):
        super().__init__(name, text, kind)
        self.orders = orders.setdefault(name, [])

    def add(self, base: Mapping[str, str], own: Mapping[str, str], value: float) -> None:
        """A sample of a sync's labels `base` and the family's own labels `own`."""
        self.add_sample(self.name, {**base, **own}, value)
        self.orders.append([*sorted(base), *sorted(own)])


class ReferenceCollector(Collector):
    """The same families built the ordinary client_python way, for comparison only.

    Each sample's label names in the exporter's order are kept by family, to reorder
    prometheus_client's sorted output with `in_order`.
    """

    def __init__(self, pairs: list[tuple[Target, SyncStatus | None]]) -> None:
        self.pairs = pairs
        self.orders: dict[str, list[list[str]]] = {}

    def in_order(self, text: str) -> str:
        """prometheus_client's exposition with each sample's labels in the exporter's order."""
        taken = {name: iter(orders) for name, orders in self.orders.items()}
        lines = []
        for line in text.splitlines(keepends=True):
            if "{" in line and not line.startswith("#"):
                name, labels, rest = split_sample(line)
                by_name = {label.split("=", 1)[0]: label for label in labels}
                order = next(taken[name])
                assert sorted(order) == sorted(by_name), line
                line = f"{name}{{{','.join(by_name[key] for key in order)}}}{rest}"
            lines.append(line)
        return "".join(lines)

    def collect(self) -> Iterator[Metric]:
        self.orders = {}

        def family(spec: metrics.Family) -> Sampled:
            return Sampled(spec.name, spec.help, spec.type, self.orders)

        read = [(t, s) for t, s in self.pairs if s is not None]
        up = family(metrics.SYNC_UP)
        for target, status in self.pairs:
            up.add(labels_of(target), {}, 0.0 if status is None else 1.0)
        yield up
        state = family(metrics.SYNC_STATE)
        provider_status = family(metrics.SYNC_PROVIDER_STATUS)
        info = family(metrics.SYNC_INFO)
        error = family(metrics.SYNC_ERROR_INFO)
        for target, s in read:
            base = labels_of(target)
            for each in STATES:
                value = 1.0 if s.state is each else 0.0
                state.add(base, {"state": each.value}, value)
            provider_status.add(base, {"status": s.provider_status}, 1.0)
            described = {key: s.info.get(key, "") for key in target.info_labels}
            info.add(base, described, 1.0)
            if s.error_reason is not None:
                error.add(base, {"reason": s.error_reason}, 1.0)
        yield from (state, provider_status, info, error)
        for spec in metrics.VALUE_FAMILIES:
            metric = family(spec)
            for target, s in read:
                value = getattr(s, spec.field)
                if value is not None:
                    metric.add(labels_of(target), {}, value)
            yield metric
        read_at = family(metrics.SYNC_READ_TIMESTAMP)
        for target, _ in read:
            read_at.add(labels_of(target), {}, NOW)
        yield read_at
        age = family(metrics.SYNC_LAST_SYNCED_AGE)
        stale = family(metrics.SYNC_STALE_THRESHOLD)
        for target, s in read:
            if s.last_synced_timestamp is not None:
                value = max(NOW - s.last_synced_timestamp, 0.0)
                age.add(labels_of(target), {}, value)
                budget = POLICY.threshold(target, s)
                if budget is not None:
                    stale.add(labels_of(target), {}, budget)
        yield age
        yield stale
        for spec in provider_families(ADAPTERS):
            metric = family(spec)
            for target, s in read:
                number = s.values.get(spec.field)
                if spec.states and spec.field in s.sets:
                    seen = s.sets[spec.field]
                    for option in (*spec.states, *([seen] if seen not in spec.states else [])):
                        own = {spec.labels[0]: option}
                        metric.add(labels_of(target), own, 1.0 if option == seen else 0.0)
                elif not spec.states and number is not None:
                    metric.add(labels_of(target), {}, number)
            yield metric


def test_render_matches_prometheus_client_byte_for_byte() -> None:
    pairs = results()
    registry = CollectorRegistry(auto_describe=False)
    reference = ReferenceCollector(pairs)
    registry.register(reference)
    expected = reference.in_order(generate_latest(registry).decode("utf-8"))
    ours = render_syncs(pairs, NOW, POLICY, ADAPTERS)
    assert ours == expected
    assert 'tenant="a{b}c"' in ours and r'zzz="line\nbreak"' in ours
    assert r'customer="acme \\ corp"' in ours
    five = 'provider="sequin",source="plain",sync_id="five"'
    assert f'sync_health{{{five},status="degraded"}} 1.0' in ours


def test_a_familys_own_labels_follow_the_sorted_identity_labels() -> None:
    ours = render_syncs(results(), NOW, POLICY, ADAPTERS)
    one = (
        'aaa="first",credential="x",provider="paragon",source="we\\"ird\\\\source",sync_id="one",'
        'team="data",tenant="a{b}c",zzz="line\\nbreak"'
    )
    assert f'sync_error_info{{{one},reason="a \\"quoted\\" reason with {{braces}}"}} 1.0' in ours
    assert f'sync_state{{{one},state="errored"}} 1.0' in ours
    assert f'sync_provider_status{{{one},status="ERR\\"ORED\\\\"}} 1.0' in ours
    info = next(line for line in ours.splitlines() if line.startswith("sync_info{"))
    info_labels = ["credential_id", "frequency", "integration", "name", "pipeline"]
    assert label_names(info)[8:] == info_labels
    for line in ours.splitlines():
        if not line.startswith("#"):
            names = label_names(line)
            assert len(set(names)) == len(names), line


def test_stale_threshold_only_with_a_last_success_and_a_schedule() -> None:
    ours = render_syncs(results(), NOW, POLICY, ADAPTERS)
    lines = [line for line in ours.splitlines() if line.startswith("sync_stale_threshold_seconds")]
    # one: configured 10m; three: no interval, the default; five: no interval, the default;
    # four and six have no last success; the manual Terminal job runs on demand: none.
    assert [line.rsplit(" ", 1)[1] for line in lines] == ["600.0", "3600.0", "3600.0"]
    assert 'sync_id="sync_seven"' not in "\n".join(lines)


def test_format_value_agrees_with_client_python_across_magnitudes() -> None:
    from prometheus_client.utils import floatToGoString

    for value in (0.0, 1.0, -2.5, 0.1, 999999.0, 1e6, 1234567.891, 1.7e9, 1e16, 1e21, -1e7, 3e-9):
        assert format_value(value) == floatToGoString(value)  # type: ignore[no-untyped-call]
    assert format_value(float("inf")) == "+Inf"


def test_a_relisted_sync_writes_its_new_labels_and_info_labels() -> None:
    """A target made again from a new listing or config writes its new labels."""
    adapter = PROVIDERS["paragon"]

    def maker(info: tuple[str, ...]) -> TargetMaker:
        return TargetMaker("s", "paragon", {"env": "prod"}, None, info)

    make = maker(adapter.info_labels)
    first = make(Found("a", labels={"user": "u1"}))
    again = make(Found("a", labels={"user": "u1"}), first)
    moved = make(Found("a", labels={"user": "u2"}), again)
    relabelled = maker((*adapter.info_labels, "customer"))(Found("a", labels={"user": "u2"}), moved)
    status = SyncStatus(state=State.IDLE, provider_status="OK", info={"customer": "acme"})
    body = render_syncs([(moved, status), (relabelled, status)], NOW, POLICY, [adapter])
    labels = 'env="prod",provider="paragon",source="s",sync_id="a",user="u2",state="idle"'
    assert f"sync_state{{{labels}}} 1.0" in body
    assert 'customer="acme"' in body.split("sync_info{", 2)[2].split("\n")[0]
    assert 'customer="' not in body.split("sync_info{", 2)[1].split("\n")[0]


def test_info_values_that_look_like_format_specifiers_are_written_as_they_are() -> None:
    """sync_info lines come from a %-template per source: values and labels are arguments."""
    adapter = PROVIDERS["paragon"]
    make = TargetMaker("s%s", "paragon", {"env": "100%"}, None, adapter.info_labels)
    target = make(Found("a%d", labels={"user": "%(x)s"}))
    tricky = {"name": "%s", "integration": "%%", "pipeline": '%"q"', "credential_id": "{0}%"}
    status = SyncStatus(state=State.IDLE, provider_status="OK", info=tricky)
    body = render_syncs([(target, status), (target, status)], NOW, POLICY, [adapter])
    lines = [line for line in body.splitlines() if line.startswith("sync_info{")]
    labels = 'env="100%",provider="paragon",source="s%s",sync_id="a%d",user="%(x)s"'
    own = 'credential_id="{0}%",frequency="",integration="%%",name="%s",pipeline="%\\"q\\""'
    assert lines == [f"sync_info{{{labels},{own}}} 1.0"] * 2
