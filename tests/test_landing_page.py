"""The landing page as a browser renders it: headless Chromium against the real exporter."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import Sim
from tests.procs import exporter_command, free_port, running
from tests.tools import require


def test_landing_page_in_a_real_browser(sim: Sim, workdir: Path) -> None:
    chromium = require("chromium", "chromium-browser")
    config = workdir / "page.yml"
    config.write_text(
        """
sources:
  - name: "<b>acme</b>"
    provider: sequin
    base_url: "http://127.0.0.1:1/sequin"
    auth: {token: page-secret-token}
    syncs: [one, two]
"""
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with running(exporter_command(config, port), f"{url}-/ready"):
        profile = workdir / "profile"
        result = subprocess.run(
            [
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
                f"--screenshot={workdir / 'page.png'}",
                "--window-size=1000,700",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=90,
        )
    dom = result.stdout
    assert result.returncode == 0, result.stderr[-2000:]
    assert "<h1>Sync Status Exporter</h1>" in dom
    assert '<a href="metrics">Metrics</a>' in dom
    # The source name is shown as text, not interpreted as markup; no secret shows.
    assert (
        "<td>&lt;b&gt;acme&lt;/b&gt;</td><td>sequin</td><td>http://127.0.0.1:1/sequin</td>" in dom
    )
    assert "<td>2</td>" in dom
    assert "page-secret-token" not in dom
    assert (workdir / "page.png").stat().st_size > 1000
