"""Paragon's API, its command-line options and its control endpoints."""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from exporter.simulator.host import Host, WorldView
from exporter.simulator.providers.base import (
    JSON,
    SimProvider,
    phrase,
)
from exporter.simulator.providers.paragon.fixtures import bulk_sync, demo_syncs
from exporter.simulator.providers.paragon.keys import (
    Unauthorized,
    load_signing_key,
    signing_key_file,
    unverified_user,
)
from exporter.simulator.providers.paragon.model import DEFAULT_USER, NAME, SYNCS_PER_USER, TOKEN_TTL
from exporter.simulator.providers.paragon.webhooks import WEBHOOK_SECRET, paragon_events
from exporter.simulator.providers.paragon.world import ParagonWorld, paragon_state
from exporter.simulator.serving import Handler, admit, answer, bearer, json_response

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
            user_hint = unverified_user(token) if sim.faults else None
            early, fault = await admit(sim, self, request, user_hint)
            if early is not None:
                return early
            state, now = paragon_state(sim.world), sim.clock()
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
            user_hint = unverified_user(token) if sim.faults else None
            early, fault = await admit(sim, self, request, sync_id, user_hint)
            if early is not None:
                return early
            state, now = paragon_state(sim.world), sim.clock()
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
            state = paragon_state(sim.world)
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
            state, now = paragon_state(sim.world), sim.clock()
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
        state = paragon_state(world)
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

    webhook_secret = WEBHOOK_SECRET

    def webhook_events_in(
        self, world: WorldView, sync_id: str, before: JSON | None, after: JSON, now: float
    ) -> list[JSON]:
        """sync_complete and sync_errored, naming the sync's user and integration."""
        return paragon_events(paragon_state(world), sync_id, before, after, world.moment(now))
