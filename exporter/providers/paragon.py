"""Paragon Managed Sync: `GET /api/syncs` per connected user and `GET /api/syncs/{id}`.

Requests carry a Paragon User Token: an RS256 JWT for one connected user (`sub`), signed
with the project's signing key and valid for about an hour. A source either holds one such
token (one user, rotated by whoever issues it) or the signing key itself, and then mints a
token per user and re-mints it before it expires. The list carries the names people read
(`configurationName`, `integration`, `pipeline`) that the status endpoint lacks, so it is
read on the discovery interval even for configured syncs.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from pydantic import Field, SecretStr, field_validator, model_validator

from exporter import values
from exporter.exposition.targets import Found, Shard, Target
from exporter.model import State, SyncStatus
from exporter.providers.base import (
    Adapter,
    BadResponse,
    Http,
    Listing,
    UpstreamError,
    listed_id,
    objects_in,
    path_id,
    require_object,
    with_query,
)
from exporter.schema import (
    FieldError,
    Model,
    PositiveSeconds,
    SourceConfig,
    SyncConfig,
    check_sync_id,
    problems_error,
    read_secret_file,
    secret_from,
    shown,
)

# Older documentation used lower-case statuses and called DISABLED "paused".
_STATES = {
    "initializing": State.INITIALIZING,
    "active": State.ACTIVE,
    "idle": State.IDLE,
    "rate_limited": State.RATE_LIMITED,
    "disabled": State.DISABLED,
    "paused": State.DISABLED,
    "errored": State.ERRORED,
}
# Paragon's docs: `aud` is the instance's hostname and the project id, `useparagon.com/<id>`
# on the cloud. The labels a Managed Sync host adds to its instance's name (`sync.` on the
# cloud, `ms-sync.` on-prem) are a guess from the hosts seen.
CLOUD_INSTANCE = "useparagon.com"
_SERVICE_LABELS = ("ms-sync.", "sync.")
MIN_TOKEN_TTL = 10.0
MAX_TOKEN_TTL = 86400.0
# NIST SP 800-131A: RSA keys below 2,048 bits are disallowed for signatures.
MIN_KEY_BITS = 2048

log = logging.getLogger("exporter.paragon")
_loose_files: set[str] = set()
_loose_lock = threading.Lock()


def _private_key(pem: str) -> RSAPrivateKey:
    """The RSA key of a PEM text; ValueError (never echoing the text) when it is not one."""
    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        raise ValueError("is not an unencrypted private key in PEM form") from None
    if not isinstance(key, RSAPrivateKey):
        raise ValueError("is not an RSA private key (Paragon signs user tokens with RS256)")
    if key.key_size < MIN_KEY_BITS:
        raise ValueError(
            f"is an RSA key of {key.key_size} bits: a signing key needs at least {MIN_KEY_BITS}"
        )
    return key


def default_audience(base_url: str, project_id: str) -> str:
    """The `aud` a minted token needs when none is configured: the instance `base_url` names.

    An IP address or `localhost` names no instance (a port-forward, a test): the cloud's.
    """
    host = (urlsplit(base_url).hostname or "").lower().rstrip(".")
    cloud = host == CLOUD_INSTANCE or host.endswith(f".{CLOUD_INSTANCE}")
    if cloud or not host or host == "localhost" or _is_address(host):
        return f"{CLOUD_INSTANCE}/{project_id}"
    for label in _SERVICE_LABELS:
        if host.startswith(label) and "." in host[len(label) :]:
            return f"{host[len(label) :]}/{project_id}"
    return f"{host}/{project_id}"


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _loose(info: os.stat_result) -> bool:
    """Whether users besides this one may read or replace the file.

    Group read is fine on a file someone else owns whose group is ours: a Kubernetes Secret
    mounted with `defaultMode: 0440` and the pod's `fsGroup`, readable by this pod alone.
    """
    mode = info.st_mode & 0o777
    if mode & 0o037:
        return True
    shared = info.st_uid != os.geteuid() and info.st_gid in {os.getegid(), *os.getgroups()}
    return bool(mode & 0o040) and not shared


def _warn_if_loose(path: Path) -> None:
    """Say once per file that others on the host may read or replace the signing key."""
    try:
        info = os.stat(path)
    except OSError:
        return
    mode = info.st_mode & 0o777
    name = str(path)
    with _loose_lock:
        if not _loose(info):
            _loose_files.discard(name)  # fixed: a later loosening is worth a new warning
            return
        if name in _loose_files:
            return
        _loose_files.add(name)
    log.warning(
        "the signing key file is open to group or others: chmod 600 it",
        extra={"fields": {"signing_key_file": shown(name), "mode": f"{mode:04o}"}},
    )


class ParagonAuth(Model):
    """One user's token, or the project's signing key to mint a token per user."""

    token: SecretStr | None = None
    token_file: Path | None = None
    signing_key: SecretStr | None = None
    signing_key_file: Path | None = None
    project_id: str | None = None
    audience: str | None = None
    token_ttl: PositiveSeconds = 3600.0

    @model_validator(mode="after")
    def _one_way(self) -> ParagonAuth:
        problems: list[FieldError] = []
        token = None
        try:
            token = secret_from(self.token, self.token_file, "token")
        except ValueError as exc:
            problems.append(FieldError("", str(exc)))
        key = self._key(problems)
        has_token = self.token is not None or self.token_file is not None
        has_key = self.signing_key is not None or self.signing_key_file is not None
        if not has_token and not has_key:
            problems.append(
                FieldError(
                    "",
                    "token or token_file (one user's token), or signing_key or signing_key_file "
                    "with project_id (a token minted per user), is required",
                )
            )
        if has_token and has_key:
            problems.append(FieldError("", "set either a token or a signing key, not both"))
        if has_key:
            if not self.project_id:
                problems.append(
                    FieldError(
                        "project_id", "is required with a signing key (the token audience names it)"
                    )
                )
            if not MIN_TOKEN_TTL <= self.token_ttl <= MAX_TOKEN_TTL:
                problems.append(FieldError("token_ttl", "must be from 10s to 24h"))
        else:
            for name in ("project_id", "audience"):
                if getattr(self, name) is not None:
                    problems.append(
                        FieldError(name, "is only used to mint tokens with a signing key")
                    )
        if problems:
            raise problems_error(type(self).__name__, problems)
        object.__setattr__(self, "token", token)
        if key is not None:
            object.__setattr__(self, "signing_key", key)
        return self

    def _key(self, problems: list[FieldError]) -> SecretStr | None:
        """The signing key, read from its file if need be and checked; problems go to `problems`."""
        if self.signing_key is not None and self.signing_key_file is not None:
            problems.append(FieldError("", "set either signing_key or signing_key_file, not both"))
            return None
        key = self.signing_key
        where = named = "signing_key"
        if self.signing_key_file is not None:
            where = "signing_key_file"
            named = f"{where} {shown(str(self.signing_key_file))}"
            try:
                key = SecretStr(read_secret_file(self.signing_key_file, where))
            except ValueError as exc:
                problems.append(FieldError(where, str(exc)))
                return None
        if key is None:
            return None
        try:
            _private_key(key.get_secret_value())
        except ValueError as exc:
            problems.append(FieldError(where, f"{named} {exc}"))
            return None
        return key

    @property
    def mints(self) -> bool:
        """Whether tokens are minted per user from a signing key."""
        return self.signing_key is not None


class ParagonSyncConfig(SyncConfig):
    """A configured sync; with minted tokens it names the connected user it belongs to."""

    user: str | None = None


class ParagonConfig(SourceConfig[ParagonAuth, ParagonSyncConfig]):
    """A Paragon project (signing key) or one connected user (token)."""

    provider: Literal["paragon"]
    users: list[str] = Field(default_factory=list)
    credential_id: str | None = None

    @field_validator("users")
    @classmethod
    def _user_ids(cls, users: list[str]) -> list[str]:
        seen: set[str] = set()
        for index, user in enumerate(users):
            problem = check_sync_id(user)
            if problem is not None:
                raise FieldError(f"[{index}]", f"user id {problem}")
            if user in seen:
                raise FieldError(f"[{index}]", f"user {shown(user)} is listed twice")
            seen.add(user)
        return users

    @classmethod
    def problems(cls, values: Mapping[str, Any], raw: Mapping[str, Any]) -> Iterator[FieldError]:
        """Users and syncs' users only with minted tokens, where every sync names its user."""
        yield from super().problems(values, raw)
        auth = values.get("auth")
        if auth is None:
            return
        syncs: list[ParagonSyncConfig] = values.get("syncs", [])
        if not auth.mints:
            if values.get("users"):
                yield FieldError(
                    "users", "needs tokens minted per user: set auth.signing_key(_file)"
                )
            for index, sync in enumerate(syncs):
                if sync.user is not None:
                    yield FieldError(
                        f"syncs[{index}].user", "needs tokens minted per user (auth.signing_key)"
                    )
            return
        for index, sync in enumerate(syncs):
            if sync.user is None:
                yield FieldError(
                    f"syncs[{index}].user",
                    "is required with minted tokens: the connected user the sync belongs to",
                )
        if values.get("discover") and values.get("users") == []:
            yield FieldError("users", "discover: true with minted tokens needs the users to list")


