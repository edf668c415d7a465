"""Paragon Managed Sync: every sync belongs to one connected user, who reads it with a Paragon
User Token, an RS256 JWT signed with the project's signing key.

    {sim}/paragon  GET /api/syncs[?credentialId=]   the token user's syncs: {"data": [...]}
                   GET /api/syncs/{id}             the status body; another user's sync is 404
    control        GET /_sim/paragon               project id, audience, signing key, users
                   GET /_sim/paragon/token?user=U[&ttl=seconds][&aud=A]   a minted user token
                   POST /_sim/syncs/paragon        {"id", "body", "user"?}: an ad-hoc sync
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import math
import os
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from exporter.simulator.clock import (
    DAY,
    HOUR,
    MINUTE,
    Moment,
    iso_micros_offset,
    iso_millis,
    iso_seconds,
)
from exporter.simulator.host import Host, WorldView
from exporter.simulator.providers.base import (
    JSON,
    ControlError,
    ProviderState,
    SimProvider,
    bulk_id,
    derived_uuid,
    phrase,
    spread,
    state_of,
)
from exporter.simulator.serving import Handler, admit, answer, bearer, json_response

NAME = "paragon"
AUDIENCE_HOST = "useparagon.com"
DEFAULT_USER = "sim-user"
TOKEN_TTL = 3600.0
SYNCS_PER_USER = 20
_VERIFIED_CACHE = 4096
# guess: how far in the future a token's `iat` may be (clock skew); Paragon names no leeway.
IAT_SKEW = 60.0

# Demo users and sync ids, stable across runs (tests and docs refer to them).
ACME = "acme"
INITECH = "initech"
GLOBEX = "globex"
UMBRELLA = "umbrella"
ORDERS = "0a3b24a3-5675-4ed2-9f63-dc8a1da269b1"
TICKETS = "cf41dc6c-11ff-48b4-a6c0-e8a1174f582a"
ERRORED = "07e5c66b-3a4f-4b8f-9b93-59a2bf341d1a"
DISABLED = "f8f3b897-9924-406e-941e-b3b75187ea14"
LEGACY = "e0b812f7-a80e-402f-9181-b4f43d8642e8"
LEGACY_PAUSED = "ded981be-8b88-443b-b067-82dd60092eb3"
# invented: a sync whose status, MIGRATING, is in no Paragon document; it stands for a status
# outside the documented enum, which readers must show as unknown rather than refuse.
MIGRATING = "72c9f9a7-8496-4678-80c6-64e5bac5060a"


# --- lifecycles ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a Paragon sync is doing at one moment, before it is rendered to JSON."""

    status: str
    total: int
    synced: int
    last_synced_at: float | None
    changed_at: float
    backoff_ms: int | None = None
    reason: str | None = None


Lifecycle = Callable[[Moment], Snapshot]


def first_sync_then_incremental(total: int, growth: int) -> Lifecycle:
    """INITIALIZING, then ACTIVE until `total` records are in, then IDLE; every later period is an
    incremental run (ACTIVE for a quarter period, `growth` more records) followed by IDLE."""

    def state(m: Moment) -> Snapshot:
        k, f = m.cycle()
        if k == 0:
            if f < 0.15:
                return Snapshot("INITIALIZING", 0, 0, None, m.started_at)
            if f < 0.5:
                synced = int(total * (f - 0.15) / 0.35)
                return Snapshot("ACTIVE", total, synced, None, m.at(0.15))
            return Snapshot("IDLE", total, total, m.at(0.5), m.at(0.5))
        before = total + growth * (k - 1)
        after = before + growth
        if f < 0.25:
            previous = m.at(0.5) if k == 1 else m.at(k - 1 + 0.25)
            synced = before + int(growth * f / 0.25)
            return Snapshot("ACTIVE", after, synced, previous, m.at(k))
        done = m.at(k + 0.25)
        return Snapshot("IDLE", after, after, done, done)

    return state


