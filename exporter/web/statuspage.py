"""The status page at `/`: every sync as the last collection left it, for people to read.

It only reads what collections stored on the targets (their last reading and failure), so
opening or refreshing it never sends a request to a provider. Rows are rendered on the server
for the first paint and refreshed in the browser from `/status.json`; every value that came
from a provider is escaped on the server and set as text in the browser, never as markup. No
build step and no external assets: it works in an air-gapped cluster.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import time
from collections import Counter
from typing import Any

from exporter import __version__
from exporter.collect.collector import Collector
from exporter.exposition.render import StalePolicy
from exporter.exposition.targets import Target
from exporter.model import STATES

# Shown in place of a canonical state when the sync could not be read.
DOWN = "down"
NOT_READ = "not read yet"
REFRESH_SECONDS = 10


def _row(
    source: str, provider: str, target: Target, policy: StalePolicy, now: float
) -> dict[str, Any]:
    """One sync's row: what its last reading said, and why its last read failed, if it did."""
    reading, failure = target.reading, target.failure
    failed = failure is not None and (reading is None or failure.at >= reading.at)
    status = None if reading is None else reading.status
    row: dict[str, Any] = {
        "source": source,
        "provider": provider,
        "sync_id": target.sync_id,
        "name": "" if status is None else status.info.get("name", ""),
        "state": DOWN if failed else NOT_READ if status is None else status.state.value,
        "error": "",
        "last_success_age": None,
        "stale_after": None,
        "progress": None,
        "backoff": None,
        "read_age": None if reading is None else max(now - reading.at, 0.0),
    }
    if failed and failure is not None:
        row["error"] = f"{failure.reason}: {failure.detail}"
    if status is not None:
        if not failed and status.error_reason:
            row["error"] = status.error_reason
        if status.last_synced_timestamp is not None:
            row["last_success_age"] = max(now - status.last_synced_timestamp, 0.0)
            row["stale_after"] = policy.threshold(target, status)
        row["progress"] = status.progress_ratio
        row["backoff"] = status.rate_limit_backoff_seconds
    return row


def status_rows(collector: Collector) -> dict[str, Any]:
    """Every sync's row and the counts per state, as `/status.json` serves them."""
    settings = collector.config.collector
    policy = StalePolicy(settings.stale_after, settings.stale_intervals, settings.stale_slack)
    now = time.time()
    rows = [
        _row(source.name, source.provider, target, policy, now)
        for source in collector.sources
        for target in source.targets
    ]
    counts = Counter(row["state"] for row in rows)
    last = collector.last_collection
    return {
        "rows": rows,
        "counts": {state: counts.get(state, 0) for state in _ORDER if counts.get(state)},
        "collected_ago": None if last is None else max(now - last, 0.0),
    }


_ORDER = (*(state.value for state in STATES), DOWN, NOT_READ)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def _cells(row: dict[str, Any]) -> str:
    """A row's cells on the server, the same as the browser's `cells()` makes them."""
    age, budget = row["last_success_age"], row["stale_after"]
    late = age is not None and budget is not None and age > budget
    success = _duration(age) + (f" / {_duration(budget)}" if budget is not None else "")
    progress = "" if row["progress"] is None else f"{row['progress'] * 100:.0f}%"
    backoff = "" if not row["backoff"] else _duration(row["backoff"])
    state = html.escape(row["state"])
    values = [
        html.escape(row["source"]),
        html.escape(row["provider"]),
        html.escape(row["sync_id"]),
        html.escape(row["name"]),
    ]
    return (
        "".join(f"<td>{value}</td>" for value in values)
        + f'<td><span class="state s-{state.replace(" ", "-")}">{state}</span></td>'
        + f'<td class="{"late" if late else ""}">{html.escape(success)}</td>'
        + f"<td>{html.escape(progress)}</td><td>{html.escape(backoff)}</td>"
        + f"<td>{html.escape(row['error'])}</td>"
    )


def page(collector: Collector, *, demo: bool = False) -> str:
    """The whole page, its first rows rendered here; the script keeps them fresh."""
    data = status_rows(collector)
    rows = "\n".join(f"<tr>{_cells(row)}</tr>" for row in data["rows"])
    counts = " ".join(
        f'<span class="count"><span class="state s-{html.escape(state.replace(" ", "-"))}">'
        f"{html.escape(state)}</span> {count}</span>"
        for state, count in data["counts"].items()
    )
    banner = (
        '<p id="demo" class="demo">Demo mode: these syncs come from the built-in simulator, '
        "not from a provider account.</p>"
        if demo
        else ""
    )
    return _PAGE.format(
        version=html.escape(__version__),
        banner=banner,
        counts=counts,
        rows=rows,
        refresh=REFRESH_SECONDS * 1000,
        initial=html.escape(json.dumps(data["collected_ago"])),
        style=_STYLE,
        script=_SCRIPT,
    )


