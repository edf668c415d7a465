"""A provider that breaks HTTP or JSON in every way costs only the syncs it answers, as data.

Each test runs the exporter as users do (`--once`, a real process) against a provider on
127.0.0.1 that answers each sync in its own wrong way; every failure must be that sync's
`sync_up 0` with the right reason, never another sync's, never the scrape.
"""

from __future__ import annotations

import gzip
import time
import zlib
from email.utils import formatdate
from pathlib import Path

import httpx

from tests.exposition import Exposition
from tests.hostile import Reply, hostile_server, json_reply
from tests.procs import exporter_command, free_port, run_exporter, running

FINE = json_reply(b'{"status": "active", "name": "fine"}')
MiB = 1024 * 1024
GZIP = {"Content-Encoding": "gzip"}


def paragon_source(name: str, base: str, syncs: list[str], extra: str = "") -> str:
    """A source reading each sync with a request of its own (Paragon's), so every hostile
    answer below is one sync's."""
    ids = ", ".join(f"'{sync_id}'" for sync_id in syncs)
    return (
        f"  - {{name: {name}, provider: paragon, base_url: '{base}', auth: {{token: t}},"
        f" syncs: [{ids}]{extra}}}\n"
    )


def once(tmp_path: Path, sources: str, collector: str = "") -> tuple[Exposition, str]:
    config = tmp_path / "config.yml"
    config.write_text(f"sources:\n{sources}collector: {{{collector}}}\n")
    result = run_exporter("--config.file", str(config), "--once")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return Exposition(result.stdout), result.stderr


def test_json_of_every_broken_shape_is_a_bad_response_of_its_own_sync(tmp_path: Path) -> None:
    broken = {
        "truncated": b'{"status": "act',
        "html": b"<html><body>502 Bad Gateway</body></html>",
        "empty": b"",
        "array": b'[{"status": "active"}]',
        "null": b"null",
        "number": b"42",
        "string": b'"active"',
        "no-status": b'{"name": "x"}',
        "status-number": b'{"status": 1}',
        "status-null": b'{"status": null}',
        "nan-token": b'{"status": "active", "rate_limit": {"interval": NaN}}',
        "infinite-number": b'{"status": "active", "rate_limit": {"interval": 1e400}}',
        "invalid-utf8": b'{"status": "\xff\xfe"}',
        "lone-surrogate": b'{"status": "\\ud800"}',
        "deep": b'{"status": "active", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        "byte-order-mark": b'\xef\xbb\xbf{"status": "active"}',
        "two-documents": b'{"status": "active"}{"status": "idle"}',
    }
    routes: dict[str, Reply] = {
        f"/api/syncs/{key}": json_reply(body) for key, body in broken.items()
    }
    undecodable = {
        "gzip-garbage": json_reply(b'{"status": "active"}', headers=GZIP),
        "brotli-unasked": json_reply(b'{"status": "active"}', headers={"Content-Encoding": "br"}),
    }
    routes.update({f"/api/syncs/{key}": reply for key, reply in undecodable.items()})
    routes["/api/syncs/fine"] = FINE
    syncs = [*broken, *undecodable, "fine"]
    with hostile_server(routes) as provider:
        m, _ = once(tmp_path, paragon_source("broken", provider.url, syncs))
    for sync_id in syncs[:-1]:
        assert m.value("sync_up", sync_id=sync_id) == 0, sync_id
    assert m.value("sync_up", sync_id="fine") == 1
    errors = m.value("sync_exporter_errors_total", source="broken", reason="bad_response")
    assert errors == len(syncs) - 1, "a body that cannot be decompressed is no connect failure"
    ok = m.value("sync_exporter_upstream_requests_total", source="broken", code="200")
    assert ok >= len(broken) + 1