def rate_limited(total: int, growth: int, limited: float = 0.4) -> Lifecycle:
    """RATE_LIMITED for the first `limited` of every period, `rateLimitBackoffMs` counting down to
    the moment it resumes, then ACTIVE catching up; a run completes at each period boundary."""

    def state(m: Moment) -> Snapshot:
        k, f = m.cycle()
        before = total + growth * k
        after = before + growth
        stuck = before + growth // 3
        if f < limited:
            backoff = math.ceil((limited - f) * m.period * 1000)
            return Snapshot("RATE_LIMITED", after, stuck, m.at(k), m.at(k), backoff_ms=backoff)
        synced = stuck + int((after - stuck) * (f - limited) / (1 - limited))
        return Snapshot("ACTIVE", after, synced, m.at(k), m.at(k + limited))

    return state


def active_idle(total: int, growth: int, active: float = 0.3, phase: float = 0.0) -> Lifecycle:
    """An established sync: ACTIVE for the first `active` of every period, then IDLE."""

    def state(m: Moment) -> Snapshot:
        k, f = m.cycle(phase=phase)
        before = total + growth * k
        after = before + growth
        if f < active:
            previous = m.at(k - 1 + active, phase=phase)
            synced = before + int(growth * f / active)
            return Snapshot("ACTIVE", after, synced, previous, m.at(k, phase=phase))
        done = m.at(k + active, phase=phase)
        return Snapshot("IDLE", after, after, done, done)

    return state


def fixed(
    status: str, total: int, last_synced_ago: float | None, reason: str | None = None
) -> Lifecycle:
    """A sync stuck in one status since its last sync, `last_synced_ago` seconds before start."""

    def state(m: Moment) -> Snapshot:
        last = None if last_synced_ago is None else m.started_at - last_synced_ago
        changed = m.started_at - HOUR if last is None else last + MINUTE
        return Snapshot(status, total, total, last, changed, reason=reason)

    return state


def _cursor(offset: int) -> str:
    # invented: the docs show `latestCursor` only as "<string>"; this form is ours.
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


# --- syncs --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParagonSync:
    """A Paragon Managed Sync of one connected user, rendered as `GET /api/syncs/{syncId}`."""

    id: str
    user: str
    integration: str
    pipeline: str
    configuration_name: str
    lifecycle: Lifecycle
    credential_id: str | None = None
    frequency: str | None = None
    legacy: bool = False
    timestamp: Callable[[float], str] = iso_millis
    created_ago: float = 30 * DAY
    labels: Mapping[str, str] = field(default_factory=dict)

    def render(self, m: Moment) -> JSON:
        """The status body; the legacy form has lower-case statuses and a snake_case summary."""
        st = self.lifecycle(m)
        if self.legacy:
            # Older docs show lower-case statuses (`paused` for DISABLED) and snake_case summary
            # fields (seeds README). invented: a body of only these two fields, lower-case,
            # with whole-second times, as one whole; no document shows a full legacy body.
            legacy_summary: JSON = {"total_records": st.total, "synced_records_count": st.synced}
            if st.last_synced_at is not None:
                legacy_summary["last_synced_at"] = iso_seconds(st.last_synced_at)
            status = "paused" if st.status == "DISABLED" else st.status.lower()
            return {"status": status, "summary": legacy_summary}
        summary: JSON = {"totalRecords": st.total, "syncedRecordsCount": st.synced}
        if st.last_synced_at is not None:
            summary["lastSyncedAt"] = self.timestamp(st.last_synced_at)
            summary["latestCursor"] = _cursor(st.synced)
        body: JSON = {"status": st.status, "summary": summary}
        if self.credential_id is not None:
            body["credentialId"] = self.credential_id
        if self.frequency is not None:
            body["incrementalAccumulatorFrequency"] = self.frequency
        if st.backoff_ms is not None:
            body["rateLimitBackoffMs"] = st.backoff_ms
        if st.reason is not None:
            body["reason"] = st.reason
        return body

    def list_item(self, m: Moment, body: JSON) -> JSON:
        """The `GET /api/syncs` entry, given the sync's current body."""
        return _list_item(
            self.id,
            self.integration,
            self.pipeline,
            body,
            self.configuration_name,
            m.started_at - self.created_ago,
            self.lifecycle(m).changed_at,
        )


