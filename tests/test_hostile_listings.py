"""A provider's list of syncs cannot make the exporter request unsafe ids, grow without bound,
or page forever, and a listing that fails keeps the syncs already known.

The exporter runs as users run it (a real process) against a listing served on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.schema import check_sync_id
from exporter.selection import first_by_id
from tests.exposition import Exposition
from tests.hostile import Reply, Route, hostile_server, json_reply
from tests.procs import exporter_command, free_port, run_exporter, running

MiB = 1024 * 1024
Routes = dict[str, Route | Reply]
SEQUIN_SYNC = json_reply(b'{"status": "active"}')


def listing(ids: list[Any]) -> Reply:
    """Sequin's `GET /v1/syncs`: every sync object (here only its id)."""
    return json_reply(json.dumps({"data": [{"id": sync_id} for sync_id in ids]}).encode())


def sequin_config(path: Path, base: str, extra: str = "") -> Path:
    path.write_text(
        f"sources: [{{name: listed, provider: sequin, base_url: '{base}', auth: {{token: t}},"
        f" discover: true{extra}}}]\n"
    )
    return path


def once(config: Path) -> tuple[Exposition, str]:
    result = run_exporter("--config.file", str(config), "--once")
    assert result.returncode == 0, result.stderr
    return Exposition(result.stdout), result.stderr


def read_ids(m: Exposition, source: str = "listed") -> set[str]:
    return {labels["sync_id"] for labels, _ in m.find("sync_up", source=source)}


def test_listed_ids_that_cannot_be_requested_safely_are_dropped(tmp_path: Path) -> None:
    valid = ["ok-1", "é", "x" * 256, "with:colon", 'quo"te', "back\\slash", "{0}", "}{"]
    valid += ["%2F", "?q=1", "#frag", "\u202eevil"]
    invalid: list[Any] = [".", "..", "a/b", "/", "", " ", "tab\tid", "nul\x00id", "x" * 257]
    invalid += ["y" * MiB, 42, None, {"nested": "id"}, True]
    routes: Routes = {"/v1/syncs": listing([*valid, *invalid, "ok-1"]), "/v1/syncs/*": SEQUIN_SYNC}
    with hostile_server(routes) as provider:
        m, _ = once(sequin_config(tmp_path / "c.yml", provider.url))
        requested = [unquote(path) for path in provider.paths()]
    assert read_ids(m) == set(valid)
    assert all(m.value("sync_up", sync_id=sync_id) == 1 for sync_id in valid)
    assert m.value("sync_exporter_syncs_dropped", source="listed", reason="invalid_id") == len(
        invalid
    )
    assert m.value("sync_exporter_syncs_configured", source="listed") == len(valid)
    # The listing, the scrape's one list read (whose objects carry no status here, so each
    # valid sync is then read on its own), and never a request for a dropped id.
    expected = ["/v1/syncs", "/v1/syncs", *(f"/v1/syncs/{i}" for i in valid)]
    assert sorted(requested) == sorted(expected), "no request was made for a dropped id"


def test_one_unreadable_item_costs_that_item_not_the_list(tmp_path: Path) -> None:
    # A lone surrogate escape: valid JSON syntax, but no UTF-8 text can carry it (orjson
    # refuses the whole document for it).
    body = (
        b'{"data": [{"id": "ok-1"}, {"id": "bad-\\ud800"}, {"id": "ok-2"},'
        b' {"id": "bad-2", "name": "\\udfff"}, {"id": "ok-3"}]}'
    )
    routes: Routes = {"/v1/syncs": json_reply(body), "/v1/syncs/*": SEQUIN_SYNC}
    with hostile_server(routes) as provider:
        config = sequin_config(tmp_path / "c.yml", provider.url, ", discover_interval: 1s")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = tmp_path / "exporter.log"
        with running(exporter_command(config, port), f"{url}/-/ready", log=log):
            deadline = time.monotonic() + 30
            while provider.count("/v1/syncs") < 3:
                assert time.monotonic() < deadline, "the source did not list three times"
                time.sleep(0.2)
            m = Exposition(httpx.get(f"{url}/metrics", timeout=30).text)
    assert read_ids(m) == {"ok-1", "ok-2", "ok-3"}
    assert all(m.value("sync_up", sync_id=sync_id) == 1 for sync_id in ("ok-1", "ok-2", "ok-3"))
    assert m.value("sync_exporter_syncs_dropped", source="listed", reason="unreadable_item") == 2
    assert m.value("sync_exporter_errors_total", source="listed", reason="bad_response") == 0
    logged = log.read_text()
    assert logged.count("no UTF-8 can carry") == 1, "logged once, not at every listing"
    assert "Traceback" not in logged


