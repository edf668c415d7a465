"""What an accepted webhook delivery does: find the syncs it is about and tell them stale.

A told sync's cached reading is not served again: the next scrape reads it first, whatever
the source's `min_interval`, so a failure shows one scrape after the provider reports it.
Many events about one sync before that scrape still cost one read.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
from jmespath.exceptions import JMESPathError

from exporter import jpath
from exporter.collect.runs import OUTCOMES, RunBook
from exporter.exposition.selfmetrics import SelfMetrics
from exporter.exposition.targets import Target
from exporter.schema import compile_path
from exporter.sources.source import Source
from exporter.web.webhooks import Deliver, Delivery

Index = dict[tuple[str | None, ...], list[Target]]
_SEARCH_ERRORS = (JMESPathError, TypeError, ValueError, ArithmeticError, RecursionError)


def _search(expression: str, document: Any) -> Any:
    try:
        return compile_path(expression).search(document)
    except _SEARCH_ERRORS:
        return None


def _key(value: Any) -> str | None:
    """A value an event and a sync can both hold, as text (ids are strings or numbers)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str | int):
        return str(value)
    return None


class Matcher:
    """Finds a source's targets from what an event names, indexed once per listing."""

    def __init__(self) -> None:
        self._indexed: dict[str, tuple[list[Target], Index]] = {}
        self._ids: dict[str, tuple[list[Target], dict[str, Target]]] = {}

    def _by_id(self, source: Source) -> dict[str, Target]:
        targets = source.targets
        known = self._ids.get(source.name)
        if known is None or known[0] is not targets:
            known = (targets, {target.sync_id: target for target in targets})
            self._ids[source.name] = known
        return known[1]

    def _index(self, source: Source, paths: list[str]) -> Index:
        targets = source.targets
        known = self._indexed.get(source.name)
        if known is not None and known[0] is targets:
            return known[1]
        index: Index = {}
        for target in targets:
            key = tuple(_key(_search(path, target.context)) for path in paths)
            if None not in key:
                index.setdefault(key, []).append(target)
        self._indexed[source.name] = (targets, index)
        return index

    def targets(self, source: Source, body: Any) -> list[Target]:
        """The source's syncs the event is about: by sync id, or by matching fields."""
        config = source.config.webhook
        assert config is not None
        id_path = config.id or source.adapter.webhook_id
        if config.match:
            wanted = tuple(_key(_search(path, body)) for path in config.match)
            if None in wanted:
                return []
            return self._index(source, list(config.match.values())).get(wanted, [])
        if id_path is None:
            return []
        sync_id = _key(_search(id_path, body))
        if sync_id is None:
            return []
        target = self._by_id(source).get(sync_id)
        return [] if target is None else [target]

    @staticmethod
    def names_a_sync(source: Source, body: Any) -> bool:
        """Whether the event names a sync at all (by id, or by every field it is matched on)."""
        config = source.config.webhook
        assert config is not None
        if config.match:
            return all(_key(_search(path, body)) is not None for path in config.match)
        id_path = config.id or source.adapter.webhook_id
        return id_path is not None and _key(_search(id_path, body)) is not None


def run_of(source: Source, body: Any, digest: str) -> tuple[str, str] | None:
    """The run an event reports ended: its outcome and identity, or None."""
    config = source.config.webhook
    assert config is not None
    path = config.outcome or source.adapter.webhook_outcome
    outcome = None if path is None else _search(path, body)
    if outcome not in OUTCOMES:
        return None
    run_path = config.run or source.adapter.webhook_run
    found = None if run_path is None else _search(run_path, body)
    identity = _key(found) if not isinstance(found, list | dict) else orjson.dumps(found).decode()
    return str(outcome), f"run:{identity}" if identity is not None else f"body:{digest}"


def deliverer(metrics: SelfMetrics, runs: RunBook, now: Callable[[], float] = time.time) -> Deliver:
    """What `exporter.web.webhooks.receiver` calls with each accepted delivery."""
    matcher = Matcher()

    async def deliver(delivery: Delivery) -> None:
        source = delivery.source
        found = matcher.targets(source, delivery.body)
        if not found:
            metrics.webhook_rejected.labels(source.name, "unmatched").inc()
            # A sync the source has not listed yet (new at the provider): list again soon.
            if matcher.names_a_sync(source, delivery.body):
                source.discovery.rediscover()
            return
        at = now()
        relist = source.adapter.webhook_relist
        if relist is not None and jpath.truthy(_search(relist, delivery.body)):
            for target in found:
                source.discovery.rediscover(target)
        run = run_of(source, delivery.body, delivery.digest)
        for target in found:
            target.event_at = at
            if run is not None:
                runs.get(source.name, target.sync_id).event(run[0], run[1], at)

    return deliver
