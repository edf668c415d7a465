"""The simulator stands beside the exporter: serving never loads it, and it loads none of ours."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "exporter"
SIMULATOR = PACKAGE / "simulator"
# The demo is the one module that runs both, so it alone may import the simulator.
BRIDGE = PACKAGE / "cli" / "demo.py"

_LOADED = """
import runpy, sys
sys.argv = ["sync-status-exporter", *sys.argv[1:]]
try:
    runpy.run_module("exporter", run_name="__main__")
except SystemExit:
    pass
print(",".join(sorted(name for name in sys.modules if name.startswith("exporter."))))
"""


def _loaded_by(*arguments: str) -> set[str]:
    """The exporter.* modules `python -m exporter <arguments>` has imported when it exits."""
    result = subprocess.run(
        [sys.executable, "-c", _LOADED, *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=True,
    )
    return set(result.stdout.strip().splitlines()[-1].split(","))


def _imported(path: Path) -> set[str]:
    """Every module a file imports, at any depth of its code, relative ones made absolute."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    else:
        package = package.removesuffix(".__init__")
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            parts = [*base, node.module] if node.level and node.module else base
            module = ".".join(parts if node.level else [node.module or ""])
            names |= {module} | {f"{module}.{alias.name}" for alias in node.names}
    return names


@pytest.mark.parametrize("arguments", [("--help",), ("--version",)])
def test_the_command_line_loads_no_simulator(arguments: tuple[str, ...]) -> None:
    loaded = _loaded_by(*arguments)
    assert "exporter.cli.main" in loaded
    assert not {name for name in loaded if name.startswith("exporter.simulator")}
    assert "exporter.cli.demo" not in loaded


def test_the_demo_does_load_the_simulator() -> None:
    # The other side of the check above: the same probe sees the simulator when it is loaded.
    loaded = _loaded_by("demo", "--help")
    assert {"exporter.cli.demo", "exporter.simulator"} <= loaded


def test_only_the_demo_imports_the_simulator() -> None:
    importers = sorted(
        str(path.relative_to(ROOT))
        for path in PACKAGE.rglob("*.py")
        if SIMULATOR not in path.parents
        and path != BRIDGE
        and any(name.startswith("exporter.simulator") for name in _imported(path))
    )
    assert importers == []


def test_the_simulator_imports_nothing_of_the_exporter() -> None:
    found = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in SIMULATOR.rglob("*.py")
        for name in _imported(path)
        if (name == "exporter" or name.startswith("exporter."))
        and not name.startswith("exporter.simulator")
    }
    assert sorted(found) == []
