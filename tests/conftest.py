"""Shared fixtures: the simulator as a real HTTP server in its own process."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.procs import Recording, free_port, recording_server, running


class Sim:
    """A running simulator and its control API."""

    def __init__(self, base: str, directory: Path) -> None:
        self.base = base
        self.directory = directory
        self.http = httpx.Client(base_url=base, timeout=10)

    def create(self, provider: str, sync_id: str, body: dict[str, object]) -> None:
        """A static sync answering exactly `body`."""
        response = self.http.post(f"/_sim/syncs/{provider}", json={"id": sync_id, "body": body})
        assert response.status_code in (200, 201), response.text

    def override(self, provider: str, sync_id: str, fields: dict[str, object]) -> None:
        response = self.http.put(f"/_sim/syncs/{provider}/{sync_id}", json=fields)
        assert response.status_code == 200, response.text

    def clear_override(self, provider: str, sync_id: str) -> None:
        self.http.delete(f"/_sim/syncs/{provider}/{sync_id}")

    def fault(self, provider: str, sync_id: str, fault: dict[str, object]) -> None:
        response = self.http.put(f"/_sim/faults/{provider}/{sync_id}", json=fault)
        assert response.status_code == 200, response.text

    def clear_fault(self, provider: str, sync_id: str) -> None:
        self.http.delete(f"/_sim/faults/{provider}/{sync_id}")

    def paragon(self) -> dict[str, Any]:
        """The Paragon project: signing key, project id, audience, users and their syncs."""
        answer: dict[str, Any] = self.http.get("/_sim/paragon").json()
        return answer

    def paragon_auth(self, directory: Path | None = None) -> str:
        """A source's `auth:` (YAML flow) minting tokens with the simulator's signing key."""
        project = self.paragon()
        key = (directory or self.directory) / "paragon-signing-key.pem"
        key.write_text(project["signing_key"])
        key.chmod(0o600)
        return f"{{signing_key_file: '{key}', project_id: '{project['project_id']}'}}"

    def paragon_token(self, user: str = "sim-user", ttl: float | None = None) -> str:
        """A user token the simulator accepts (for `auth: {token: ...}`)."""
        query = {"user": user} if ttl is None else {"user": user, "ttl": str(ttl)}
        token: str = self.http.get("/_sim/paragon/token", params=query).json()["token"]
        return token

    def connection(self, connection_id: str, **fields: object) -> dict[str, Any]:
        """A new Terminal connection (company, provider, status, syncMode, token, cadence)."""
        response = self.http.post(
            "/_sim/terminal/connections", json={"id": connection_id, **fields}
        )
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    def change_connection(self, connection_id: str, **fields: object) -> None:
        response = self.http.patch(f"/_sim/terminal/connections/{connection_id}", json=fields)
        assert response.status_code == 200, response.text

    def job(self, connection_id: str, job_id: str, body: dict[str, object]) -> None:
        """Append a job (newest) to a Terminal connection's log."""
        response = self.http.post(
            "/_sim/syncs/terminal",
            json={"id": job_id, "body": {"id": job_id, **body}, "connection": connection_id},
        )
        assert response.status_code in (200, 201), response.text

    def requests(self) -> dict[str, int]:
        """Requests received per path since the last reset."""
        paths: dict[str, int] = self.http.get("/_sim/requests").json()["paths"]
        return paths

    def reset_requests(self) -> None:
        self.http.delete("/_sim/requests")


@pytest.fixture(scope="session")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    """The simulator in its own process, with a long period so lifecycles barely move."""
    yield from simulator_process(tmp_path_factory)


def simulator_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    """A simulator process of its own, for a module that needs the demo as shipped: the
    session's is changed by the tests that add syncs and faults to it."""
    port = free_port()
    directory = tmp_path_factory.mktemp("sim")
    log = directory / "simulator.log"
    command = [
        sys.executable,
        "-m",
        "exporter.simulator",
        "--listen",
        f"127.0.0.1:{port}",
        "--period",
        "3600",
    ]
    base = f"http://127.0.0.1:{port}"
    with running(command, f"{base}/_sim/requests", log=log):
        simulator = Sim(base, directory)
        yield simulator
        simulator.http.close()


@pytest.fixture
def recording() -> Iterator[Recording]:
    """A plain HTTP server on 127.0.0.1 that answers an active sync and notes each request."""
    with recording_server() as server:
        yield server


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A scratch directory per test."""
    return tmp_path
