"""The simulator agrees with the providers' official specs, not with the exporter: Prism's proxy
(with `--errors`) stands between a client and the simulator's Terminal, Fivetran, Nango and
Airbyte fakes, refusing any request or answer that breaks the spec.

Each fake is read at several points of its lifecycles, every page, detail and job log it
serves, and its 401; then the exporter reads it through the proxy, so our requests are
checked against the spec too.
"""

from __future__ import annotations

import base64
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from tests.prism import check_read, once, spec_file
from tests.procs import free_port, running
from tests.tools import require

PERIOD = 120.0
POINTS = (0.05, 0.3, 0.55, 0.8, 1.2, 2.65)  # periods into the lifecycles


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@dataclass(frozen=True)
class Fake:
    """A simulator fake and the spec it must follow."""

    provider: str
    filename: str
    prefix: str  # the fake's root on the simulator, where the spec's paths begin
    headers: dict[str, str]  # the fake's credentials
    first: str  # a request that needs them


FAKES = {
    "terminal": Fake(
        "terminal",
        "terminal-openapi.json",
        "/terminal/tsp/v1",
        {"Authorization": "Bearer sim-terminal-secret"},
        "/connections",
    ),
    "fivetran": Fake(
        "fivetran",
        "fivetran-openapi.json",
        "/fivetran",
        {
            **_basic("sim-fivetran-key", "sim-fivetran-secret"),
            "Accept": "application/json;version=2",
        },
        "/v1/connections",
    ),
    "nango": Fake(
        "nango",
        "nango-openapi.yaml",
        "/nango",
        {"Authorization": "Bearer sim-nango-secret-key"},
        "/sync/status?provider_config_key=github-app&syncs=*",
    ),
    "airbyte": Fake(
        "airbyte",
        "airbyte-openapi.yaml",
        "/airbyte/v1",
        _basic("airbyte", "sim-airbyte-password"),
        "/connections",
    ),
}


class Checked:
    """A client of the proxy that keeps every answer Prism did not pass as valid."""

    def __init__(self, base: str, headers: dict[str, str]) -> None:
        self.http = httpx.Client(base_url=base, headers=headers, timeout=30.0, trust_env=False)
        self.broken: list[str] = []

    def get(self, path: str, expect: int = 200, **options: Any) -> Any:
        """The JSON answer to `path`; a status other than `expect` is noted with Prism's reasons."""
        response = self.http.get(path, **options)
        if response.status_code != expect:
            self.broken.append(f"GET {path} -> {response.status_code}: {response.text[:1500]}")
            return None
        return response.json()


def _terminal(client: Checked) -> None:
    connections = client.get("/connections") or {"results": []}
    for connection in connections["results"]:
        token = {"Connection-Token": connection["token"]}
        for query in ("", "?limit=1", "?limit=1&expand=issues"):
            log = client.get(f"/syncs{query}", headers=token) or {"results": []}
            for job in log["results"]:
                client.get(f"/syncs/{job['id']}", headers=token)
                client.get(f"/syncs/{job['id']}?expand=issues", headers=token)


def _fivetran(client: Checked) -> None:
    cursor: str | None = None
    while True:
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(f"/v1/connections{query}")
        if page is None:
            return
        for item in page["data"]["items"]:
            client.get(f"/v1/connections/{item['id']}")
        cursor = page["data"].get("next_cursor")
        if not cursor:
            return


def _nango(client: Checked) -> None:
    for integration in ("github-app", "hubspot"):
        client.get(f"/sync/status?provider_config_key={integration}&syncs=*")


def _airbyte(client: Checked) -> None:
    path: str | None = "/connections?limit=2"
    while path is not None:
        page = client.get(path)
        if page is None:
            return
        for connection in page["data"]:
            jobs = f"/jobs?connectionId={connection['connectionId']}"
            client.get(jobs)
            client.get(jobs + "&orderBy=updatedAt|DESC&limit=1")
        following = page.get("next")
        path = None
        if following:  # the fake's absolute link, on the proxy instead
            parts = urlsplit(following)
            path = parts.path.removeprefix(FAKES["airbyte"].prefix) + "?" + parts.query
    client.get("/jobs?limit=3")


READERS: dict[str, Callable[[Checked], None]] = {
    "terminal": _terminal,
    "fivetran": _fivetran,
    "nango": _nango,
    "airbyte": _airbyte,
}


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo simulator of this module alone (its clock is moved)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("sim") / "simulator.log"
    command = [sys.executable, "-m", "exporter.simulator", "--listen", f"127.0.0.1:{port}"]
    with running([*command, "--period", str(PERIOD)], f"{base}/_sim/requests", log=log):
        yield base


def _terminal_mended(document: dict[str, Any]) -> None:
    """A connection's required `options` must match exactly one of three identical schemas,
    which no value does (any one is what it means); a sync's `issues` allow ids only, though
    `expand=issues`, documented on the same field, answers the issues (the spec's own
    ExpandableIssue)."""
    schemas = document["components"]["schemas"]
    schemas["ProviderOptions"]["anyOf"] = schemas["ProviderOptions"].pop("oneOf")
    issue = {"$ref": "#/components/schemas/ExpandableIssue"}
    schemas["Sync"]["properties"]["issues"]["items"] = issue


