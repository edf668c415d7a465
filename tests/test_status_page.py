"""The status page as a browser renders it: headless Chromium against the real exporter."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx

from tests.conftest import Sim
from tests.procs import exporter_command, free_port, running
from tests.tools import ROOT, require

ARTEFACTS = ROOT / "test-artifacts"
HOSTILE = "<img src=x onerror=\"document.title='owned'\">"
SEQUIN = {
    "status": "active",
    "provider": "hubspot",
    "sync_frequency": "continuous",
    "initial_backfill_completed_at": "2023-12-15 01:29:29",
}


def render(chromium: str, url: str, profile: Path, screenshot: Path | None = None) -> str:
    """The DOM after the page's script has run (virtual time lets its refresh happen).

    The browser's console goes to stderr: nothing on the page may break its own
    Content-Security-Policy (a blocked script or style is logged there).
    """
    command = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1300,700",
        "--virtual-time-budget=5000",
        "--enable-logging=stderr",
        "--v=0",
        "--dump-dom",
        url,
    ]
    if screenshot is not None:
        command.insert(-2, f"--screenshot={screenshot}")
    result = subprocess.run(command, capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stderr[-2000:]
    blocked = [line for line in result.stderr.splitlines() if "Content Security Policy" in line]
    assert not blocked, blocked
    return result.stdout


def collected(dom: str) -> str:
    """What the page's script wrote into the line that says when the last scrape was."""
    found = re.search(r'<span id="collected"[^>]*>([^<]*)</span>', dom)
    assert found is not None, dom[-2000:]
    return found.group(1)


def test_the_status_page_shows_every_sync_as_text(sim: Sim, workdir: Path) -> None:
    chromium = require("chromium", "chromium-browser")
    sim.create("sequin", "sp-ok", {**SEQUIN, "name": HOSTILE, "health": {"status": "ok"}})
    sim.create(
        "sequin",
        "sp-error",
        {
            **SEQUIN,
            "name": "Broken",
            "health": {
                "status": "error",
                "credential": {"status": "error", "notes": "Token <b>revoked</b>"},
            },
        },
    )
    sim.create("sequin", "sp-off", {**SEQUIN, "name": "Paused", "status": "disabled"})
    config = workdir / "page.yml"
    config.write_text(
        f"sources: [{{name: '<b>acme</b>', provider: sequin, base_url: '{sim.base}/sequin',"
        " auth: {token: sim-sequin-key}, syncs: [sp-ok, sp-error, sp-off, sp-missing]}]\n"
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with running(exporter_command(config, port), f"{url}-/ready"):
        before = render(chromium, url, workdir / "profile-0")
        assert collected(before) == "no scrape yet" and "not read yet" in before
        assert httpx.get(f"{url}metrics", timeout=30).status_code == 200
        sim.reset_requests()
        ARTEFACTS.mkdir(exist_ok=True)
        screenshot = ARTEFACTS / "status-page.png"
        dom = render(chromium, url, workdir / "profile-1", screenshot)
        data = httpx.get(f"{url}status.json").json()
        # The page reads the last collection: opening it asked no provider for anything.
        assert sim.requests() == {}
    rows = {row["sync_id"]: row for row in data["rows"]}
    assert {sync: rows[sync]["state"] for sync in rows} == {
        "sp-ok": "active",
        "sp-error": "errored",
        "sp-off": "disabled",
        "sp-missing": "down",
    }
    assert rows["sp-error"]["error"] == "Token <b>revoked</b>"
    assert data["counts"] == {"active": 1, "disabled": 1, "errored": 1, "down": 1}
    # Every state is a coloured badge with its name as text.
    for state in ("active", "errored", "disabled", "down"):
        assert f'<span class="state s-{state}">{state}</span>' in dom
    # Provider text is text: escaped, never markup or script.
    assert "&lt;img src=x onerror=" in dom and "<img src=x" not in dom
    assert "Token &lt;b&gt;revoked&lt;/b&gt;" in dom
    assert "<td>&lt;b&gt;acme&lt;/b&gt;</td>" in dom
    assert "<title>Sync Status Exporter</title>" in dom
    assert "sim-sequin-key" not in dom
    assert re.fullmatch(r"last scrape \d+s ago", collected(dom)), collected(dom)
    assert screenshot.stat().st_size > 5000
