"""The docs say what the code does: their metric tables are the generated ones."""

from __future__ import annotations

import re

import pytest

from exporter.exposition import reference
from exporter.providers import PROVIDERS
from exporter.providers.generic import preset_names
from tests.snippets import readme_scrape_config, scrape_configs
from tests.tools import ROOT


@pytest.mark.parametrize(
    ("doc", "table"),
    [
        ("docs/metrics.md", reference.core_table()),
        ("docs/metrics.md", reference.exporter_table()),
        *((f"docs/providers/{name}.md", reference.provider_table(name)) for name in PROVIDERS),
    ],
)
def test_metric_tables_are_generated_from_the_code(doc: str, table: str) -> None:
    text = (ROOT / doc).read_text()
    assert table in text, (
        f"run `python -m exporter.exposition.reference` and paste its tables into {doc}"
    )


def test_the_readme_links_the_reference_pages() -> None:
    readme = (ROOT / "README.md").read_text()
    for page in ("docs/metrics.md", "docs/configuration.md", "docs/architecture.md"):
        assert f"]({page}" in readme, page


def test_readme_names_the_two_commands_and_ci_runs_the_test_one() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_every_file_the_docs_name_exists() -> None:
    for doc in (ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))):
        text = doc.read_text()
        named = set(
            re.findall(
                r"`((?:exporter|tests|bench|alerts|dashboards|docs|scripts|deploy)/[\w./-]+)`", text
            )
        )
        missing = [path for path in sorted(named) if not (ROOT / path.rstrip("/")).exists()]
        assert not missing, f"{doc.name} names files that do not exist: {missing}"


def test_every_test_the_docs_name_exists() -> None:
    """docs/reliability.md proves each row with named tests: a renamed test must not go unseen."""
    for doc in (ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))):
        named = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", doc.read_text())
        missing = [
            f"{path}::{name}"
            for path, name in named
            if not re.search(rf"^(async )?def {name}\(", (ROOT / path).read_text(), re.MULTILINE)
        ]
        assert not missing, f"{doc.name} names tests that do not exist: {missing}"


def test_every_scrape_config_the_docs_show_is_the_readmes() -> None:
    """One scrape config everywhere: the rules, dashboards and manifests all assume it."""
    readme = readme_scrape_config()
    assert readme["scrape_timeout"] and readme["scrape_interval"]
    for doc in (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))):
        for job in scrape_configs(doc):
            assert job == readme, f"{doc.name} shows another scrape config: {job}"


def test_every_provider_and_preset_has_a_fact_sheet_with_a_source_per_row() -> None:
    """docs/providers/<name>.md: one table, each assumption with its source (or a guess)."""
    sheets = ROOT / "docs" / "providers"
    names = sorted({*PROVIDERS, *preset_names()})
    assert sorted(path.stem for path in sheets.glob("*.md") if path.stem != "README") == names
    index = (sheets / "README.md").read_text()
    assert "docs/providers/README.md" in (ROOT / "README.md").read_text()
    for name in names:
        assert f"]({name}.md)" in index, f"docs/providers/README.md does not link {name}.md"
        lines = (sheets / f"{name}.md").read_text().splitlines()
        start = next(i for i, line in enumerate(lines) if line.startswith("|"))
        end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), None)
        rows = [line for line in lines[start:end] if not line.startswith("|---")]
        assert rows[0].startswith("| assumption |") and len(rows) > 5, name
        for row in rows[1:]:
            cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:-1]]
            assert len(cells) == 3 and all(cells), f"{name}.md: a row without its source: {row}"