def test_max_syncs_reads_the_first_in_id_order_of_200000_listed(tmp_path: Path) -> None:
    ids = [f"s-{n:06d}" for n in range(200_000)]
    random.Random(9).shuffle(ids)
    routes: Routes = {"/v1/syncs": listing(ids), "/v1/syncs/*": SEQUIN_SYNC}
    with hostile_server(routes) as provider:
        config = sequin_config(
            tmp_path / "c.yml", provider.url, ", max_syncs: 50, discover_interval: 1s"
        )
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = tmp_path / "exporter.log"
        with running(exporter_command(config, port), f"{url}/-/ready", log=log):
            deadline = time.monotonic() + 60
            while provider.count("/v1/syncs") < 2:
                assert time.monotonic() < deadline, "the source did not list twice"
                time.sleep(0.2)
            m = Exposition(httpx.get(f"{url}/metrics", timeout=30).text)
        reads = [path for path in provider.paths() if path.startswith("/v1/syncs/")]
    assert read_ids(m) == {f"s-{n:06d}" for n in range(50)}
    assert m.value("sync_exporter_syncs_dropped", source="listed", reason="max_syncs") == 199_950
    assert m.value("sync_exporter_syncs_configured", source="listed") == 50
    assert set(reads) == {f"/v1/syncs/s-{n:06d}" for n in range(50)}
    warnings = log.read_text().count("the provider lists more syncs than max_syncs")
    assert warnings == 1, "warned once, not at every listing"


def test_two_million_listed_neither_stall_the_exporter_nor_pass_max_syncs(tmp_path: Path) -> None:
    count = 2_000_000
    numbers = list(range(count))
    random.Random(5).shuffle(numbers)
    body = b'{"items":[' + ",".join(f'{{"id":"g{n:07d}","s":"ok"}}' for n in numbers).encode()
    body += b"]}"
    assert 50 * MiB < len(body) < 64 * MiB  # a list page may have 64 MiB
    del numbers
    # The one stall no thread can avoid: orjson holds the GIL while it parses the page. Timed
    # here, in the same run, so the bound below follows the machine's load.
    started = time.monotonic()
    orjson.loads(body)
    parse = time.monotonic() - started
    routes: Routes = {"/v1/all": json_reply(body)}
    with hostile_server(routes) as provider:
        config = tmp_path / "c.yml"
        config.write_text(
            f"sources: [{{name: big, provider: generic, base_url: '{provider.url}',"
            " auth: {token: t}, discover: true, max_syncs: 50,"
            " generic: {list: {path: /v1/all, items: items}, fields: {id: id, status: s},"
            " states: {ok: idle}}}]\n"
        )
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        waits: list[float] = []
        stop = threading.Event()

        def health() -> None:
            while not stop.is_set():
                started = time.monotonic()
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{url}/-/healthy", timeout=60).status_code == 200:
                        waits.append(time.monotonic() - started)
                time.sleep(0.1)

        with running(exporter_command(config, port), f"{url}/-/healthy", log=tmp_path / "e.log"):
            prober = threading.Thread(target=health)
            prober.start()
            try:
                deadline = time.monotonic() + 120
                while httpx.get(f"{url}/-/ready", timeout=60).status_code != 200:
                    assert time.monotonic() < deadline, "the first listing did not end"
                    time.sleep(0.2)
                # A scrape reads the statuses from a fresh listing (no detail request).
                answer = httpx.get(f"{url}/metrics", timeout=60)
            finally:
                stop.set()
                prober.join()
    assert answer.status_code == 200
    m = Exposition(answer.text)
    first = {f"g{n:07d}" for n in range(50)}
    assert read_ids(m, "big") == first
    ups = {m.value("sync_up", source="big", sync_id=sync_id) for sync_id in first}
    assert ups == {1}, [
        line for line in answer.text.splitlines() if "big" in line and "sync_" not in line[:5]
    ][:40]
    assert m.value("sync_exporter_syncs_dropped", source="big", reason="max_syncs") == count - 50
    assert provider.count("/v1/all") >= 2
    # /-/healthy answered all along, held at most about one parse: before the fix, one wait was
    # 19 s against a parse of 1.3 s.
    assert len(waits) > 10 and max(waits) < 2 * parse + 1.0, (parse, sorted(waits)[-5:])