@dataclass(frozen=True, slots=True)
class ParagonSync:
    """A sync's user (None with a static token) and the names the list gave it.

    The listed item itself is kept only for a source with label_from, whose expressions may
    read any of its keys: whole, it is about 9 objects per sync held between listings.
    """

    user: str | None
    name: str = ""
    integration: str = ""
    pipeline: str = ""
    item: dict[str, Any] | None = None


def _field(summary: dict[str, Any], camel: str, snake: str) -> Any:
    return summary[camel] if camel in summary else summary.get(snake)


# Status fields read as texts (`values.text`): sync_info labels, then frequency and reason.
_TEXTS = (
    ("name", "configurationName"),
    ("integration", "integration"),
    ("pipeline", "pipeline"),
    ("credential_id", "credentialId"),
    ("frequency", "incrementalAccumulatorFrequency"),
    ("reason", "reason"),
)


def parse(body: Any) -> SyncStatus:
    """Map a Get Sync Status response (current camelCase or legacy snake_case) to SyncStatus."""
    data = require_object(body)
    status = data["status"]
    state = _STATES.get(status.lower(), State.UNKNOWN)
    summary = data.get("summary")
    if not isinstance(summary, dict):
        summary = {}
    total = values.number(_field(summary, "totalRecords", "total_records"))
    synced = values.number(_field(summary, "syncedRecordsCount", "synced_records_count"))
    progress = None
    if total is not None and synced is not None and total > 0:
        progress = synced / total
    backoff_ms = values.number(data.get("rateLimitBackoffMs"))
    if state is not State.RATE_LIMITED:
        backoff_ms = 0.0
    get = data.get
    info = {label: value if isinstance(value := get(key), str) else "" for label, key in _TEXTS}
    reason = info.pop("reason")
    return SyncStatus(
        state=state,
        provider_status=status,
        info=info,
        progress_ratio=progress,
        records_expected=total,
        records_synced=synced,
        last_synced_timestamp=values.timestamp(_field(summary, "lastSyncedAt", "last_synced_at")),
        rate_limit_backoff_seconds=None if backoff_ms is None else backoff_ms / 1000.0,
        interval_seconds=values.duration(info["frequency"]),
        error_reason=reason,
    )


