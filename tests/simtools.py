"""What the simulator's own tests share: a simulator on a thread (and the `sim` and `client`
fixtures a test module imports), and requests with credentials."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from exporter.simulator import Simulator, World, run_simulator_in_thread

PERIOD = 120.0
TERMINAL_SECRET = "sim-terminal-secret"
SEQUIN = {"Authorization": "Bearer sim-sequin-key"}
CONNECTIONS = "/terminal/tsp/v1/connections"
JOBS = "/terminal/tsp/v1/syncs"
PARAGON_SYNCS = "/paragon/api/syncs"
SEQUIN_SYNCS = "/sequin/v1/syncs"


@contextmanager
def demo_simulator() -> Iterator[Simulator]:
    """The demo world, served on a background thread."""
    with run_simulator_in_thread(World.demo(period=PERIOD)) as running:
        yield running


@contextmanager
def fresh_client(sim: Simulator) -> Iterator[httpx.Client]:
    """A client of `sim`, after a reset and with the lifecycles back at their start."""
    with httpx.Client(base_url=sim.base_url, timeout=5.0, trust_env=False) as http:
        http.post("/_sim/reset").raise_for_status()
        http.put("/_sim/clock", json={"elapsed": 0, "period": PERIOD}).raise_for_status()
        yield http


@pytest.fixture(scope="module", name="sim")
def sim_fixture() -> Iterator[Simulator]:
    """`sim`: the demo world's simulator, one per test module that imports this fixture."""
    with demo_simulator() as running:
        yield running


@pytest.fixture(name="client")
def client_fixture(sim: Simulator) -> Iterator[httpx.Client]:
    """`client`: a client of the module's simulator, its world reset and its clock at the start."""
    with fresh_client(sim) as http:
        yield http


def at(client: httpx.Client, periods: float) -> None:
    """Jump the lifecycles to `periods` periods after the start."""
    client.put("/_sim/clock", json={"elapsed": periods * PERIOD}).raise_for_status()


def ok(response: httpx.Response) -> Any:
    """The JSON of a 200 answer."""
    assert response.status_code == 200, response.text
    return response.json()


def paragon_token(client: httpx.Client, user: str, **params: str) -> str:
    """A valid user token for `user`, minted by the simulator."""
    token: str = ok(client.get("/_sim/paragon/token", params={"user": user, **params}))["token"]
    return token


def paragon(client: httpx.Client, user: str) -> dict[str, str]:
    """Headers of a request as `user`."""
    return {"Authorization": f"Bearer {paragon_token(client, user)}"}


def terminal(connection_token: str | None = None) -> dict[str, str]:
    """Headers of a Terminal request, for one connection if a token is given."""
    headers = {"Authorization": f"Bearer {TERMINAL_SECRET}"}
    if connection_token is not None:
        headers["Connection-Token"] = connection_token
    return headers


def connection_token(client: httpx.Client, connection_id: str) -> str:
    """The token of a connection, as `GET /connections` shows it."""
    token: str = ok(client.get(f"/_sim/terminal/connections/{connection_id}"))["token"]
    return token


def job_log(client: httpx.Client, connection_id: str, **params: str) -> list[dict[str, Any]]:
    """The first page of a connection's job log, newest first."""
    headers = terminal(connection_token(client, connection_id))
    results: list[dict[str, Any]] = ok(client.get(JOBS, headers=headers, params=params))["results"]
    return results
