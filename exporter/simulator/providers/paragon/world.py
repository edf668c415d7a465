"""Paragon's part of a simulated world: the project, its users and their syncs."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from exporter.simulator.catalog import Catalog
from exporter.simulator.clock import (
    Moment,
)
from exporter.simulator.host import WorldView
from exporter.simulator.providers.base import (
    JSON,
    ControlError,
    state_of,
)
from exporter.simulator.providers.paragon.keys import (
    Unauthorized,
    generate_signing_key,
    key_pem,
    project_id_of,
)
from exporter.simulator.providers.paragon.model import (
    AUDIENCE_HOST,
    DEFAULT_USER,
    IAT_SKEW,
    NAME,
    TOKEN_TTL,
    VERIFIED_CACHE,
    AdHocSync,
    Entry,
    ParagonSync,
)


class ParagonWorld(Catalog):
    """Paragon's part of a world: the project (signing key, id), its users' syncs."""

    def __init__(
        self,
        syncs: Iterable[ParagonSync],
        signing_key: rsa.RSAPrivateKey | None = None,
        signing_key_file: str | None = None,
    ) -> None:
        super().__init__(syncs)
        self.signing_key = generate_signing_key() if signing_key is None else signing_key
        # Where the key came from, if a file: printed configs name the file, not the key.
        self.signing_key_file = signing_key_file
        self._public_key = self.signing_key.public_key()
        self.project_id = project_id_of(self.signing_key)
        self.audience = f"{AUDIENCE_HOST}/{self.project_id}"
        self.signing_key_pem = key_pem(self.signing_key)
        self._verified: dict[str, tuple[str, float, float]] = {}

    def public_key_pem(self) -> str:
        """The public half of the signing key, as PEM."""
        return self._public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    def users(self) -> list[str]:
        """Users who own syncs, in catalogue order."""
        return list(dict.fromkeys(sync.user for sync in self._entries()))

    def owner(self, sync_id: str) -> str | None:
        """The user the sync belongs to, or None if there is no such sync."""
        sync = self._syncs.get(sync_id)
        return sync.user if isinstance(sync, ParagonSync | AdHocSync) else None

    def syncs_of(self, user: str) -> list[str]:
        """Ids of the user's syncs, in catalogue order."""
        return [sync.id for sync in self._entries() if sync.user == user]

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
            if len(self._verified) >= VERIFIED_CACHE:
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

    def has_target(self, target: str, m: Moment) -> bool:
        """Faults aim at a sync or at a user (all of that user's requests)."""
        return target in self._syncs or target in self.users()

    def listing(self, user: str, m: Moment, credential_id: str | None = None) -> list[JSON]:
        """`GET /api/syncs` for `user`: every sync of theirs (of that credential if given)."""
        items = []
        for sync in self._entries():
            if sync.user != user:
                continue
            body = self.overlay(sync.id, sync.render(m))
            if credential_id is not None and body.get("credentialId") != credential_id:
                continue
            items.append(sync.list_item(m, body))
        return items

    def ad_hoc(self, sync_id: str, body: JSON, m: Moment, extra: Mapping[str, Any]) -> AdHocSync:
        """An ad-hoc sync of `extra["user"]` (default `sim-user`)."""
        unknown = sorted(set(extra) - {"user"})
        if unknown:
            raise ControlError(400, f"unknown fields: {', '.join(unknown)}")
        user = extra.get("user", DEFAULT_USER)
        if not isinstance(user, str) or not user:
            raise ControlError(400, "user must be a non-empty string")
        return AdHocSync(sync_id, user, dict(body), m.now)

    def _entries(self) -> Iterator[Entry]:
        """The syncs, typed as Paragon's (the catalogue holds only these)."""
        for entry in self._syncs.values():
            assert isinstance(entry, ParagonSync | AdHocSync)
            yield entry


def paragon_state(world: WorldView) -> ParagonWorld:
    """Paragon's part of `world`, typed, for the routes."""
    return state_of(world, NAME, ParagonWorld)