@dataclass(frozen=True, slots=True)
class AdHocSync:
    """A sync a test created, whose body never changes."""

    id: str
    user: str
    body: JSON
    created_at: float
    labels: Mapping[str, str] = field(default_factory=dict)

    def render(self, m: Moment) -> JSON:
        """A shallow copy of the stored body."""
        return dict(self.body)

    def list_item(self, m: Moment, body: JSON) -> JSON:
        """The `GET /api/syncs` entry, given the sync's current body."""
        stamp = self.created_at
        # invented: an ad-hoc sync's integration and pipeline ("custom") and name (its id).
        return _list_item(self.id, "custom", "custom", body, self.id, stamp, stamp)


def _list_item(
    sync_id: str,
    integration: str,
    pipeline: str,
    body: JSON,
    configuration: str,
    created: float,
    updated: float,
) -> JSON:
    item: JSON = {
        "id": sync_id,
        "integration": integration,
        "pipeline": pipeline,
        "status": body.get("status"),
    }
    # The list's items carry `reason` too (Paragon's docs, per the seeds README's facts of
    # 2026-11-23); that it is the status body's reason, left out when null, is a guess.
    if body.get("reason") is not None:
        item["reason"] = body["reason"]
    item["configurationName"] = configuration
    item["dateCreated"] = iso_millis(created)
    item["dateUpdated"] = iso_millis(updated)
    return item


Entry = ParagonSync | AdHocSync


# --- the signing key and user tokens ------------------------------------------------------------


def generate_signing_key() -> rsa.RSAPrivateKey:
    """A fresh 2048-bit RSA key, like the signing key of a Paragon project."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def load_signing_key(pem: str | bytes) -> rsa.RSAPrivateKey:
    """The RSA private key of a PEM text; ValueError if it is not one."""
    data = pem.encode() if isinstance(pem, str) else pem
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the signing key must be an RSA private key")
    return key


def signing_key_file(path: Path) -> rsa.RSAPrivateKey:
    """The key in `path`, which is created (readable by its owner only) if it does not exist,
    so a simulator and a `--print-config` run separately agree on it."""
    if path.exists():
        return load_signing_key(path.read_bytes())
    key = generate_signing_key()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(key_pem(key))
    return key


def key_pem(key: rsa.RSAPrivateKey) -> str:
    """The key as an unencrypted PKCS #8 PEM text."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def project_id_of(key: rsa.RSAPrivateKey) -> str:
    """A project id derived from the key, so one key file always means one project."""
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return str(uuid.uuid5(uuid.NAMESPACE_OID, hashlib.sha256(public).hexdigest()))


class Unauthorized(Exception):
    """The bearer token is not a valid user token of this project; the message says why."""


def _unverified_user(token: str | None) -> str | None:
    """The `sub` a token claims, unchecked: only to aim injected faults at a user."""
    if token is None:
        return None
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return None
    sub = claims.get("sub")
    return sub if isinstance(sub, str) else None


