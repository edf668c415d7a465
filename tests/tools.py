"""Find the external programs some tests need: skip locally when missing, fail in CI."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REQUIRE_ENV = "SYNC_EXPORTER_REQUIRE_TOOLS"


def require(program: str, *candidates: str) -> str:
    """Return the path of `program` (or the first of `candidates` found).

    When none is installed the test is skipped with the reason, unless
    SYNC_EXPORTER_REQUIRE_TOOLS=1 (set by .ci/run), where a missing tool is a failure.
    """
    for name in (program, *candidates):
        local = ROOT / "node_modules" / ".bin" / name
        if local.exists():
            return str(local)
        found = shutil.which(name)
        if found:
            return found
    message = f"{program} is not installed (run `make test` to install test dependencies)"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