def test_redirects_are_not_followed_so_credentials_never_leave(tmp_path: Path) -> None:
    with hostile_server({"/api/syncs/target": FINE}) as elsewhere:
        codes = (301, 302, 303, 307, 308)
        routes: dict[str, Reply] = {
            f"/api/syncs/r{code}": Reply(
                status=code, headers={"Location": f"{elsewhere.url}/api/syncs/target"}
            )
            for code in codes
        }
        routes["/api/syncs/fine"] = FINE
        with hostile_server(routes) as provider:
            syncs = [f"r{code}" for code in codes]
            m, _ = once(tmp_path, paragon_source("moved", provider.url, [*syncs, "fine"]))
        assert elsewhere.seen == [], "the redirect's target never saw a request, or a token"
    for code in codes:
        assert m.value("sync_up", sync_id=f"r{code}") == 0
        assert m.value("sync_exporter_upstream_requests_total", source="moved", code=str(code)) == 1
    assert m.value("sync_exporter_errors_total", source="moved", reason="bad_response") == 5
    assert m.value("sync_up", sync_id="fine") == 1


def test_resets_hangs_and_stalls_cost_their_own_sync(tmp_path: Path) -> None:
    body = b'{"status": "active", "pad": "' + b"x" * 100_000 + b'"}'
    routes = {
        "/api/syncs/silent": Reply(silent=True),
        "/api/syncs/reset-before-answering": Reply(silent=True, then="reset"),
        "/api/syncs/reset-after-headers": Reply(body, cut=0, then="reset"),
        "/api/syncs/reset-mid-body": Reply(body, cut=50_000, then="reset"),
        "/api/syncs/closed-mid-body": Reply(body, cut=50_000, then="close"),
        "/api/syncs/stalled-mid-body": Reply(body, cut=50_000, then="stall"),
        "/api/syncs/fine": FINE,
    }
    with hostile_server(routes) as provider:
        syncs = [path.rsplit("/", 1)[1] for path in routes]
        started = time.monotonic()
        m, _ = once(tmp_path, paragon_source("rude", provider.url, syncs, ", request_timeout: 1s"))
        assert time.monotonic() - started < 30, "a stalled provider holds a read 1 s, not more"
    for sync_id in syncs[:-1]:
        assert m.value("sync_up", sync_id=sync_id) == 0, sync_id
    assert m.value("sync_up", sync_id="fine") == 1
    assert m.value("sync_exporter_errors_total", source="rude", reason="timeout") == 2
    assert m.value("sync_exporter_errors_total", source="rude", reason="connect") == 4


