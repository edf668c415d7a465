"""What the exporter costs each provider, counted on the provider's side (the simulator).

Every figure comes from the simulator's own request log, never from the exporter's counters:
one scrape's requests per provider, `min_interval` serving earlier readings, and
`max_requests_per_second` holding across scrapes and listings.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from exporter.collect.collector import Collector
from exporter.collect.readpolicy import fresh_for
from exporter.config import Config, parse_config
from exporter.simulator.providers import generic as pipelines
from exporter.simulator.providers import nango
from exporter.sources.upstream import Budget
from tests.conftest import Sim
from tests.exposition import Exposition
from tests.procs import exporter_command, free_port, running

PARAGON_BODY: dict[str, object] = {
    "status": "IDLE",
    "summary": {"totalRecords": 5, "syncedRecordsCount": 5},
}


@contextmanager
def exporter(config: Path, text: str) -> Iterator[str]:
    config.write_text(text)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(exporter_command(config, port), f"{url}/-/ready", log=config.with_suffix(".log")):
        yield url


def scrape(url: str, timeout: str = "10") -> Exposition:
    headers = {"X-Prometheus-Scrape-Timeout-Seconds": timeout}
    response = httpx.get(f"{url}/metrics", headers=headers, timeout=30)
    assert response.status_code == 200
    return Exposition(response.text)


def provider_requests(sim: Sim) -> dict[str, int]:
    counts: dict[str, int] = sim.http.get("/_sim/requests").json()["providers"]
    return counts


def paragon_syncs(sim: Sim, prefix: str, count: int) -> list[str]:
    ids = [f"{prefix}-{n:03d}" for n in range(count)]
    for sync_id in ids:
        sim.create("paragon", sync_id, PARAGON_BODY)
    return ids


def paragon_source(sim: Sim, ids: list[str], extra: str = "") -> str:
    return (
        f"sources: [{{name: p, provider: paragon, base_url: '{sim.base}/paragon',"
        f" auth: {{token: {sim.paragon_token()}}}, syncs: [{', '.join(ids)}]{extra}}}]\n"
    )


def test_one_scrape_costs_what_the_readme_says_per_provider(sim: Sim, workdir: Path) -> None:
    acme = sim.paragon()["users"]["acme"]
    for n in range(3):
        sim.connection(f"conn_cost_{n}", tags=["cost3"])
        sim.job(
            f"conn_cost_{n}",
            f"sync_cost_{n}",
            {
                "status": "completed",
                "requestedAt": "2026-11-20T00:00:00.000Z",
                "completedAt": "2026-11-20T01:00:00Z",
            },
        )
    text = (
        "sources:\n"
        f"  - {{name: p, provider: paragon, base_url: '{sim.base}/paragon',"
        f" auth: {sim.paragon_auth()}, users: [acme], discover: true}}\n"
        f"  - {{name: t, provider: terminal, base_url: '{sim.base}/terminal/tsp/v1',"
        " auth: {token: sim-terminal-secret}, discover: true, connections: {tag: cost3}}\n"
        f"  - {{name: s, provider: sequin, base_url: '{sim.base}/sequin',"
        " auth: {token: sim-sequin-key}, discover: true}\n"
        f"  - {{name: n, provider: generic, preset: nango, base_url: '{sim.base}/nango',"
        f" auth: {{token: {nango.SECRET}}}, discover: true,"
        f" generic: {{list: {{params: {{provider_config_key: {nango.INTEGRATION}}}}}}}}}\n"
        f"  - {{name: g, provider: generic, base_url: '{sim.base}/generic',"
        f" auth: {{header: X-Api-Key, token: {pipelines.KEY}}}, discover: true,"
        f" generic: {json.dumps(pipelines.MAPPING)}}}\n"
    )
    with exporter(workdir / "cost.yml", text) as url:
        sim.reset_requests()
        m = scrape(url)
        sequin_syncs = len(m.find("sync_up", source="s"))
        assert sequin_syncs >= 6
        assert len(m.find("sync_up", source="n")) >= 5
        # Paragon: one request per sync (the list lacks records and the last success);
        # Terminal: one per connection (its latest job, completed here); Sequin: one list;
        # generic: one listing when it carries the statuses (Nango), else one per sync.
        assert {name: count for name, count in provider_requests(sim).items() if count} == {
            "paragon": len(acme),
            "terminal": 3,
            "sequin": 1,
            "nango": 1,
            "generic": len(m.find("sync_up", source="g")),
        }


def test_min_interval_serves_earlier_readings_until_it_passes(sim: Sim, workdir: Path) -> None:
    ids = paragon_syncs(sim, "mi", 3)
    with exporter(workdir / "mi.yml", paragon_source(sim, ids, ", min_interval: 3s")) as url:
        sim.reset_requests()
        first = scrape(url)
        second = scrape(url)
        assert provider_requests(sim)["paragon"] == 3
        read_at = first.value("sync_status_read_timestamp_seconds", sync_id="mi-000")
        assert second.value("sync_status_read_timestamp_seconds", sync_id="mi-000") == read_at
        assert second.value("sync_up", sync_id="mi-000") == 1
        assert second.value("sync_exporter_readings_reused_total", source="p") == 3
        time.sleep(3.1)
        third = scrape(url)
        assert provider_requests(sim)["paragon"] == 6
        assert third.value("sync_status_read_timestamp_seconds", sync_id="mi-000") > read_at


def test_scrapes_with_different_timeouts_share_one_read_in_flight(sim: Sim, workdir: Path) -> None:
    ids = paragon_syncs(sim, "fly", 3)
    text = paragon_source(sim, ids, ", min_interval: 10s")
    with exporter(workdir / "fly.yml", text) as url:
        for sync_id in ids:
            sim.fault("paragon", sync_id, {"delay": 1.0})
        try:
            sim.reset_requests()
            scrapes: list[Exposition] = []
            # Each timeout its own collection (up to four at once), all while the reads wait.
            flood = [
                threading.Thread(target=lambda t=t: scrapes.append(scrape(url, str(t))))
                for t in (3, 4, 5, 6, 7, 8, 3.5, 4.5)
            ]
            for thread in flood:
                thread.start()
                time.sleep(0.1)
            for thread in flood:
                thread.join()
            reads = sim.requests()
        finally:
            for sync_id in ids:
                sim.clear_fault("paragon", sync_id)
    assert len(scrapes) == len(flood)
    for exposition in scrapes:
        assert {labels["sync_id"]: v for labels, v in exposition.find("sync_up")} == dict.fromkeys(
            ids, 1.0
        )
    per_sync = {
        sync_id: sum(n for path, n in reads.items() if path.endswith(sync_id)) for sync_id in ids
    }
    assert per_sync == dict.fromkeys(ids, 1), reads


def test_a_shared_read_cut_short_by_its_scrape_is_done_again_for_a_longer_one(
    sim: Sim, workdir: Path
) -> None:
    ids = paragon_syncs(sim, "cut", 1)
    with exporter(workdir / "cut.yml", paragon_source(sim, ids, ", min_interval: 10s")) as url:
        sim.fault("paragon", ids[0], {"delay": 2.0})
        try:
            answers: dict[str, Exposition] = {}
            short = threading.Thread(target=lambda: answers.update(short=scrape(url, "1")))
            short.start()
            time.sleep(0.3)
            answers["long"] = scrape(url, "8")
            short.join()
        finally:
            sim.clear_fault("paragon", ids[0])
    # A 1 s client must not cut short the answer to a 8 s scrape that joined its read.
    assert answers["short"].value("sync_up", sync_id=ids[0]) == 0
    assert answers["long"].value("sync_up", sync_id=ids[0]) == 1


def test_a_reading_is_fresh_until_min_interval_less_a_tenth_at_most_a_second() -> None:
    """Jitter in scrape times is absorbed, and ten scrape intervals read every tenth scrape,
    not every ninth (a flat 90% made 20 s fresh for 18 s: 0.111 requests per sync)."""
    assert fresh_for(0) == 0
    assert fresh_for(4) == pytest.approx(3.6)
    assert fresh_for(10) == pytest.approx(9)
    assert fresh_for(20) == pytest.approx(19)
    scrape_interval = 15.0
    reread = next(k for k in range(1, 100) if k * scrape_interval >= fresh_for(150))
    assert reread == 10


def test_a_reading_older_than_its_staleness_budget_is_read_again(sim: Sim, workdir: Path) -> None:
    ids = paragon_syncs(sim, "old", 2)
    text = paragon_source(sim, ids, ", min_interval: 1h, stale_after: 1s")
    with exporter(workdir / "old.yml", text) as url:
        sim.reset_requests()
        scrape(url)
        time.sleep(1.5)
        later = scrape(url)
        assert provider_requests(sim)["paragon"] == 4
        assert later.value("sync_exporter_readings_reused_total", source="p") == 0
        assert all(value == 1 for _, value in later.find("sync_up", source="p"))


def test_the_budget_holds_across_scrapes_and_listings_oldest_first(sim: Sim, workdir: Path) -> None:
    ids = paragon_syncs(sim, "bud", 30)
    text = paragon_source(sim, ids, ", max_requests_per_second: 10")
    with exporter(workdir / "budget.yml", text) as url:
        sim.reset_requests()
        seen: dict[str, float] = {}
        scrapes: list[Exposition] = []
        for _ in range(4):
            # Two scrapes at once with short deadlines: the budget is shared between them.
            both = [
                threading.Thread(target=lambda: scrapes.append(scrape(url, "1.5")))
                for _ in range(2)
            ]
            for thread in both:
                thread.start()
            for thread in both:
                thread.join()
            for labels, value in scrapes[-1].find("sync_status_read_timestamp_seconds"):
                seen[labels["sync_id"]] = value
            time.sleep(1.1)
        log = sim.http.get("/_sim/requests").json()
        assert log["max_per_second"]["paragon"] <= 10
        # Every sync was read within the four scrapes: the least recently read go first.
        assert set(seen) == set(ids)
        last = scrapes[-1]
        assert last.value("sync_exporter_budget_deferred_total", source="p") > 0
        # A deferred sync with no reading yet is down, never a made-up answer.
        first_round = scrapes[0]
        down = [labels for labels, value in first_round.find("sync_up") if value == 0]
        assert down and all(labels["sync_id"] not in ("",) for labels in down)
        assert first_round.value("sync_exporter_errors_total", source="p", reason="timeout") == 0


def test_the_budget_holds_through_a_reload_every_300_ms(sim: Sim, workdir: Path) -> None:
    ids = paragon_syncs(sim, "rel", 40)
    config = workdir / "reload.yml"

    def write(round_: int, rate: int) -> None:
        # A label that changes each time rebuilds the source; so does a changed limit.
        extra = f", max_requests_per_second: {rate}, labels: {{round: '{round_}'}}"
        config.write_text(paragon_source(sim, ids, extra))

    write(0, 5)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = exporter_command(config, port, "--web.enable-lifecycle")
    stop = threading.Event()
    scraped: list[int] = []

    def scrapes() -> None:
        while not stop.is_set():
            headers = {"X-Prometheus-Scrape-Timeout-Seconds": "2"}
            scraped.append(httpx.get(f"{url}/metrics", headers=headers, timeout=30).status_code)

    with running(command, f"{url}/-/ready", log=workdir / "reload.log"):
        sim.reset_requests()
        scraper = threading.Thread(target=scrapes)
        scraper.start()
        try:
            for round_ in range(1, 25):
                # The same limit for the first half, then 4 and 5 in turn.
                write(round_, 5 if round_ < 12 or round_ % 2 else 4)
                assert httpx.post(f"{url}/-/reload", timeout=20).status_code == 200
                time.sleep(0.3)
        finally:
            stop.set()
            scraper.join()
        log = sim.http.get("/_sim/requests").json()
    assert scraped and set(scraped) == {200}
    # The provider saw requests all along, and never more than the budget in any second.
    assert log["providers"]["paragon"] >= 20
    assert log["max_per_second"]["paragon"] <= 5, log["per_second"]["paragon"]


def test_the_budget_holds_where_requests_are_written_however_late_after_grant() -> None:
    """Granted requests a busy loop holds back and then writes together never exceed the rate
    over any window of their write times: a token counts from its write, and until then it
    is spent."""
    rate = 10
    budget = Budget(rate)
    written: list[float] = []
    rng = random.Random(7)

    async def request(until: float) -> None:
        while True:
            spend = await budget.take(until)
            if spend is None:
                return
            # The loop is busy for a while between the grant and the write, unevenly.
            await asyncio.sleep(rng.choice((0.0, 0.0, 0.05, 0.3)))
            written.append(time.monotonic())
            spend()

    async def main() -> None:
        until = time.monotonic() + 3.0
        await asyncio.gather(*(request(until) for _ in range(15)))

    asyncio.run(main())
    written.sort()
    assert len(written) >= 2 * rate
    spans = [later - first for first, later in zip(written, written[rate:], strict=False)]
    assert min(spans) >= budget.window - 0.001


def test_a_reload_that_sets_min_interval_serves_earlier_readings_from_then_on(
    sim: Sim, workdir: Path
) -> None:
    ids = paragon_syncs(sim, "rmi", 3)
    config = workdir / "rmi.yml"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config.write_text(paragon_source(sim, ids))
    command = exporter_command(config, port, "--web.enable-lifecycle")
    with running(command, f"{url}/-/ready", log=workdir / "rmi.log"):
        sim.reset_requests()
        scrape(url)
        scrape(url)
        assert provider_requests(sim)["paragon"] == 6
        config.write_text(paragon_source(sim, ids, ", min_interval: 30s"))
        assert httpx.post(f"{url}/-/reload", timeout=20).status_code == 200
        # The first scrape after the reload may already reuse the readings carried over.
        after_reload = scrape(url).find("sync_exporter_readings_reused_total", source="p")
        before = sum(value for _, value in after_reload)
        sim.reset_requests()
        third = scrape(url)
        assert provider_requests(sim).get("paragon", 0) == 0
        assert third.value("sync_exporter_readings_reused_total", source="p") == before + 3
        config.write_text(paragon_source(sim, ids))
        assert httpx.post(f"{url}/-/reload", timeout=20).status_code == 200
        sim.reset_requests()
        scrape(url)
        assert provider_requests(sim)["paragon"] >= 3


def test_a_sources_read_policy_is_built_with_it_and_its_budget_kept_across_reloads() -> None:
    def config(extra: str) -> Config:
        text = f"sources: [{{name: p, provider: paragon, auth: {{token: t}}, syncs: [a]{extra}}}]"
        return parse_config(text, "policy.yml")

    async def main() -> None:
        collector = Collector(config(", min_interval: 10s, max_requests_per_second: 5"))
        (source,) = collector.sources
        assert source.policy.fresh_for == fresh_for(10)
        budget = source.policy.budget
        assert budget is not None and budget.rate == 5
        # The upstream spends from the policy's bucket: one budget per source, not two.
        assert source.upstream.budget is budget
        collector.apply(config(", min_interval: 4s, max_requests_per_second: 2"))
        (rebuilt,) = collector.sources
        assert rebuilt is not source
        assert rebuilt.policy.fresh_for == fresh_for(4)
        assert rebuilt.policy.budget is budget and rebuilt.upstream.budget is budget
        assert budget.rate == 2
        collector.apply(config(""))
        (plain,) = collector.sources
        assert plain.policy.fresh_for == 0 and plain.policy.budget is None
        assert plain.upstream.budget is None
        await collector.close()

    asyncio.run(main())