def _fivetran_mended(document: Any) -> None:
    """An integer field whose enum lists strings (the detail's `sync_frequency`: "1", "5",
    ...) admits no value: its enum as the integers it means."""
    if isinstance(document, dict):
        enum = document.get("enum")
        if document.get("type") == "integer" and enum and all(isinstance(e, str) for e in enum):
            document["enum"] = [int(e) for e in enum]
        for value in document.values():
            _fivetran_mended(value)
    elif isinstance(document, list):
        for value in document:
            _fivetran_mended(value)


# The specs' own defects, mended in a scratch copy (each is in the fact sheet of its provider).
MENDS: dict[str, Callable[[Any], None]] = {
    "terminal": _terminal_mended,
    "fivetran": _fivetran_mended,
}


def _mended(fake: Fake, spec: Path, directory: Path) -> Path:
    if fake.provider not in MENDS:
        return spec
    document = json.loads(spec.read_text())
    MENDS[fake.provider](document)
    fixed = directory / spec.name
    fixed.write_text(json.dumps(document))
    return fixed


@pytest.fixture(scope="module", params=sorted(FAKES))
def proxy(
    request: pytest.FixtureRequest, simulator: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Fake, str]]:
    """Prism's proxy of one spec in front of the fake, started once for the module."""
    fake = FAKES[request.param]
    spec = spec_file(fake.provider, fake.filename)
    prism_bin = require("prism")
    port = free_port()
    directory = tmp_path_factory.mktemp(f"proxy-{fake.provider}")
    log = directory / "prism.log"
    spec = _mended(fake, spec, directory)
    command = [prism_bin, "proxy", "-h", "127.0.0.1", "-p", str(port), str(spec)]
    command += [simulator + fake.prefix, "--errors"]
    env = {"SCARF_ANALYTICS": "false", "DO_NOT_TRACK": "1"}
    # Readiness from Prism's log: no path of every spec answers 200 before the fake is fixed.
    with running(command, f"{simulator}/_sim/requests", log=log, env=env):
        _listening(log)
        yield fake, f"http://127.0.0.1:{port}"


def _listening(log: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "Prism is listening" in log.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise AssertionError(f"Prism did not start within {timeout}s: {log.read_text()[-2000:]}")


def _clock(simulator: str, periods: float) -> None:
    body = {"elapsed": periods * PERIOD, "period": PERIOD}
    httpx.put(f"{simulator}/_sim/clock", json=body, timeout=10).raise_for_status()


def test_every_answer_of_the_fake_validates_against_the_spec(
    proxy: tuple[Fake, str], simulator: str
) -> None:
    fake, base = proxy
    client = Checked(base, fake.headers)
    try:
        for periods in POINTS:
            _clock(simulator, periods)
            READERS[fake.provider](client)
        # The fake's refusal of a wrong secret is the spec's 401, not any error body.
        scheme = client.http.headers["Authorization"].split()[0]
        wrong = _basic("wrong", "wrong") if scheme == "Basic" else {"Authorization": "Bearer wrong"}
        client.http.headers.update(wrong)
        client.get(fake.first, expect=401)
    finally:
        client.http.close()
        _clock(simulator, 0)
    assert not client.broken, "\n".join(client.broken)


def _documented_errors(fake: Fake, spec: Path) -> list[int]:
    """The error statuses the spec documents for the fake's first request (5xx and 429: the
    faults the simulator injects)."""
    text = spec.read_text()
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    document = json.loads(text) if spec.suffix == ".json" else yaml.load(text, Loader=loader)
    responses = document["paths"][fake.first.split("?")[0]]["get"]["responses"]
    return sorted(int(code) for code in responses if code in ("429", "500", "502", "503", "504"))


def test_the_fakes_injected_errors_are_the_specs_error_bodies(
    proxy: tuple[Fake, str], simulator: str
) -> None:
    """A fault the tests inject answers the body the spec documents for that status (only
    Terminal's spec documents any: the others list no 429 or 5xx answer)."""
    fake, base = proxy
    codes = _documented_errors(fake, spec_file(fake.provider, fake.filename))
    assert codes == ([429, 500, 504] if fake.provider == "terminal" else [])
    client = Checked(base, fake.headers)
    try:
        for code in codes:
            fault = {"status": code, "retry_after": "1"}
            httpx.put(f"{simulator}/_sim/faults/{fake.provider}", json=fault, timeout=10)
            client.get(fake.first, expect=code)
    finally:
        httpx.delete(f"{simulator}/_sim/faults/{fake.provider}", timeout=10)
        client.http.close()
    assert not client.broken, "\n".join(client.broken)


def test_the_exporter_reads_the_fake_through_the_spec(
    proxy: tuple[Fake, str], simulator: str, tmp_path: Path
) -> None:
    """The demo config, every source of this provider pointed at the proxy: every request of
    ours and every answer of the fake passes, and every sync is read."""
    fake, base = proxy
    config = httpx.get(f"{simulator}/_sim/config", timeout=10).json()
    sources = [
        {**entry, "base_url": base}
        for entry in config["sources"]
        if fake.provider in (entry.get("preset"), entry["provider"])
    ]
    assert sources
    for entry in sources:
        credentials = entry.get("auth", {}).get("client_credentials")
        if credentials is not None:
            # Airbyte's spec names its token URL but does not describe it: Prism's proxy
            # would refuse it, so tokens come from the fake directly.
            credentials["token_url"] = f"{simulator}{fake.prefix}/applications/token"
    run = once(tmp_path / "c.yml", sources)
    for entry in sources:
        states = check_read(run, entry["name"])
        assert states and len(states) == len(run.up(entry["name"])), run.log[-3000:]
