"""deploy/compose/: every file it mounts exists, and each program's config passes its checker.

No container engine runs here. Each service's filesystem is mirrored in a temporary
directory from the compose file's own volume lines, so promtool, amtool and the checks of
Grafana's provisioning read the files at the paths the containers would, and the exporter
service's command is run for real (on a loopback port instead of every interface).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from alerts.generate import RULES_FILE
from dashboards.generate import DASHBOARDS
from tests.exposition import Exposition
from tests.procs import free_port, running
from tests.snippets import readme_scrape_config
from tests.tools import require

COMPOSE_FILE = Path(__file__).resolve().parent.parent / "deploy" / "compose" / "compose.yaml"
EXPORTER = "sync-status-exporter"


def services() -> dict[str, dict[str, Any]]:
    """The compose file's services."""
    found: dict[str, dict[str, Any]] = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    return found


def mounts(service: str) -> list[tuple[Path, str]]:
    """(host path, container path) of a service's bind mounts (short syntax)."""
    pairs = []
    for volume in services()[service].get("volumes", []):
        host, container, *_ = volume.split(":")
        pairs.append(((COMPOSE_FILE.parent / host).resolve(), container))
    return pairs


def filesystem(service: str, tmp_path: Path) -> Path:
    """A directory holding the service's mounted files at their container paths."""
    root = tmp_path / service
    for host, container in mounts(service):
        target = root / container.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if host.is_dir():
            shutil.copytree(host, target)
        else:
            shutil.copy(host, target)
    return root


def config_flag(service: str) -> str:
    """The --config.file a Prometheus or Alertmanager service starts with."""
    arguments: list[str] = services()[service]["command"]
    (value,) = [arg.split("=", 1)[1] for arg in arguments if arg.startswith("--config.file=")]
    return value


def run(*command: str) -> subprocess.CompletedProcess[str]:
    """Run a checker, keeping its output for the assertion message."""
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_every_file_the_compose_file_references_exists() -> None:
    assert (COMPOSE_FILE.parent / services()[EXPORTER]["build"] / "Dockerfile").is_file()
    for name, service in services().items():
        for host, container in mounts(name):
            assert host.exists(), f"{name}: {host} (mounted at {container}) does not exist"
        image = service["image"]
        tag = image.rpartition(":")[2]
        assert ":" in image and tag != "latest" and any(c.isdigit() for c in tag), image


def test_promtool_accepts_the_prometheus_config_and_its_rules(tmp_path: Path) -> None:
    promtool = require("promtool")
    root = filesystem("prometheus", tmp_path)
    result = run(promtool, "check", "config", str(root / config_flag("prometheus").lstrip("/")))
    assert result.returncode == 0, result.stdout + result.stderr
    rules = sum(len(g["rules"]) for g in yaml.safe_load(RULES_FILE.read_text())["groups"])
    assert "SUCCESS: 1 rule files found" in result.stdout, result.stdout
    assert f"SUCCESS: {rules} rules found" in result.stdout, result.stdout


def test_prometheus_scrapes_the_exporter_as_the_readme_says(tmp_path: Path) -> None:
    root = filesystem("prometheus", tmp_path)
    config = yaml.safe_load((root / config_flag("prometheus").lstrip("/")).read_text())
    (job,) = config["scrape_configs"]
    assert job == readme_scrape_config()
    (target,) = job["static_configs"][0]["targets"]
    command = services()[EXPORTER]["command"]
    listen = command[command.index("--web.listen-address") + 1]
    assert target == f"{EXPORTER}{listen}", "the scrape target is the exporter service"
    (alertmanager,) = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert alertmanager.split(":")[0] in services()


def test_amtool_accepts_the_alertmanager_config(tmp_path: Path) -> None:
    amtool = require("amtool")
    root = filesystem("alertmanager", tmp_path)
    result = run(amtool, "check-config", str(root / config_flag("alertmanager").lstrip("/")))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_grafana_provisions_prometheus_and_the_three_dashboards(tmp_path: Path) -> None:
    root = filesystem("grafana", tmp_path)
    provisioning = root / "etc" / "grafana" / "provisioning"
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    assert source["type"] == "prometheus" and source["isDefault"] is True
    assert source["url"] == "http://prometheus:9090" and "prometheus" in services()
    (provider,) = yaml.safe_load(
        (provisioning / "dashboards" / "sync-status-exporter.yml").read_text()
    )["providers"]
    folder = root / provider["options"]["path"].lstrip("/")
    files = sorted(folder.glob("*.json"))
    assert {path.name for path in files} == {spec.filename for spec in DASHBOARDS}
    assert len({json.loads(path.read_text())["uid"] for path in files}) == len(DASHBOARDS) == 3
    home = services()["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (root / home.lstrip("/")).is_file()


def test_the_exporter_service_runs_the_demo(tmp_path: Path) -> None:
    command = list(services()[EXPORTER]["command"])
    assert command[0] == "demo"
    at = command.index("--web.listen-address") + 1
    assert command[at] == ":9869", "in a container the demo must listen on every interface"
    published = {p.rsplit(":", 1)[1] for p in services()[EXPORTER]["ports"]}
    assert published == {"9869"}
    port = free_port()
    command[at] = f"127.0.0.1:{port}"
    url = f"http://127.0.0.1:{port}"
    with running(
        [sys.executable, "-m", "exporter", *command], f"{url}/-/ready", log=tmp_path / "log"
    ):
        m = Exposition(httpx.get(f"{url}/metrics", timeout=30).text)
    up = m.find("sync_up")
    assert {labels["provider"] for labels, _ in up} == {"paragon", "terminal", "sequin", "generic"}
    assert all(value == 1 for _, value in up)


@pytest.mark.parametrize("service", ["prometheus", "alertmanager", "grafana"])
def test_services_publish_only_on_loopback(service: str) -> None:
    for port in services()[service]["ports"]:
        assert port.startswith("127.0.0.1:"), port
