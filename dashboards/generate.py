"""Build the Grafana dashboards with grafana-foundation-sdk and write them as JSON.

Generated rather than hand-written so the three dashboards share one set of variables,
selectors and state colours, and so `docs/alerts-and-dashboards.md` can list every panel's
queries straight from the code. `python -m dashboards.generate` rewrites the JSON files
(a test checks the committed ones equal this output); `--docs` prints the panel reference.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import dashboard as builders
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from dashboards.detail import detail
from dashboards.exporterboard import exporter
from dashboards.fleet import fleet

DIRECTORY = Path(__file__).resolve().parent


@dataclass(frozen=True, slots=True)
class Spec:
    """One dashboard and the file it is written to."""

    filename: str
    build: Callable[[], builders.Dashboard]


DASHBOARDS: tuple[Spec, ...] = (
    Spec("sync-fleet-overview.json", fleet),
    Spec("sync-detail.json", detail),
    Spec("sync-exporter.json", exporter),
)


def to_dict(dashboard: builders.Dashboard) -> dict[str, Any]:
    """The dashboard as Grafana's JSON model, with panel ids numbered in order."""
    model: dict[str, Any] = json.loads(json.dumps(dashboard.build(), cls=JSONEncoder))
    for number, panel in enumerate(model["panels"], start=1):
        panel["id"] = number
    # A datasource variable needs no id, and the SDK's all-zero UUID would be shared by all.
    for variable in model["templating"]["list"]:
        variable.pop("id", None)
    return model


def render(dashboard: builders.Dashboard) -> str:
    """The JSON text written to the file: stable key order, two-space indent."""
    return json.dumps(to_dict(dashboard), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def outputs() -> dict[Path, str]:
    """Every dashboard file and its content."""
    return {DIRECTORY / spec.filename: render(spec.build()) for spec in DASHBOARDS}


def panel_reference() -> str:
    """Markdown describing every dashboard panel by panel, for docs/alerts-and-dashboards.md."""
    lines: list[str] = []
    for spec in DASHBOARDS:
        model = to_dict(spec.build())
        lines += [
            f"### {model['title']}",
            "",
            f"File `dashboards/{spec.filename}`, uid `{model['uid']}`. {model['description']}",
            "",
        ]
        variables = ", ".join(
            f"`{v['name']}`{'' if v.get('multi') or v['type'] == 'datasource' else ' (single)'}"
            for v in model["templating"]["list"]
        )
        lines += [f"Variables: {variables}.", ""]
        for annotation in model["annotations"]["list"]:
            lines += [f"Annotation *{annotation['name']}*: `{annotation['expr']}`.", ""]
        for panel in model["panels"]:
            if panel["type"] == "row":
                if lines[-1]:
                    lines.append("")
                lines += [f"#### Row: {panel['title']}", ""]
                continue
            lines.append(f"- **{panel['title']}** ({panel['type']}): {panel['description']}")
            for target in panel.get("targets", []):
                expr = " ".join(target["expr"].split())
                legend = target.get("legendFormat")
                shown = f" as `{legend}`" if legend else ""
                lines.append(f"  - `{target['refId']}`{shown}: `{expr}`")
        lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Write the dashboards, check them (--check), or print the panel reference (--docs)."""
    parser = argparse.ArgumentParser(prog="python -m dashboards.generate", description=__doc__)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--check", action="store_true", help="exit 1 if a file is out of date")
    group.add_argument("--docs", action="store_true", help="print the Markdown panel reference")
    args = parser.parse_args(argv)
    if args.docs:
        sys.stdout.write(panel_reference())
        return 0
    stale = []
    for path, text in outputs().items():
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current == text:
            continue
        if args.check:
            stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(
            f"out of date: {', '.join(stale)}; run python -m dashboards.generate", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
