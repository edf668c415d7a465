"""The README's scrape config: the one snippet every deployment artefact and doc agrees with."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tests.tools import ROOT

_YAML_BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.M | re.S)


def yaml_blocks(path: Path) -> list[Any]:
    """Every ```yaml block of a Markdown file, parsed."""
    return [yaml.safe_load(block) for block in _YAML_BLOCK.findall(path.read_text())]


def scrape_configs(path: Path) -> list[dict[str, Any]]:
    """The scrape configs of the exporter's job in a Markdown file's YAML blocks."""
    return [
        job
        for block in yaml_blocks(path)
        if isinstance(block, dict)
        for job in block.get("scrape_configs", [])
        if job.get("job_name") == "sync-status-exporter"
    ]


def readme_scrape_config() -> dict[str, Any]:
    """The README's scrape config of the exporter (the first one it shows)."""
    return scrape_configs(ROOT / "README.md")[0]