def terminal_config(path: Path, base: str, extra: str = "") -> Path:
    path.write_text(
        f"sources: [{{name: fleet, provider: terminal, base_url: '{base}', auth: {{token: t}},"
        f" discover: true{extra}}}]\n"
    )
    return path


def connection(connection_id: str) -> dict[str, Any]:
    return {"id": connection_id, "status": "connected", "token": f"con_tkn_{connection_id}"}


def pages(ids: list[str], follow: Callable[[str | None], str | None]) -> Callable[..., Reply]:
    """`GET /connections` with one connection per page; `follow` gives each page's next cursor."""

    def answer(query: dict[str, list[str]]) -> Reply:
        cursor = query.get("cursor", [None])[0]
        index = 0 if cursor is None else int(cursor.strip("c")) % len(ids)
        page: dict[str, Any] = {"results": [connection(ids[index])]}
        following = follow(cursor)
        if following is not None:
            page["next"] = following
        return json_reply(json.dumps(page).encode())

    return answer


LATEST_JOB = json_reply(
    b'{"results": [{"id": "sync_1", "status": "completed", "completedAt": "2024-05-01T00:00:00Z"}]}'
)


def test_a_listing_whose_cursor_comes_back_fails_and_reads_nothing(tmp_path: Path) -> None:
    cycle = {None: "c1", "c1": "c2", "c2": "c1"}
    routes: Routes = {"/connections": pages(["a", "b", "c"], cycle.get), "/syncs": LATEST_JOB}
    with hostile_server(routes) as provider:
        m, log = once(terminal_config(tmp_path / "c.yml", provider.url))
        assert provider.count("/connections") == 3
        assert provider.count("/syncs") == 0
    assert not m.has("sync_up", source="fleet")
    assert m.value("sync_exporter_errors_total", source="fleet", reason="bad_response") == 1
    assert "the list's next cursor repeats an earlier one" in log


def test_an_endless_listing_fails_after_1000_pages(tmp_path: Path) -> None:
    def endless(cursor: str | None) -> str:
        return f"c{1 if cursor is None else int(cursor[1:]) + 1}"

    routes: Routes = {
        "/connections": pages([f"conn{n}" for n in range(5)], endless),
        "/syncs": LATEST_JOB,
    }
    with hostile_server(routes) as provider:
        m, log = once(terminal_config(tmp_path / "c.yml", provider.url))
        assert provider.count("/connections") == 1000
        assert provider.count("/syncs") == 0, "a truncated list is not taken for the whole"
    assert not m.has("sync_up", source="fleet")
    assert m.value("sync_exporter_errors_total", source="fleet", reason="bad_response") == 1
    assert "the list did not end within 1000 pages" in log


def test_detail_pages_whose_cursor_comes_back_fail_that_sync_alone(tmp_path: Path) -> None:
    """Merge's detail comes in pages: a cursor that repeats, or a page without its array,
    fails that account's read and says why; the other account is read."""
    cycle = {None: "c1", "c1": "c2", "c2": "c1"}

    def status(query: dict[str, list[str]]) -> Reply:
        cursor = query.get("cursor", [None])[0]
        model = {"model_name": f"M{cursor}", "status": "DONE", "last_sync_result": "DONE"}
        return json_reply(json.dumps({"next": cycle[cursor], "results": [model]}).encode())

    def broken(query: dict[str, list[str]]) -> Reply:
        if query.get("cursor"):
            return json_reply(b'{"next": null, "results": "none"}')
        return json_reply(b'{"next": "c1", "results": [{"status": "DONE"}]}')

    good = {"next": None, "results": [{"model_name": "Team", "status": "DONE"}]}
    routes: dict[str, Route | Reply] = {
        "/loop/api/hris/v1/sync-status": status,
        "/broken/api/hris/v1/sync-status": broken,
        "/good/api/hris/v1/sync-status": json_reply(json.dumps(good).encode()),
    }
    with hostile_server(routes) as provider:
        sources = [
            {
                "name": name,
                "provider": "generic",
                "preset": "merge",
                "base_url": f"{provider.url}/{name}",
                "auth": {"token": "k"},
                "syncs": [{"id": name, "headers": {"X-Account-Token": "t"}}],
            }
            for name in ("loop", "broken", "good")
        ]
        (tmp_path / "m.yml").write_text(json.dumps({"sources": sources}))
        m, log = once(tmp_path / "m.yml")
        assert provider.count("/loop/api/hris/v1/sync-status") == 3
    assert m.value("sync_up", sync_id="loop") == 0
    assert m.value("sync_up", sync_id="broken") == 0
    assert m.value("sync_up", sync_id="good") == 1
    assert m.value("sync_exporter_errors_total", source="loop", reason="bad_response") == 1
    assert m.value("sync_exporter_errors_total", source="broken", reason="bad_response") == 1
    assert "the detail's next cursor repeats an earlier one" in log
    assert "the detail body's 'results' is no JSON array" in log


