"""The benchmarks still run end to end: tiny N, one round, checked for shape, not speed."""

from __future__ import annotations

import math
import subprocess
import sys

from bench.instructions import COLUMNS as INSTRUCTION_COLUMNS
from bench.scrape import COLUMNS
from tests.tools import ROOT, require


def parse_table(output: str) -> list[dict[str, float]]:
    """The benchmark's Markdown table as one dict per row, '-' read as NaN."""
    lines = [line for line in output.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = []
    for line in lines[2:]:
        cells = [cell.strip().replace(",", "") for cell in line.strip("|").split("|")]
        pairs = zip(header, cells, strict=True)
        rows.append({name: math.nan if cell == "-" else float(cell) for name, cell in pairs})
    assert tuple(header) == COLUMNS
    return rows


def test_benchmark_runs_at_tiny_n_and_prints_one_sane_table() -> None:
    command = [sys.executable, "-m", "bench.scrape", "--syncs", "30", "--latency-ms", "0,20"]
    command += ["--concurrency", "10", "--rounds", "1", "--min-reads", "300"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = parse_table(result.stdout)
    assert [(row["N"], row["L ms"], row["C"]) for row in rows] == [(30, 0, 10), (30, 20, 10)]
    for row in rows:
        assert row["up"] == 30, "every bulk sync answers, so every sync_up is 1"
        # One request per Paragon sync and Terminal connection, one list for all of Sequin's
        # (a disconnected connection needs none): the two concurrent scrapes shared one
        # collection, so this is not doubled.
        assert 0.6 <= row["requests/N"] <= 0.7
        assert row["wall s"] > 0 and row["CPU s"] >= 0
        assert row["CPU µs/sync"] >= 0 and row["bare µs/sync"] >= 0
        # The raw floor read every URL in the same round: some CPU, and a ratio beside it.
        assert row["floor µs/sync"] > 0 and row["vs floor"] > 0
        assert 0 < row["gzip MB"] < row["body MB"] < 1
        assert 20 < row["peak RSS MiB"] < 1000
        assert row["render ms"] > 0 and row["2nd scrape ms"] >= 0
    # 30 syncs split 10/10/10 over the providers, C=10 split 4/3/3: 10 Paragon reads over 4
    # (3 trips), 9 connected Terminal connections over 3 (3 trips), one Sequin list (1 trip):
    # three round trips of 20 ms.
    assert rows[0]["ideal s"] == 0 and math.isnan(rows[0]["ratio"])
    assert rows[1]["ideal s"] == 0.06 and rows[1]["ratio"] > 0


def test_the_provider_cost_benchmark_runs_small() -> None:
    command = [sys.executable, "-m", "bench.cost", "--only", "sequin", "--scale", "0.03"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0] == "| figure | goal | measured | met |"
    (row,) = lines[2:]
    figure, goal, measured, met = (cell.strip() for cell in row.strip("|").split("|"))
    assert figure == "Sequin, discovery, 30 syncs" and goal == "<= 0.01"
    # One list request per scrape over 30 syncs: 1/30 per sync, above the goal at this size.
    assert float(measured) == round(1 / 30, 4) and met == "NO"


def test_the_parser_benchmark_compares_main_and_this_tree_in_one_run() -> None:
    command = [sys.executable, "-m", "bench.http_parser", "--requests", "100", "--rounds", "1"]
    command += ["--baseline", "HEAD"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")][1:]
    names = [row.strip("|").split("|")[0].strip() for row in rows]
    assert names == ["HEAD:exporter/transport/http1.py", "this tree"]
    for row in rows:
        cpu, ratio = float(row.split("|")[2]), float(row.split("|")[4])
        assert cpu > 0 and ratio > 0


def test_detection_benchmark_sees_a_webhook_failure_within_a_few_scrapes() -> None:
    command = [sys.executable, "-m", "bench.detection", "--trials", "1", "--wait", "10"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {
        cells[0]: cells
        for line in result.stdout.splitlines()
        if line.startswith("| polling")
        for cells in [[cell.strip() for cell in line.strip("|").split("|")]]
    }
    assert rows["polling + webhooks"][2] == "1", result.stdout
    assert float(rows["polling + webhooks"][3]) < 10
    assert rows["polling only"][2] == "0", "min_interval 10m: polling alone cannot see it yet"


def test_the_instruction_benchmark_counts_both_readers_small() -> None:
    """bench.instructions under real callgrind, at a size that only checks it still works."""
    require("valgrind")
    command = [sys.executable, "-m", "bench.instructions", "--syncs", "20", "--scrapes", "1"]
    command += ["--concurrency", "5"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert tuple(header) == INSTRUCTION_COLUMNS
    rows = {}
    for line in lines[2:]:
        cells = [cell.strip().replace(",", "") for cell in line.strip("|").split("|")]
        rows[cells[0]] = dict(zip(header[1:], map(float, cells[1:]), strict=True))
    assert sorted(rows) == ["exporter", "floor"]
    for row in rows.values():
        assert (row["N"], row["K"]) == (20, 1)
        assert 0 < row["instructions K"] < row["instructions 2K"], "twice the reads cost more"
        assert row["per read"] > 0
    assert rows["floor"]["vs floor"] == 1
    # The exporter does all the floor does per read and more (mapping, bookkeeping, render).
    assert rows["exporter"]["vs floor"] > 1