def gzip_bomb(size: int) -> bytes:
    """`size` zero bytes, gzip-compressed about a thousandfold."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"\0" * MiB
    return b"".join([*(compressor.compress(chunk) for _ in range(size // MiB)), compressor.flush()])


def test_twenty_megabyte_bodies_and_gzip_bombs_are_refused(tmp_path: Path) -> None:
    huge = b'{"status": "active", "pad": "' + b"x" * (20 * MiB) + b'"}'
    listing_body = b'{"data": [{"id": "listed"}], "pad": "' + b"x" * (20 * MiB) + b'"}'
    bomb = gzip_bomb(256 * MiB)
    assert len(bomb) < MiB
    routes = {
        "/api/syncs/huge": json_reply(huge),
        "/api/syncs/huge-unannounced": Reply(huge, length=False),
        "/api/syncs/bomb": json_reply(gzip.compress(huge, 1), headers=GZIP),
        "/api/syncs/listed": FINE,
    }
    with hostile_server({**routes, "/api/syncs": json_reply(listing_body)}) as provider:
        sources = paragon_source("big", provider.url, ["huge", "huge-unannounced", "bomb"])
        sources += paragon_source("lists", provider.url, [], ", discover: true")
        m, log = once(tmp_path, sources)
    for sync_id in ("huge", "huge-unannounced", "bomb"):
        assert m.value("sync_up", sync_id=sync_id) == 0
    assert m.value("sync_exporter_errors_total", source="big", reason="bad_response") == 3
    assert "body larger than 4194304 bytes" in log
    assert m.value("sync_up", source="lists", sync_id="listed") == 1, "a 20 MB list page is read"
    routes["/api/syncs"] = json_reply(bomb, headers=GZIP)
    with hostile_server(routes) as provider:
        m, log = once(tmp_path, paragon_source("lists", provider.url, [], ", discover: true"))
    assert not m.has("sync_up", source="lists"), "a list page beyond 64 MiB is no listing"
    assert m.value("sync_exporter_errors_total", source="lists", reason="bad_response") == 1
    assert "body larger than 67108864 bytes" in log


def test_each_retry_after_form_stops_its_source_as_long_as_it_says(tmp_path: Path) -> None:
    def limited(retry_after: str | None, body: bytes = b"{}") -> Reply:
        headers = {} if retry_after is None else {"Retry-After": retry_after}
        return json_reply(body, 429, headers)

    # (reply, the wait expected): the exporter reports what is left of the wait when it
    # renders, up to a few seconds later, so each range allows 10 s and no two overlap.
    forms = {
        "seconds": (limited("40"), (30, 40)),
        "fraction": (limited("20.5"), (10.5, 20.5)),
        "http-date": (limited(formatdate(time.time() + 100, usegmt=True)), (90, 100)),
        "past-date": (limited(formatdate(time.time() - 60, usegmt=True)), (0, 0)),
        "negative": (limited("-5"), (0, 0)),
        "garbage": (limited("soon"), (50, 60)),
        "nan": (limited("nan"), (50, 60)),
        "endless": (limited("inf"), (190, 200)),
        "body-only": (limited(None, b'{"retryAfter": 30}'), (20, 30)),
        "nothing": (limited(None), (50, 60)),
        "header-over-body": (limited("10", b'{"retryAfter": 30}'), (0, 10)),
    }
    routes = {f"/api/syncs/{form}": reply for form, (reply, _) in forms.items()}
    with hostile_server(routes) as provider:
        sources = "".join(paragon_source(form, provider.url, [form]) for form in forms)
        m, _ = once(tmp_path, sources, "default_retry_after: 60s, max_retry_after: 200s")
    for form, (_, (low, high)) in forms.items():
        assert m.value("sync_up", sync_id=form) == 0
        assert m.value("sync_exporter_errors_total", source=form, reason="rate_limited") == 1
        waited = m.value("sync_exporter_source_backoff_seconds", source=form)
        assert low < waited <= high or low == waited == high, (form, waited)


def test_forty_thousand_hung_syncs_are_answered_within_the_scrape_timeout(tmp_path: Path) -> None:
    """Marking unread syncs, rendering and compressing them all happen after the reads'
    deadline: their cost is kept back from it, so the answer still comes in time. Prometheus's
    default 10 s timeout: without the reserve the reads alone would take 9.5 s of it, and
    finishing 40,000 syncs takes seconds on this host (more while other work shares it)."""
    syncs = [f"hung-{n:05d}" for n in range(40_000)]
    config = tmp_path / "config.yml"
    config.write_text("sources:\n" + paragon_source("hung", "{base}", syncs) + "collector: {}\n")
    with hostile_server({"/api/syncs/*": Reply(silent=True)}) as provider:
        config.write_text(config.read_text().replace("{base}", provider.url))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        headers = {"X-Prometheus-Scrape-Timeout-Seconds": "10"}
        with running(exporter_command(config, port), f"{url}/-/healthy"):
            for _ in range(2):
                started = time.monotonic()
                response = httpx.get(f"{url}/metrics", headers=headers, timeout=30)
                elapsed = time.monotonic() - started
                assert response.status_code == 200
                assert elapsed < 10.0, f"answered after {elapsed:.2f}s, past Prometheus's 10 s"
    m = Exposition(response.text)
    assert len(m.find("sync_up", source="hung")) == 40_000
    assert m.value("sync_exporter_reads_not_started_total", source="hung") > 0