def test_a_failing_listing_keeps_the_last_good_list(tmp_path: Path) -> None:
    ids = ["conn_a", "conn_b"]
    modes: dict[str, Callable[..., Reply]] = {
        "good": pages(ids, lambda cursor: "c1" if cursor is None else None),
        "cursor-cycle": pages(ids, lambda cursor: "c1"),
        "server-error": lambda query: json_reply(b'{"error": "down"}', 500),
        "not-a-list": lambda query: json_reply(b'{"results": "nope"}'),
        "truncated": lambda query: json_reply(b'{"results": [{"id": "conn_c"'),
        "smaller": pages(["conn_c"], lambda cursor: None),
    }
    mode = ["good"]
    routes: Routes = {"/connections": lambda query: modes[mode[0]](query), "/syncs": LATEST_JOB}
    with hostile_server(routes) as provider:
        config = terminal_config(tmp_path / "c.yml", provider.url, ", discover_interval: 1s")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = tmp_path / "exporter.log"

        def scrape() -> Exposition:
            return Exposition(httpx.get(f"{url}/metrics", timeout=30).text)

        def errors(m: Exposition, reason: str) -> float:
            found = m.find("sync_exporter_errors_total", source="fleet", reason=reason)
            return found[0][1] if found else 0.0

        with running(exporter_command(config, port), f"{url}/-/ready", log=log):
            assert read_ids(scrape(), "fleet") == set(ids)
            for failing, reason in (
                ("cursor-cycle", "bad_response"),
                ("server-error", "server_error"),
                ("not-a-list", "bad_response"),
                ("truncated", "bad_response"),
            ):
                before = errors(scrape(), reason)
                mode[0] = failing
                deadline = time.monotonic() + 20
                while errors(m := scrape(), reason) <= before:
                    assert time.monotonic() < deadline, f"no failed listing in mode {failing}"
                    time.sleep(0.2)
                assert read_ids(m, "fleet") == set(ids), failing
                assert all(m.value("sync_up", sync_id=sync_id) == 1 for sync_id in ids)
            mode[0] = "smaller"
            deadline = time.monotonic() + 20
            while read_ids(m := scrape(), "fleet") != {"conn_c"}:
                assert time.monotonic() < deadline, "a good listing did not replace the list"
                time.sleep(0.2)
    logged = log.read_text()
    assert logged.count("cannot list syncs, keeping the ones known") == 3, (
        "one warning per change of reason, not one per retry"
    )
    assert logged.count("listing syncs works again") == 1


@settings(max_examples=300, deadline=None)
@given(
    ids=st.lists(
        st.sampled_from(["", ".", "a/b", "x y", *(f"s{n}" for n in range(40))]), max_size=80
    ),
    cap=st.integers(min_value=0, max_value=12),
    keep=st.sets(st.sampled_from([f"s{n}" for n in range(40)]), max_size=4),
)
def test_picking_before_the_cap_reads_what_discovery_would_have(
    ids: list[str], cap: int, keep: set[str]
) -> None:
    def owns(sync_id: str) -> bool:
        return zlib.crc32(sync_id.encode()) % 3 != 0

    def read(pairs: list[tuple[str, Any]]) -> tuple[list[str], int]:
        # Discovery's own cut: first item per id, valid, owned, not configured, in id order.
        listed: dict[str, Any] = {}
        for sync_id, item in pairs:
            if check_sync_id(sync_id) is None:
                listed.setdefault(sync_id, item)
        extra = sorted(s for s in listed if s not in keep and owns(s))
        return extra[:cap], max(len(extra) - cap, 0)

    pairs = [(sync_id, index) for index, sync_id in enumerate(ids)]
    chosen, beyond = first_by_id(pairs, keep, cap, owns)
    whole, dropped = read(pairs)
    picked, picked_dropped = read(chosen)
    assert picked == whole
    # Items beyond are counted per item (an id listed twice there counts twice).
    assert picked_dropped + beyond >= dropped
    assert all(pair in chosen for pair in pairs if pair[0] in keep)