_STYLE = """\
body { font-family: system-ui, sans-serif; margin: 1.5em; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: .3em .6em; text-align: left;
  vertical-align: top; }
th { background: #f4f4f4; position: sticky; top: 0; }
.state { display: inline-block; padding: .05em .5em; border-radius: .8em; font-size: .9em;
  border: 1px solid #999; }
.s-idle { background: #d8f0d8; } .s-active { background: #d6e6fb; }
.s-initializing { background: #e8ddf6; } .s-rate_limited { background: #ffe7c2; }
.s-disabled { background: #e4e4e4; } .s-errored, .s-down { background: #f9cccc; }
.s-unknown, .s-not-read-yet { background: #fff; }
.count { margin-right: 1em; } .late { color: #a40000; font-weight: bold; }
.demo { background: #fff5cc; padding: .5em; border: 1px solid #e0c000; }
#filter { width: 20em; padding: .3em; margin: .5em 0; }
nav a { margin-right: 1em; }
"""

_SCRIPT = """\
"use strict";
const filter = document.getElementById("filter");
function duration(s) {
  if (s === null || s === undefined) return "";
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60]]) {
    if (s >= size) return (s / size).toFixed(1) + unit;
  }
  return s.toFixed(0) + "s";
}
function cell(text, className) {
  const td = document.createElement("td");
  if (className) td.className = className;
  td.textContent = text;
  return td;
}
function cells(row) {
  const tr = document.createElement("tr");
  for (const key of ["source", "provider", "sync_id", "name"]) tr.appendChild(cell(row[key]));
  const state = document.createElement("span");
  state.className = "state s-" + row.state.replace(/ /g, "-");
  state.textContent = row.state;
  const td = document.createElement("td");
  td.appendChild(state);
  tr.appendChild(td);
  const late = row.last_success_age !== null && row.stale_after !== null
    && row.last_success_age > row.stale_after;
  const success = duration(row.last_success_age)
    + (row.stale_after !== null ? " / " + duration(row.stale_after) : "");
  tr.appendChild(cell(success, late ? "late" : ""));
  tr.appendChild(cell(row.progress === null ? "" : (row.progress * 100).toFixed(0) + "%"));
  tr.appendChild(cell(row.backoff ? duration(row.backoff) : ""));
  tr.appendChild(cell(row.error));
  return tr;
}
function applyFilter() {
  const wanted = filter.value.toLowerCase();
  for (const tr of document.querySelectorAll("#syncs tbody tr")) {
    tr.hidden = wanted !== "" && !tr.textContent.toLowerCase().includes(wanted);
  }
}
function show(data) {
  const body = document.querySelector("#syncs tbody");
  body.replaceChildren(...data.rows.map(cells));
  const counts = document.getElementById("counts");
  counts.replaceChildren();
  for (const [state, count] of Object.entries(data.counts)) {
    const span = document.createElement("span");
    span.className = "count";
    const badge = document.createElement("span");
    badge.className = "state s-" + state.replace(/ /g, "-");
    badge.textContent = state;
    span.append(badge, " " + count);
    counts.appendChild(span);
  }
  document.getElementById("collected").textContent = data.collected_ago === null
    ? "no scrape yet" : "last scrape " + duration(data.collected_ago) + " ago";
  applyFilter();
}
async function refresh() {
  try {
    const answer = await fetch("status.json", {cache: "no-store"});
    if (answer.ok) show(await answer.json());
  } catch (error) { /* keep the rows shown; try again at the next tick */ }
}
filter.addEventListener("input", applyFilter);
const initial = JSON.parse(document.getElementById("collected").dataset.ago);
document.getElementById("collected").textContent = initial === null
  ? "no scrape yet" : "last scrape " + duration(initial) + " ago";
setInterval(refresh, Number(document.getElementById("syncs").dataset.refresh));
refresh();
"""


def _digest(text: str) -> str:
    """A CSP source naming one inline block by its hash, so nothing else inline can run."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


# Only the page's own style and script, and fetches of its own origin (status.json).
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; script-src {_digest(_SCRIPT)}; style-src {_digest(_STYLE)}; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Sync Status Exporter</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{style}</style></head>
<body>
<h1>Sync Status Exporter</h1>
<nav><a href="metrics">Metrics</a><a href="status.json">JSON</a><a href="-/healthy">Health</a>
<a href="-/ready">Readiness</a> <span>version <span id="version">{version}</span></span></nav>
{banner}
<p id="counts">{counts}</p>
<p><input id="filter" type="search" placeholder="Filter: source, sync, state, error…"
 aria-label="Filter syncs"> <span id="collected" data-ago="{initial}"></span></p>
<table id="syncs" data-refresh="{refresh}">
<thead><tr><th>source</th><th>provider</th><th>sync</th><th>name</th><th>state</th>
<th>last success / budget</th><th>progress</th><th>back-off</th><th>last error</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
<script>{script}</script>
</body>
</html>
"""
