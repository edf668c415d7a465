"""What a Paragon source keeps of a listed sync between listings, and what `read` makes of it."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from exporter.config import parse_config
from exporter.exposition.selfmetrics import SelfMetrics
from exporter.exposition.targets import Shard, Target
from exporter.providers.paragon import Paragon, ParagonConfig, ParagonSync
from exporter.sources.source import Source, build_source, carry_over
from exporter.sources.sourcemetrics import SourcesCollector
from exporter.transport.http1 import Client

ITEM = {
    "id": "sync-1",
    "configurationName": "Listed name",
    "integration": "salesforce",
    "pipeline": "contacts",
    "metadata": {"team": "blue"},
    "createdAt": "2024-01-01T00:00:00Z",
}


class Answers:
    """An Http that answers the listing and one sync's status from fixed bodies."""

    def __init__(self, status: dict[str, Any]) -> None:
        self.status = status

    async def get(self, url: str, headers: Mapping[str, str], *, listing: bool = False) -> Any:
        return {"data": [ITEM]} if listing else self.status

    async def post(self, url: str, headers: Mapping[str, str], form: bytes) -> Any:
        raise AssertionError("no token requests with a static token")


def adapter(**extra: Any) -> Paragon:
    config = ParagonConfig.model_validate(
        {"name": "p", "provider": "paragon", "auth": {"token": "t"}, "discover": True, **extra}
    )
    return Paragon(config, Shard())


def listed(source: Paragon, http: Answers) -> ParagonSync:
    found = asyncio.run(source.discover(http))[""]
    assert isinstance(found, list) and len(found) == 1
    context = found[0].context
    assert isinstance(context, ParagonSync)
    return context


def read(source: Paragon, context: ParagonSync, http: Answers) -> dict[str, str]:
    target = Target("p", "sync-1", "", (), None, context=context)
    return asyncio.run(source.read(target, http)).info


def test_without_label_from_only_the_names_of_a_listed_sync_are_kept() -> None:
    http = Answers({"status": "IDLE"})
    source = adapter()
    context = listed(source, http)
    assert context.item is None
    assert (context.name, context.integration, context.pipeline) == (
        "Listed name",
        "salesforce",
        "contacts",
    )
    info = read(source, context, http)
    assert (info["name"], info["integration"], info["pipeline"]) == (
        "Listed name",
        "salesforce",
        "contacts",
    )


def test_label_from_reads_keys_only_the_listing_has_and_the_status_wins_over_it() -> None:
    http = Answers({"status": "IDLE", "configurationName": "Own name", "metadata": {"team": "red"}})
    source = adapter(label_from={"team": "metadata.team", "created": "createdAt"})
    context = listed(source, http)
    assert context.item is not None
    info = read(source, context, http)
    assert info["name"] == "Own name"
    assert info["integration"] == "salesforce"
    assert info["team"] == "red"
    assert info["created"] == "2024-01-01T00:00:00Z"


def no_client() -> Client:
    raise AssertionError("nothing is requested")


def source(extra: str = "") -> Source:
    config = parse_config(
        "sources: [{name: p, provider: paragon, base_url: 'http://127.0.0.1:9',"
        f" auth: {{token: t}}, discover: true{extra}}}]\n",
        "test",
    )
    metrics = SelfMetrics(SourcesCollector(list))
    return build_source(config.sources[0], config.collector, no_client, metrics)


def test_a_reload_that_adds_label_from_lists_again_one_that_changes_a_label_does_not() -> None:
    """Listed items are kept only for label_from: a listing kept without them cannot serve it."""
    old = source()
    listing = asyncio.run(old.adapter.discover(Answers({})))
    old.discovery._listed = listing  # type: ignore[assignment]
    old.discovery._rebuild()
    assert [target.sync_id for target in old.targets] == ["sync-1"]
    relabelled = carry_over(old, source(", labels: {team: a}"))
    assert [target.sync_id for target in relabelled.targets] == ["sync-1"]
    described = carry_over(old, source(", label_from: {team: metadata.team}"))
    assert described.targets == [], "listed afresh, with the items label_from reads"