class Paragon(Adapter[ParagonConfig]):
    """A Paragon source: static or minted user tokens, syncs listed per user."""

    name = "paragon"
    default_base_url = "https://sync.useparagon.com"
    config_model = ParagonConfig
    info_labels = ("pipeline", "credential_id", "frequency")
    target_labels = ("user",)
    lists_for_info = True
    # Paragon documents sync_completed and record_* events (Sync API guide), the issue tracker
    # sync_complete and sync_errored; guess: the name is in a top-level `event` field.
    webhook_event = "event"
    # guess: the sync instance's id at the top level or under `data`.
    webhook_id = "syncInstanceId || syncId || data.syncInstanceId || data.syncId"
    webhook_outcome = (
        "(event == 'sync_completed' || event == 'sync_complete') && 'succeeded'"
        " || event == 'sync_errored' && 'failed'"
    )
    webhook_events = (
        "sync_completed",
        "sync_complete",
        "sync_errored",
        "record_created",
        "record_updated",
        "record_deleted",
        "record_errored",
    )

    def __init__(self, config: ParagonConfig, shard: Shard) -> None:
        super().__init__(config, shard)
        auth = config.auth
        self._static = auth.token.get_secret_value() if auth.token is not None else ""
        self._key = (
            None if auth.signing_key is None else _private_key(auth.signing_key.get_secret_value())
        )
        if auth.signing_key_file is not None:
            _warn_if_loose(auth.signing_key_file)
        self._static_headers = {"Authorization": f"Bearer {self._static}"}
        self._tokens: dict[str, tuple[dict[str, str], float]] = {}
        self.audience = auth.audience or default_audience(self.base_url, auth.project_id or "")

    @property
    def mints(self) -> bool:
        """Tokens are minted when the source holds the signing key."""
        return self._key is not None

    def _owns(self, user: str | None, sync_id: str) -> bool:
        return self.shard.owns(self.config.name, user if self.mints and user else sync_id)

    def _found(self, sync_id: str, user: str | None, **kwargs: Any) -> Found:
        """Shard by user when minting: a replica then lists and mints only for its users."""
        key = user if self.mints and user else sync_id
        return Found(sync_id, shard_key=key, **kwargs)

    def configured(self) -> list[Found]:
        """The configured syncs, labelled with their user when tokens are minted."""
        found = []
        for sync in self.config.syncs:
            labels = dict(sync.labels)
            if self.mints and sync.user:
                labels["user"] = sync.user
            found.append(
                self._found(
                    sync.id,
                    sync.user,
                    context=ParagonSync(sync.user),
                    labels=labels,
                    stale_after=sync.stale_after,
                )
            )
        return found

    def headers(self, user: str | None) -> dict[str, str]:
        """The Authorization header for one user's requests (the static token's user if None)."""
        if self._key is None:
            return self._static_headers
        return self._token(self._key, user or "")

    def _token(self, key: RSAPrivateKey, user: str) -> dict[str, str]:
        """Headers with a cached token for `user`, minted again when less than a tenth of its
        life is left."""
        now = time.time()
        ttl = self.config.auth.token_ttl
        cached = self._tokens.get(user)
        if cached is not None and cached[1] - now > min(300.0, ttl / 10):
            return cached[0]
        claims = {
            "sub": user,
            "iat": int(now),
            "exp": int(now + ttl),
            "aud": self.audience,
        }
        try:
            token = jwt.encode(claims, key, algorithm="RS256")
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            self.mint_failures += 1
            raise UpstreamError(
                "unauthorized", f"cannot sign a user token ({type(exc).__name__})", sent=False
            ) from None
        self.minted += 1
        headers = {"Authorization": f"Bearer {token}"}
        self._tokens[user] = (headers, now + ttl)
        return headers

    async def discover(self, http: Http) -> Listing:
        """Each user's `GET /api/syncs`: a user whose token is refused keeps their last list.

        The users are those to discover and those of configured syncs, whose names the list
        gives.
        """
        named = [sync.user for sync in self.config.syncs if sync.user]
        users: list[str | None] = list(dict.fromkeys([*self.config.users, *named]))
        if not self.mints:
            users = [None]
        mine = [user for user in users if user is None or self._owns(user, "")]
        url = with_query(f"{self.base_url}/api/syncs", credentialId=self.config.credential_id)

        async def one(user: str | None) -> list[Found] | UpstreamError:
            try:
                body = await http.get(url, self.headers(user), listing=True)
                items = objects_in(require_object(body, status=False).get("data"), "syncs")
            except UpstreamError as exc:
                return exc
            except BadResponse as exc:
                return UpstreamError("bad_response", str(exc))
            labels = {"user": user} if self.mints and user else {}
            return [
                self._found(listed_id(item), user, context=self._listed(user, item), labels=labels)
                for item in items
            ]

        results = await asyncio.gather(*(one(user) for user in mine))
        return {user or "": result for user, result in zip(mine, results, strict=True)}

    def _listed(self, user: str | None, item: dict[str, Any]) -> ParagonSync:
        """What `read` needs of a listed item: its names, and the item only for label_from."""
        return ParagonSync(
            user,
            values.text(item.get("configurationName")),
            values.text(item.get("integration")),
            values.text(item.get("pipeline")),
            item if self.label_from else None,
        )

    async def read(self, target: Target, http: Http) -> SyncStatus:
        """`GET /api/syncs/{id}` with the sync's user's token, described by the list's names."""
        context = target.context if isinstance(target.context, ParagonSync) else ParagonSync(None)
        url = f"{self.base_url}/api/syncs/{path_id(target.sync_id)}"
        body = await http.get(url, self.headers(context.user))
        status = parse(body)
        info = status.info
        info["name"] = info["name"] or context.name
        info["integration"] = info["integration"] or context.integration
        info["pipeline"] = info["pipeline"] or context.pipeline
        if self.label_from:
            info.update(self.described({**(context.item or {}), **body}))
        return status


PROVIDER = Paragon
