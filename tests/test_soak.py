"""The soak still runs end to end: a few seconds, tiny N, checked for shape, never for speed."""

from __future__ import annotations

import math
import re
import subprocess
import sys

from bench.soak import COLUMNS
from tests.tools import ROOT


def parse_table(output: str) -> list[dict[str, float]]:
    """The soak's Markdown table as one dict per row, '-' read as NaN."""
    lines = [line for line in output.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert tuple(header) == COLUMNS
    rows = []
    for line in lines[2:]:
        cells = [cell.strip().replace(",", "") for cell in line.strip("|").split("|")]
        pairs = zip(header, cells, strict=True)
        rows.append({name: math.nan if cell == "-" else float(cell) for name, cell in pairs})
    return rows


def test_a_short_soak_churns_injects_faults_and_prints_one_row_per_period() -> None:
    command = [sys.executable, "-m", "bench.soak", "--minutes", "0.2", "--syncs", "30"]
    command += ["--rows", "3", "--scrape-interval", "0.25", "--churn-every", "0.1"]
    command += ["--pool", "5", "--fault-every", "0.5", "--discover-interval", "1"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = parse_table(result.stdout)
    assert len(rows) == 3
    assert [row["min"] for row in rows] == sorted(row["min"] for row in rows)
    assert 0.19 <= rows[-1]["min"] <= 0.3
    for row in rows:
        assert 20 < row["RSS MiB"] < 1000 and row["fds"] > 3
        assert row["scrapes"] >= 1 and 0 <= row["non-200"] <= row["scrapes"]
        assert row["syncs"] >= 30, "every bulk sync is read, plus the ad-hoc ones discovered"
        assert row["series"] > row["syncs"] >= row["up"] >= 0
        assert 0 < row["ad-hoc"] <= 3 * 5, "the oldest ad-hoc syncs beyond the pool are deleted"
        if not math.isnan(row["p50 ms"]):
            assert 0 < row["p50 ms"] <= row["p95 ms"] <= row["p99 ms"]
        assert row["CPU %"] >= 0
    assert sum(row["faults"] for row in rows) > 0
    summary = re.search(r"created=(\d+) removed=(\d+) faults=(\d+) refused=(\d+)", result.stdout)
    assert summary is not None, result.stdout
    created, removed, faults, refused = map(int, summary.groups())
    assert created > 15 and removed > 0 and faults > 0
    assert refused == 0, "the simulator accepted every fault the soak injects"
