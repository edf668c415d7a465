"""Find the external programs some tests need: skip locally when missing, fail in CI."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import NoReturn

import pytest

ROOT = Path(__file__).resolve().parent.parent
REQUIRE_ENV = "SYNC_EXPORTER_REQUIRE_TOOLS"


def require(program: str, *candidates: str) -> str:
    """Return the path of `program` (or the first of `candidates` found).

    Looked for in node_modules/.bin (npm), beside this Python (the dev extra's programs, such
    as hadolint, when the venv is not on PATH), then on PATH. When none is installed the test
    is skipped with the reason, unless SYNC_EXPORTER_REQUIRE_TOOLS=1 (set by .ci/run), where a
    missing tool is a failure.
    """
    for name in (program, *candidates):
        for local in (ROOT / "node_modules" / ".bin" / name, Path(sys.executable).parent / name):
            if local.exists():
                return str(local)
        found = shutil.which(name)
        if found:
            return found
    _missing(f"{program} is not installed (run `make test` to install test dependencies)")


def require_file(what: str, variable: str, default: Path) -> Path:
    """Return the file $`variable` names, else `default`: for inputs the repository must not hold.

    A missing file skips the test with where it was looked for, or fails it under
    SYNC_EXPORTER_REQUIRE_TOOLS=1, as require() does for programs.
    """
    named = os.environ.get(variable)
    path = Path(named) if named else default
    if path.is_file():
        return path
    _missing(f"{what} is not at {path} (set {variable} to its path)")


def _missing(message: str) -> NoReturn:
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