class ParagonWorld(ProviderState):
    """Paragon's part of a world: the project (signing key, id), its users' syncs."""

    def __init__(
        self,
        syncs: Iterable[ParagonSync],
        signing_key: rsa.RSAPrivateKey | None = None,
        signing_key_file: str | None = None,
    ) -> None:
        super().__init__()
        self.signing_key = generate_signing_key() if signing_key is None else signing_key
        # Where the key came from, if a file: printed configs name the file, not the key.
        self.signing_key_file = signing_key_file
        self._public_key = self.signing_key.public_key()
        self.project_id = project_id_of(self.signing_key)
        self.audience = f"{AUDIENCE_HOST}/{self.project_id}"
        self.signing_key_pem = key_pem(self.signing_key)
        self._catalog: dict[str, Entry] = {}
        for sync in syncs:
            if sync.id in self._catalog:
                raise ValueError(f"duplicate paragon sync id {sync.id!r}")
            self._catalog[sync.id] = sync
        self._syncs = dict(self._catalog)
        self._verified: dict[str, tuple[str, float, float]] = {}

    def public_key_pem(self) -> str:
        """The public half of the signing key, as PEM."""
        return self._public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    def users(self) -> list[str]:
        """Users who own syncs, in catalogue order."""
        return list(dict.fromkeys(sync.user for sync in self._syncs.values()))

    def owner(self, sync_id: str) -> str | None:
        """The user the sync belongs to, or None if there is no such sync."""
        sync = self._syncs.get(sync_id)
        return None if sync is None else sync.user

    def syncs_of(self, user: str) -> list[str]:
        """Ids of the user's syncs, in catalogue order."""
        return [sync.id for sync in self._syncs.values() if sync.user == user]

    def mint(
        self, user: str, now: float, ttl: float = TOKEN_TTL, audience: str | None = None
    ) -> str:
        """A user token for `user`, as the project's backend would sign it."""
        issued = int(now)
        claims = {
            "sub": user,
            "iat": issued,
            "exp": issued + math.floor(ttl),
            "aud": self.audience if audience is None else audience,
        }
        return jwt.encode(claims, self.signing_key, algorithm="RS256")

    def authenticate(self, token: str | None, now: float) -> str:
        """The user of a valid token (RS256 with this project's key, this project's `aud`, a
        `sub`, an `iat` not beyond IAT_SKEW after `now`, an `exp` after `now`); Unauthorized
        otherwise."""
        if token is None:
            raise Unauthorized("Missing Paragon User Token in the Authorization header")
        known = self._verified.get(token)
        if known is None:
            known = self._verify(token)
            if len(self._verified) >= _VERIFIED_CACHE:
                self._verified.clear()
            self._verified[token] = known
        user, expires, issued = known
        if expires <= now:
            raise Unauthorized("Paragon User Token has expired")
        if issued > now + IAT_SKEW:
            raise Unauthorized("Paragon User Token is issued in the future ('iat')")
        return user

    def _verify(self, token: str) -> tuple[str, float, float]:
        try:
            claims = jwt.decode(
                token,
                self._public_key,
                algorithms=["RS256"],
                audience=self.audience,
                options={
                    # Paragon's docs list `iat` among the claims a user token must carry.
                    "require": ["sub", "iat", "exp", "aud"],
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.InvalidAudienceError as exc:
            raise Unauthorized(f"Invalid audience: expected {self.audience}") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthorized(f"Paragon User Token has no {exc.claim!r} claim") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"Invalid Paragon User Token: {exc}") from exc
        user, expires, issued = claims.get("sub"), claims.get("exp"), claims.get("iat")
        if not isinstance(user, str) or not user:
            raise Unauthorized("Paragon User Token has no 'sub' claim")
        for name, value in (("exp", expires), ("iat", issued)):
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise Unauthorized(f"Paragon User Token has an invalid {name!r} claim")
        assert isinstance(expires, int | float) and isinstance(issued, int | float)
        return user, float(expires), float(issued)

    def ids(self, m: Moment) -> list[str]:
        """Every sync id, in catalogue order, ad-hoc ones last."""
        return list(self._syncs)

    def has(self, sync_id: str, m: Moment) -> bool:
        """Whether the sync exists."""
        return sync_id in self._syncs

    def has_target(self, target: str, m: Moment) -> bool:
        """Faults aim at a sync or at a user (all of that user's requests)."""
        return target in self._syncs or target in self.users()

    def render(self, sync_id: str, m: Moment, *, expand: bool = False) -> JSON | None:
        """The status body at `m`, before overrides."""
        sync = self._syncs.get(sync_id)
        return None if sync is None else sync.render(m)

    def labels(self, sync_id: str) -> Mapping[str, str]:
        """Labels the catalogue gives the sync."""
        sync = self._syncs.get(sync_id)
        return {} if sync is None else sync.labels

    def listing(self, user: str, m: Moment, credential_id: str | None = None) -> list[JSON]:
        """`GET /api/syncs` for `user`: every sync of theirs (of that credential if given)."""
        items = []
        for sync in self._syncs.values():
            if sync.user != user:
                continue
            body = self.overlay(sync.id, sync.render(m))
            if credential_id is not None and body.get("credentialId") != credential_id:
                continue
            items.append(sync.list_item(m, body))
        return items

    def add_static(self, sync_id: str, body: JSON, m: Moment, extra: Mapping[str, Any]) -> bool:
        """An ad-hoc sync of `extra["user"]` (default `sim-user`)."""
        unknown = sorted(set(extra) - {"user"})
        if unknown:
            raise ControlError(400, f"unknown fields: {', '.join(unknown)}")
        user = extra.get("user", DEFAULT_USER)
        if not isinstance(user, str) or not user:
            raise ControlError(400, "user must be a non-empty string")
        created = sync_id not in self._syncs
        self._syncs[sync_id] = AdHocSync(sync_id, user, dict(body), m.now)
        self.drop_override(sync_id)
        return created

    def remove_static(self, sync_id: str, m: Moment) -> bool:
        """Forget an ad-hoc sync; the catalogue sync of the same id, if any, answers again."""
        if not isinstance(self._syncs.get(sync_id), AdHocSync):
            return False
        if sync_id in self._catalog:
            self._syncs[sync_id] = self._catalog[sync_id]
        else:
            del self._syncs[sync_id]
        self.drop_override(sync_id)
        return True

    def _forget(self) -> None:
        self._syncs = dict(self._catalog)


def _state(world: WorldView) -> ParagonWorld:
    return state_of(world, NAME, ParagonWorld)


# --- catalogues ---------------------------------------------------------------------------------


def demo_syncs() -> list[ParagonSync]:
    """The demo syncs: between them every status, both timestamp forms and the legacy body."""
    revoked = derived_uuid(ERRORED, "credential")
    return [
        ParagonSync(
            ORDERS,
            ACME,
            "salesforce",
            "opportunities",
            "Acme Corp - Salesforce Opportunities",
            first_sync_then_incremental(total=12_480, growth=37),
            credential_id=derived_uuid(ORDERS, "credential"),
            frequency="1m",
            created_ago=MINUTE,
            labels={"team": "data"},
        ),
        ParagonSync(
            TICKETS,
            ACME,
            "zendesk",
            "tickets",
            "Acme Corp - Zendesk Tickets",
            rate_limited(total=88_215, growth=900),
            credential_id=derived_uuid(TICKETS, "credential"),
            frequency="5m",
            # guess: microseconds and a `+00:00` offset, a form no Paragon document shows but
            # ISO 8601 allows; readers must take it as they take the documented `Z` form.
            timestamp=iso_micros_offset,
            labels={"team": "support"},
        ),
        ParagonSync(
            ERRORED,
            INITECH,
            "googledrive",
            "files",
            "Initech - Google Drive Files",
            fixed(
                "ERRORED",
                4_302,
                3 * HOUR,
                reason=f"Credential ID [{revoked}] is no longer valid or has been deleted.",
            ),
            credential_id=revoked,
            frequency="30m",
        ),
        ParagonSync(
            DISABLED,
            GLOBEX,
            "hubspot",
            "contacts",
            "Globex - HubSpot Contacts",
            fixed("DISABLED", 51_876, 2 * DAY),
            credential_id=derived_uuid(DISABLED, "credential"),
            frequency="1h",
        ),
        ParagonSync(
            LEGACY,
            UMBRELLA,
            "notion",
            "pages",
            "Umbrella - Notion Pages (legacy)",
            active_idle(total=2_113, growth=12, active=0.3, phase=0.5),
            legacy=True,
            created_ago=400 * DAY,
        ),
        ParagonSync(
            LEGACY_PAUSED,
            UMBRELLA,
            "jira",
            "issues",
            "Umbrella - Jira Issues (legacy)",
            fixed("DISABLED", 9_940, 9 * DAY),
            legacy=True,
            created_ago=420 * DAY,
        ),
        ParagonSync(
            MIGRATING,
            INITECH,
            "sharepoint",
            "files",
            "Initech - SharePoint Files",
            fixed("MIGRATING", 730, 20 * MINUTE),
            credential_id=derived_uuid(MIGRATING, "credential"),
            frequency="24h",
        ),
    ]


def bulk_user(number: int, per_user: int = SYNCS_PER_USER) -> str:
    """The user owning the `number`-th (1-based) bulk sync, e.g. `bulk-user-0001`."""
    return f"bulk-user-{(number - 1) // per_user + 1:04d}"


def bulk_sync(number: int, per_user: int = SYNCS_PER_USER) -> ParagonSync:
    """The `number`-th bulk sync: mostly active/idle, every 10th rate limited, a few errored or
    disabled."""
    sync_id = bulk_id(NAME, number)
    if number % 10 == 0:
        lifecycle = rate_limited(total=1_000 + number, growth=60)
    elif number % 25 == 1:
        lifecycle = fixed("ERRORED", 500, 3 * HOUR, reason="Token revoked by the user.")
    elif number % 25 == 2:
        lifecycle = fixed("DISABLED", 500, 2 * DAY)
    else:
        lifecycle = active_idle(1_000 + number, 40, active=0.3, phase=spread(number))
    return ParagonSync(
        sync_id,
        bulk_user(number, per_user),
        "salesforce",
        "contacts",
        f"Bulk tenant {number} - Salesforce Contacts",
        lifecycle,
        credential_id=derived_uuid(sync_id, "credential"),
        frequency="5m",
    )


# --- the provider -------------------------------------------------------------------------------


def _signing_key_option(options: Mapping[str, Any]) -> rsa.RSAPrivateKey | None:
    value = options.get("paragon_signing_key")
    if value is None or isinstance(value, rsa.RSAPrivateKey):
        return value
    if isinstance(value, str | bytes):
        return load_signing_key(value)
    raise TypeError("paragon_signing_key must be an RSA private key or its PEM")


def _key_file_option(options: Mapping[str, Any]) -> str | None:
    value = options.get("paragon_signing_key_file")
    if value is None or isinstance(value, str):
        return value
    raise TypeError("paragon_signing_key_file must be a path")


def _per_user_option(options: Mapping[str, Any]) -> int:
    value = options.get("paragon_syncs_per_user", SYNCS_PER_USER)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError("paragon_syncs_per_user must be a positive integer")
    return value


def _positive_int(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return int(value)


class Paragon(SimProvider):
    """Paragon Managed Sync behind `/paragon`."""

    name = NAME
    prefix = "/paragon"
    list_path = "/api/syncs"
    rank = 10
    options = frozenset(
        {"paragon_signing_key", "paragon_signing_key_file", "paragon_syncs_per_user"}
    )

    def demo(self, options: Mapping[str, Any]) -> ParagonWorld:
        """Users acme (orders, tickets), initech (errored, migrating), globex (disabled) and
        umbrella (the two legacy syncs)."""
        _per_user_option(options)
        return ParagonWorld(demo_syncs(), _signing_key_option(options), _key_file_option(options))

    def bulk(self, count: int, options: Mapping[str, Any]) -> ParagonWorld:
        """`count` syncs, `bulk-paragon-NNNNNN`, `paragon_syncs_per_user` (20) per user."""
        per_user = _per_user_option(options)
        syncs = [bulk_sync(number, per_user) for number in range(1, count + 1)]
        return ParagonWorld(syncs, _signing_key_option(options), _key_file_option(options))

    def error_body(self, status: int, detail: str, retry_after: str | None = None) -> JSON:
        """Paragon documents no error body; this NestJS-like shape is a plausible guess."""
        return {"message": detail, "statusCode": status, "error": phrase(status)}

    def routes(self, sim: Host) -> list[web.RouteDef]:
        """`GET /api/syncs` and `GET /api/syncs/{id}`, both for the token's user only."""
        return [
            web.get(f"{self.prefix}{self.list_path}", self._list(sim)),
            web.get(f"{self.prefix}{self.list_path}/{{id}}", self._get(sim)),
        ]

    def _list(self, sim: Host) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            token = bearer(request)
            user_hint = _unverified_user(token) if sim.faults else None
            early, fault = await admit(sim, self, request, user_hint)
            if early is not None:
                return early
            state, now = _state(sim.world), sim.clock()
            try:
                user = state.authenticate(token, now)
            except Unauthorized as exc:
                return self.error_response(401, str(exc))
            credential = request.query.get("credentialId")
            items = state.listing(user, sim.world.moment(now), credential)
            return answer({"data": items}, fault)

        return handle

    def _get(self, sim: Host) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            sync_id = request.match_info["id"]
            token = bearer(request)
            user_hint = _unverified_user(token) if sim.faults else None
            early, fault = await admit(sim, self, request, sync_id, user_hint)
            if early is not None:
                return early
            state, now = _state(sim.world), sim.clock()
            try:
                user = state.authenticate(token, now)
            except Unauthorized as exc:
                return self.error_response(401, str(exc))
            body = None
            if state.owner(sync_id) == user:
                body = state.body(sync_id, sim.world.moment(now))
            if body is None:
                return self.error_response(404, f"Could not find sync with ID: {sync_id}")
            return answer(body, fault)

        return handle

    def control_routes(self, sim: Host) -> list[web.RouteDef]:
        """`GET /_sim/paragon` (the project) and `GET /_sim/paragon/token` (a user token)."""

        async def project(request: web.Request) -> web.StreamResponse:
            state = _state(sim.world)
            return json_response(
                {
                    "project_id": state.project_id,
                    "audience": state.audience,
                    "signing_key": state.signing_key_pem,
                    "public_key": state.public_key_pem(),
                    "default_user": DEFAULT_USER,
                    "users": {user: state.syncs_of(user) for user in state.users()},
                }
            )

        async def token(request: web.Request) -> web.StreamResponse:
            state, now = _state(sim.world), sim.clock()
            user = request.query.get("user", DEFAULT_USER)
            try:
                ttl = float(request.query.get("ttl", TOKEN_TTL))
            except ValueError:
                ttl = math.nan
            if not user or not math.isfinite(ttl):
                return json_response({"error": "user must be non-empty, ttl a number"}, 400)
            audience = request.query.get("aud", state.audience)
            minted = state.mint(user, now, ttl, audience)
            expires = int(now) + math.floor(ttl)
            body = {"token": minted, "user": user, "audience": audience, "expires_at": expires}
            return json_response(body)

        return [web.get("/_sim/paragon", project), web.get("/_sim/paragon/token", token)]

    def source(self, base_url: str, world: WorldView, *, discover: bool) -> dict[str, Any] | None:
        """Minting auth (the signing key, or its file when it came from one, and the project id);
        with `discover`, the users to list and only
        the syncs that carry labels; without, every sync with its user."""
        state = _state(world)
        ids = world.ids(NAME)
        if not ids:
            return None
        source: dict[str, Any] = {
            "name": f"{world.name}-{NAME}",
            "provider": NAME,
            "base_url": base_url,
        }
        if state.signing_key_file is not None:
            source["auth"] = {"signing_key_file": state.signing_key_file}
        else:
            source["auth"] = {"signing_key": state.signing_key_pem}
        source["auth"]["project_id"] = state.project_id
        if discover:
            source["users"] = state.users()
            source["discover"] = True
        source["labels"] = {"tenant": world.name}
        syncs: list[dict[str, Any]] = []
        for sync_id in ids:
            labels = dict(state.labels(sync_id))
            if discover and not labels:
                continue
            entry: dict[str, Any] = {"id": sync_id, "user": state.owner(sync_id)}
            if labels:
                entry["labels"] = labels
            syncs.append(entry)
        if syncs:
            source["syncs"] = syncs
        return source

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """`--paragon-key` and `--paragon-syncs-per-user`."""
        parser.add_argument(
            "--paragon-key",
            type=Path,
            metavar="PEM",
            help="Paragon signing key file, created if missing; give the same file to a "
            "--print-config run and the server so both use one key (default: a new key)",
        )
        parser.add_argument(
            "--paragon-syncs-per-user",
            type=_positive_int,
            default=SYNCS_PER_USER,
            metavar="N",
            help=f"bulk Paragon syncs per connected user (default {SYNCS_PER_USER})",
        )

    def options_from(self, args: argparse.Namespace) -> dict[str, Any]:
        """The signing key file's key and path, and the syncs per bulk user."""
        options: dict[str, Any] = {"paragon_syncs_per_user": args.paragon_syncs_per_user}
        if args.paragon_key is not None:
            options["paragon_signing_key"] = signing_key_file(args.paragon_key)
            options["paragon_signing_key_file"] = str(args.paragon_key.resolve())
        return options


PROVIDER = Paragon()
