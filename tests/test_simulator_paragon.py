"""The simulated Paragon over real HTTP: user tokens, per-user syncs, status bodies."""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from exporter.simulator.providers import paragon as p
from tests import simtools
from tests.simtools import (
    PARAGON_SYNCS,
    PERIOD,
    at,
    ok,
    paragon,
)

# The simulator's shared fixtures: `sim` (this module's own) and `client` (its world reset).
sim_fixture, client_fixture = simtools.sim_fixture, simtools.client_fixture

LIST_KEYS = {
    "id",
    "integration",
    "pipeline",
    "status",
    "configurationName",
    "dateCreated",
    "dateUpdated",
}


def project(client: httpx.Client) -> dict[str, Any]:
    info: dict[str, Any] = ok(client.get("/_sim/paragon"))
    return info


def body_of(client: httpx.Client, user: str, sync_id: str) -> dict[str, Any]:
    body: dict[str, Any] = ok(
        client.get(f"{PARAGON_SYNCS}/{sync_id}", headers=paragon(client, user))
    )
    return body


def listed(client: httpx.Client, user: str, **params: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = ok(
        client.get(PARAGON_SYNCS, headers=paragon(client, user), params=params)
    )["data"]
    return items


def signed(claims: dict[str, Any], key: rsa.RSAPrivateKey | str) -> dict[str, str]:
    return {"Authorization": f"Bearer {jwt.encode(claims, key, algorithm='RS256')}"}


# --- auth ---------------------------------------------------------------------------------------


def test_the_project_and_its_minted_tokens(client: httpx.Client) -> None:
    info = project(client)
    assert re.fullmatch(r"[0-9a-f-]{36}", info["project_id"])
    assert info["audience"] == f"useparagon.com/{info['project_id']}"
    assert info["signing_key"].startswith("-----BEGIN PRIVATE KEY-----")
    assert info["users"] == {
        "acme": [p.ORDERS, p.TICKETS],
        "initech": [p.ERRORED, p.MIGRATING],
        "globex": [p.DISABLED],
        "umbrella": [p.LEGACY, p.LEGACY_PAUSED],
    }
    minted = ok(client.get("/_sim/paragon/token", params={"user": "acme", "ttl": "60"}))
    claims = jwt.decode(
        minted["token"], info["public_key"], algorithms=["RS256"], audience=info["audience"]
    )
    assert claims["sub"] == "acme" == minted["user"]
    assert claims["exp"] - claims["iat"] == 60 and claims["exp"] == minted["expires_at"]


def test_a_token_signed_with_the_projects_key_is_accepted(client: httpx.Client) -> None:
    info = project(client)
    now = int(time.time())
    claims = {"sub": "globex", "iat": now, "exp": now + 600, "aud": info["audience"]}
    response = client.get(PARAGON_SYNCS, headers=signed(claims, info["signing_key"]))
    assert [item["id"] for item in ok(response)["data"]] == [p.DISABLED]


def test_a_token_issued_within_the_clock_skew_is_accepted(client: httpx.Client) -> None:
    info = project(client)
    now = int(time.time())
    claims = {"sub": "globex", "iat": now + 20, "exp": now + 600, "aud": info["audience"]}
    response = client.get(PARAGON_SYNCS, headers=signed(claims, info["signing_key"]))
    assert response.status_code == 200, response.text


def test_bad_tokens_are_401(client: httpx.Client) -> None:
    info = project(client)
    now = int(time.time())
    good = {"sub": "acme", "iat": now, "exp": now + 600, "aud": info["audience"]}
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    no_sub = {key: value for key, value in good.items() if key != "sub"}
    no_exp = {key: value for key, value in good.items() if key != "exp"}
    no_iat = {key: value for key, value in good.items() if key != "iat"}
    hs256 = jwt.encode(good, "a-shared-secret-of-at-least-32-bytes!", algorithm="HS256")
    cases = {
        "expired": signed({**good, "iat": now - 7200, "exp": now - 3600}, info["signing_key"]),
        "wrong aud": signed({**good, "aud": "useparagon.com/another"}, info["signing_key"]),
        "host only aud": signed({**good, "aud": "useparagon.com"}, info["signing_key"]),
        "wrong key": signed(good, other_key),
        "no sub": signed(no_sub, info["signing_key"]),
        "no exp": signed(no_exp, info["signing_key"]),
        # Paragon's docs require `iat`; one beyond the clock skew is not issued yet.
        "no iat": signed(no_iat, info["signing_key"]),
        "iat in the future": signed(
            {**good, "iat": now + int(p.IAT_SKEW) + 30}, info["signing_key"]
        ),
        "iat not a number": signed({**good, "iat": "yesterday"}, info["signing_key"]),
        "hs256": {"Authorization": f"Bearer {hs256}"},
        "garbage": {"Authorization": "Bearer sim-paragon-token"},
        "none": {},
        "control api expired": {
            "Authorization": "Bearer "
            + ok(client.get("/_sim/paragon/token", params={"user": "acme", "ttl": "-5"}))["token"]
        },
        "control api wrong aud": {
            "Authorization": "Bearer "
            + ok(client.get("/_sim/paragon/token", params={"user": "acme", "aud": "x/y"}))["token"]
        },
    }
    for case, headers in cases.items():
        for path in (PARAGON_SYNCS, f"{PARAGON_SYNCS}/{p.ORDERS}"):
            response = client.get(path, headers=headers)
            assert response.status_code == 401, (case, path, response.text)
            body = response.json()
            assert body["statusCode"] == 401 and body["error"] == "Unauthorized", case
            assert body["message"], case


def test_tokens_expire_on_the_simulators_clock(client: httpx.Client) -> None:
    token = ok(client.get("/_sim/paragon/token", params={"user": "acme", "ttl": "2"}))["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(PARAGON_SYNCS, headers=headers).status_code == 200
    deadline = time.monotonic() + 5
    while client.get(PARAGON_SYNCS, headers=headers).status_code == 200:
        assert time.monotonic() < deadline, "the token never expired"
        time.sleep(0.1)
    assert client.get(PARAGON_SYNCS, headers=headers).json()["message"].endswith("expired")


def test_each_user_sees_only_their_syncs(client: httpx.Client) -> None:
    assert [item["id"] for item in listed(client, "acme")] == [p.ORDERS, p.TICKETS]
    assert [item["id"] for item in listed(client, "umbrella")] == [p.LEGACY, p.LEGACY_PAUSED]
    assert listed(client, "nobody") == []
    acme = paragon(client, "acme")
    assert client.get(f"{PARAGON_SYNCS}/{p.ORDERS}", headers=acme).status_code == 200
    foreign = client.get(f"{PARAGON_SYNCS}/{p.ERRORED}", headers=acme)
    assert foreign.status_code == 404
    assert foreign.json() == {
        "message": f"Could not find sync with ID: {p.ERRORED}",
        "statusCode": 404,
        "error": "Not Found",
    }
    assert body_of(client, "initech", p.ERRORED)["status"] == "ERRORED"


def test_list_items_and_the_credential_filter(client: httpx.Client) -> None:
    items = {item["id"]: item for item in listed(client, "initech")}
    assert set(items[p.MIGRATING]) == LIST_KEYS
    assert set(items[p.ERRORED]) == LIST_KEYS | {"reason"}
    assert items[p.ERRORED]["reason"].startswith("Credential ID [")
    assert items[p.MIGRATING]["status"] == "MIGRATING"
    credential = body_of(client, "initech", p.ERRORED)["credentialId"]
    only = listed(client, "initech", credentialId=credential)
    assert [item["id"] for item in only] == [p.ERRORED]
    assert listed(client, "initech", credentialId="no-such-credential") == []
    assert listed(client, "acme")[0]["status"] == "INITIALIZING"


# --- status bodies ------------------------------------------------------------------------------


def test_sync_shape_while_active(client: httpx.Client) -> None:
    at(client, 0.3)
    body = body_of(client, "acme", p.ORDERS)
    assert body["status"] == "ACTIVE"
    summary = body["summary"]
    assert 0 < summary["syncedRecordsCount"] < summary["totalRecords"] == 12_480
    assert "lastSyncedAt" not in summary
    assert body["incrementalAccumulatorFrequency"] == "1m"
    assert re.fullmatch(r"[0-9a-f-]{36}", body["credentialId"])


def test_idle_has_last_synced_at(client: httpx.Client) -> None:
    at(client, 0.7)
    summary = body_of(client, "acme", p.ORDERS)["summary"]
    assert summary["syncedRecordsCount"] == summary["totalRecords"]
    assert summary["lastSyncedAt"].endswith("Z") and "." in summary["lastSyncedAt"]
    last = datetime.fromisoformat(summary["lastSyncedAt"]).timestamp()
    assert abs(last - (time.time() - 0.2 * PERIOD)) < 5
    assert isinstance(summary["latestCursor"], str)


def test_demo_statuses(client: httpx.Client) -> None:
    tickets = body_of(client, "acme", p.TICKETS)
    assert tickets["status"] == "RATE_LIMITED"
    assert 0 < tickets["rateLimitBackoffMs"] <= 0.4 * PERIOD * 1000
    assert datetime.fromisoformat(tickets["summary"]["lastSyncedAt"]).utcoffset() is not None
    errored = body_of(client, "initech", p.ERRORED)
    assert errored["reason"] == (
        f"Credential ID [{errored['credentialId']}] is no longer valid or has been deleted."
    )
    assert body_of(client, "globex", p.DISABLED)["status"] == "DISABLED"
    assert body_of(client, "initech", p.MIGRATING)["status"] == "MIGRATING"
    legacy = body_of(client, "umbrella", p.LEGACY)
    assert legacy["status"] in ("active", "idle")
    assert set(legacy["summary"]) == {"total_records", "synced_records_count", "last_synced_at"}
    assert body_of(client, "umbrella", p.LEGACY_PAUSED)["status"] == "paused"


def test_rate_limit_backoff_counts_down(client: httpx.Client) -> None:
    at(client, 0.1)
    first = body_of(client, "acme", p.TICKETS)["rateLimitBackoffMs"]
    at(client, 0.3)
    second = body_of(client, "acme", p.TICKETS)["rateLimitBackoffMs"]
    assert first > second > 0
    at(client, 0.5)
    assert body_of(client, "acme", p.TICKETS)["status"] == "ACTIVE"


# --- ad-hoc syncs -------------------------------------------------------------------------------


def test_ad_hoc_syncs_belong_to_a_user(client: httpx.Client) -> None:
    exact = {"status": "IDLE", "summary": {"totalRecords": 1, "syncedRecordsCount": 1}}
    mine = client.post("/_sim/syncs/paragon", json={"id": "mine", "body": exact, "user": "zed"})
    assert mine.status_code == 201
    default = client.post("/_sim/syncs/paragon", json={"id": "default", "body": exact})
    assert default.status_code == 201
    assert [item["id"] for item in listed(client, "zed")] == ["mine"]
    assert [item["id"] for item in listed(client, p.DEFAULT_USER)] == ["default"]
    assert body_of(client, "zed", "mine") == exact
    zed_reads_default = client.get(f"{PARAGON_SYNCS}/default", headers=paragon(client, "zed"))
    assert zed_reads_default.status_code == 404
    assert "zed" in project(client)["users"]
    bad = client.post("/_sim/syncs/paragon", json={"id": "x", "body": exact, "user": 7})
    assert bad.status_code == 400
    unknown = client.post("/_sim/syncs/paragon", json={"id": "x", "body": exact, "owner": "a"})
    assert unknown.status_code == 400
