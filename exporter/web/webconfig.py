"""`--web.config.file`: TLS and basic auth in the exporter-toolkit's format.

Go exporters share this file format (tls_server_config, basic_auth_users with bcrypt
hashes), so one file can protect every exporter on a host, this one included.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import secrets
import ssl
from collections import Counter, OrderedDict
from pathlib import Path
from typing import Literal

import bcrypt
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from pydantic import Field, SecretStr, field_validator, model_validator

from exporter.config import ConfigError, Model, parse_document, read_document

_TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
TLSVersion = Literal["TLS10", "TLS11", "TLS12", "TLS13"]
ClientAuth = Literal["NoClientCert", "VerifyClientCertIfGiven", "RequireAndVerifyClientCert"]


class TLSServerConfig(Model):
    """The server's certificate and, for mutual TLS, the CA its clients must be signed by."""

    cert_file: Path
    key_file: Path
    client_auth_type: ClientAuth = "NoClientCert"
    client_ca_file: Path | None = None
    min_version: TLSVersion = "TLS12"
    max_version: TLSVersion = "TLS13"

    @model_validator(mode="after")
    def _client_ca(self) -> TLSServerConfig:
        if self.client_auth_type != "NoClientCert" and self.client_ca_file is None:
            raise ValueError(f"client_auth_type {self.client_auth_type} needs client_ca_file")
        if _TLS_VERSIONS[self.min_version] > _TLS_VERSIONS[self.max_version]:
            raise ValueError("min_version is above max_version")
        return self


class WebSecurityConfig(Model):
    """The whole web config file; an empty file means plain HTTP with no auth."""

    tls_server_config: TLSServerConfig | None = None
    basic_auth_users: dict[str, SecretStr] = Field(default_factory=dict)

    @field_validator("basic_auth_users")
    @classmethod
    def _bcrypt_hashes(cls, users: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for user, hashed in users.items():
            value = hashed.get_secret_value().encode()
            try:
                bcrypt.checkpw(b"", value)
            except ValueError:
                raise ValueError(f"password of user {user!r} is not a bcrypt hash") from None
        return users


def load_web_config(path: str | Path) -> WebSecurityConfig:
    """Read and validate a web config file."""
    text = read_document(path, "web config file")
    if not text.strip():
        return WebSecurityConfig()
    return parse_document(
        WebSecurityConfig, text, str(path), "tls_server_config or basic_auth_users"
    )


def ssl_context(config: TLSServerConfig, origin: str) -> ssl.SSLContext:
    """A server-side TLS context; bad certificate files are config errors, named."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _TLS_VERSIONS[config.min_version]
    context.maximum_version = _TLS_VERSIONS[config.max_version]
    try:
        context.load_cert_chain(config.cert_file, config.key_file)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
        raise ConfigError(
            f"{origin}: tls_server_config: cannot load cert_file/key_file: {reason}"
        ) from None
    if config.client_ca_file is not None:
        try:
            context.load_verify_locations(cafile=config.client_ca_file)
        except (OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
            raise ConfigError(
                f"{origin}: tls_server_config.client_ca_file: cannot load: {reason}"
            ) from None
    context.verify_mode = {
        "NoClientCert": ssl.CERT_NONE,
        "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
        "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
    }[config.client_auth_type]
    return context


# bcrypt work waiting or running at once, in total and per client address. A flood of wrong
# passwords then costs at most this much CPU, and a first login never queues behind
# thousands of checks: past the bound a client is told to retry (429) at once.
MAX_PENDING_CHECKS = 16
MAX_PENDING_CHECKS_PER_ADDRESS = 4
# Wrong (user, password) pairs remembered, as exporter-toolkit does, so that a client
# repeating the same wrong password (a stale Prometheus secret) costs no bcrypt.
MAX_REMEMBERED_FAILURES = 4096
# bcrypt reads at most 72 bytes of a password. Go's CompareHashAndPassword, which
# exporter-toolkit uses, ignores the rest; Python's bcrypt 5 refuses longer passwords.
BCRYPT_MAX_PASSWORD_BYTES = 72

Verdict = Literal["ok", "wrong", "busy"]


class _Checks:
    """The bcrypt checks in flight and the outcomes remembered, shared by all requests."""

    def __init__(self, users: dict[str, SecretStr]) -> None:
        self.key = secrets.token_bytes(32)
        self.verified: set[bytes] = set()
        self.refused: OrderedDict[bytes, None] = OrderedDict()
        self.hashes = {user: hashed.get_secret_value().encode() for user, hashed in users.items()}
        cost = int(next(iter(self.hashes.values()))[4:6]) if self.hashes else 10
        self.dummy = bcrypt.hashpw(b"no such user", bcrypt.gensalt(rounds=cost))
        self.workers = asyncio.Semaphore(2)
        self.pending = 0
        self.pending_by_address: Counter[str] = Counter()

    def fingerprint(self, user: str, password: str) -> bytes:
        return hmac.new(self.key, f"{user}\0{password}".encode(), hashlib.sha256).digest()

    @staticmethod
    def check(password: bytes, hashed: bytes) -> bool:
        try:
            return bcrypt.checkpw(password[:BCRYPT_MAX_PASSWORD_BYTES], hashed)
        except ValueError:
            return False

    async def verdict(self, header: str, address: str) -> Verdict:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return "wrong"
        try:
            user, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return "wrong"
        if not sep:
            return "wrong"
        mark = self.fingerprint(user, password)
        if mark in self.verified:
            return "ok"
        if mark in self.refused:
            return "wrong"
        if (
            self.pending >= MAX_PENDING_CHECKS
            or self.pending_by_address[address] >= MAX_PENDING_CHECKS_PER_ADDRESS
        ):
            return "busy"
        hashed = self.hashes.get(user)
        self.pending += 1
        self.pending_by_address[address] += 1
        try:
            async with self.workers:
                ok = await asyncio.to_thread(self.check, password.encode(), hashed or self.dummy)
        finally:
            self.pending -= 1
            self.pending_by_address[address] -= 1
            if not self.pending_by_address[address]:
                del self.pending_by_address[address]
        if ok and hashed is not None:
            self.verified.add(mark)
            return "ok"
        self.refused[mark] = None
        if len(self.refused) > MAX_REMEMBERED_FAILURES:
            self.refused.popitem(last=False)
        return "wrong"


def basic_auth(users: dict[str, SecretStr]) -> Middleware:
    """Middleware asking every request for one of `users`' passwords.

    bcrypt is slow on purpose (~60 ms at cost 10), so it runs in worker threads, two at a
    time, never on the event loop that serves scrapes and reads providers. A password that
    matched once is remembered by a keyed hash, so a scrape every few seconds does not pay
    for bcrypt each time, and a password flood never delays it. Unknown users are checked
    against a dummy hash of the same cost, so response times do not tell which user names
    exist.
    """
    checks = _Checks(users)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        header = request.headers.get("Authorization", "")
        verdict = await checks.verdict(header, request.remote or "")
        if verdict == "busy":
            return web.Response(
                status=429,
                text="Too many password checks in progress; try again\n",
                headers={"Retry-After": "1"},
            )
        if verdict != "ok":
            return web.Response(
                status=401,
                text="Unauthorized\n",
                headers={"WWW-Authenticate": 'Basic realm="sync-status-exporter"'},
            )
        return await handler(request)

    return middleware
