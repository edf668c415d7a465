"""The README's "Try it with your own config" works as written: its commands are run in order.

The commands are taken from the README's code blocks and run with bash, as a reader pastes
them, with the venv first on PATH. Only the two ports and the key file's path are changed,
to free ports and a temporary file, so the test never collides with a demo running on the
machine; the config edit applied is the README's YAML block.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import yaml

from tests.exposition import Exposition
from tests.procs import free_port, running
from tests.tools import ROOT

SIMULATOR = "127.0.0.1:9870"
EXPORTER = "127.0.0.1:9869"
KEY = "/tmp/paragon-key.pem"


def section() -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## Try it with your own config\n")
    return readme[start : readme.index("\n## ", start + 1)]


def blocks(kind: str) -> list[str]:
    return re.findall(rf"^```{kind}\n(.*?)^```", section(), flags=re.M | re.S)


class Reader:
    """Runs the README's lines in a scratch directory, with its own ports and key file."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.replacements = {
            SIMULATOR: f"127.0.0.1:{free_port()}",
            EXPORTER: f"127.0.0.1:{free_port()}",
            KEY: str(directory / "paragon-key.pem"),
        }
        bin_dir = str(Path(sys.executable).parent)
        self.env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}

    def local(self, text: str) -> str:
        for written, used in self.replacements.items():
            text = text.replace(written, used)
        return text

    def command(self, line: str) -> list[str]:
        return ["bash", "-c", self.local(line)]

    def run(self, line: str) -> str:
        result = subprocess.run(
            self.command(line),
            cwd=self.directory,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "Traceback" not in result.stderr, result.stderr
        return result.stdout

    def url(self, address: str, path: str) -> str:
        return f"http://{self.replacements[address]}{path}"


def test_try_it_with_your_own_config_works_as_written(tmp_path: Path) -> None:
    simulator, serve, look, reload, fault = blocks("sh")
    (edit,) = blocks("yaml")
    reader = Reader(tmp_path)
    assert KEY in simulator and SIMULATOR in simulator and EXPORTER in serve
    log = tmp_path / "simulator.log"
    with running(
        reader.command(simulator.strip()), reader.url(SIMULATOR, "/_sim/requests"), log=log,
        env={"PATH": reader.env["PATH"]},
    ):  # fmt: skip
        print_config, check, start = serve.strip().splitlines()
        assert reader.run(print_config) == ""
        assert "signing_key_file: " in (tmp_path / "my-config.yml").read_text()
        assert reader.run(check).startswith("my-config.yml: valid, 10 sources")
        with running(
            reader.command(start), reader.url(EXPORTER, "/-/ready"), log=tmp_path / "exporter.log",
            env={"PATH": reader.env["PATH"]}, cwd=tmp_path,
        ):  # fmt: skip
            shown = Exposition(reader.run(look.strip()))
            assert shown.find("sync_up", source="demo-sequin")
            assert {value for _, value in shown.find("sync_up")} == {1.0}
            assert shown.find("sync_state", source="demo-sequin")

            # The edit as a reader makes it: the two lines of labels: in demo-paragon replaced.
            mine = tmp_path / "my-config.yml"
            head, paragon, rest = re.split(r"(?m)^(?=- name: )", mine.read_text(), maxsplit=2)
            assert head == "sources:\n" and paragon.startswith("- name: demo-paragon\n")
            assert paragon.count("  labels:\n    tenant: demo\n") == 1
            paragon = paragon.replace("  labels:\n    tenant: demo\n", edit)
            mine.write_text(head + paragon + rest)
            edited = yaml.safe_load(mine.read_text())["sources"][0]
            assert edited["labels"] == {"tenant": "demo", "env": "laptop"}
            assert edited["stale_after"] == "1m"

            post, labelled, budget = reload.strip().splitlines()
            reader.run(post)
            assert 'env="laptop"' in reader.run(labelled)
            budgets = Exposition(reader.run(budget)).find("sync_stale_threshold_seconds")
            assert budgets and {value for _, value in budgets} == {60.0}

            put, metrics, smoke, delete = fault.strip().splitlines()
            reader.run(put)
            (down,) = Exposition(reader.run(metrics)).find("sync_up")
            assert down[0]["sync_id"].startswith("0a3b24a3") and down[1] == 0
            assert reader.run(smoke) == "exit status 3\n"
            reader.run(delete)
            after = httpx.get(reader.url(EXPORTER, "/metrics"), timeout=30).text
            assert {value for _, value in Exposition(after).find("sync_up")} == {1.0}
