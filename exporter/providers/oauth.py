"""OAuth2 client credentials (RFC 6749 section 4.4) for a source: its access token, minted
from a client id and secret, kept until shortly before it expires and minted again after a 401.

Airbyte's access tokens last minutes, so a token pasted into the config stops working soon
after start-up; a source that holds the application's client id and secret instead asks for a
fresh token whenever it needs one. Token requests go through the source's own `Http`, so they
count against its request budget, back-off and deadline like every other request.
"""

from __future__ import annotations

import asyncio
import base64
import math
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import quote, urlencode, urlsplit

import orjson
from pydantic import SecretStr, model_validator

from exporter.providers.base import Http, UpstreamError
from exporter.schema import FieldError, Model, check_secret, problems_error, secret_from, shown

BASE_URL = "{base_url}"
# A token is minted again this share of its lifetime before it expires (at most MAX_EARLY s).
EARLY_SHARE = 0.2
MAX_EARLY = 60.0
_CLIENT_ID = re.compile(r"[\x21-\x7e]{1,512}")


class ClientCredentials(Model):
    """`auth.client_credentials`: an application's id and secret, and where to trade them."""

    client_id: str
    client_secret: SecretStr | None = None
    client_secret_file: Path | None = None
    token_url: str | None = None
    body: Literal["json", "form"] = "form"

    @model_validator(mode="after")
    def _checked(self) -> ClientCredentials:
        problems: list[FieldError] = []
        if not _CLIENT_ID.fullmatch(self.client_id):
            problems.append(
                FieldError("client_id", "must be 1 to 512 printable characters without spaces")
            )
        secret = None
        try:
            secret = secret_from(self.client_secret, self.client_secret_file, "client_secret")
        except ValueError as exc:
            where = "client_secret_file" if self.client_secret_file is not None else ""
            problems.append(FieldError(where, str(exc)))
        else:
            if secret is None:
                problems.append(FieldError("", "client_secret or client_secret_file is required"))
        if self.token_url is None:
            problems.append(
                FieldError("token_url", "is required: the URL that trades the secret for a token")
            )
        else:
            problem = _url_problem(self.token_url)
            if problem is not None:
                problems.append(FieldError("token_url", problem))
        if problems:
            raise problems_error(type(self).__name__, problems)
        object.__setattr__(self, "client_secret", secret)
        return self

    def url(self, base_url: str) -> str:
        """The token URL, with `{base_url}` filled in."""
        assert self.token_url is not None
        return self.token_url.replace(BASE_URL, base_url.rstrip("/"), 1)


def _url_problem(url: str) -> str | None:
    """Why `url` cannot be the token URL: an http(s) URL, or a path under `{base_url}`."""
    rest = url.removeprefix(BASE_URL)
    if rest != url:
        if rest and not rest.startswith("/"):
            return f"must go on with '/' after {BASE_URL}, got {shown(url)}"
        url = "http://base" + rest
    if BASE_URL in rest:
        return f"{BASE_URL} may only start it, got {shown(url)}"
    parts = urlsplit(url)
    if "@" in parts.netloc:
        return "must not hold credentials (user:password@): give client_id and client_secret"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"must be an http(s) URL or start with {BASE_URL}, got {shown(url)}"
    if parts.fragment or any(c.isspace() for c in url):
        return f"must not hold a '#' part or spaces, got {shown(url)}"
    return None


class Counts(Protocol):
    """Where minting is counted: the adapter, whose counters the self-metrics export."""

    minted: int
    mint_failures: int


class Tokens:
    """One source's access token: minted when missing or about to expire, one mint at a time."""

    __slots__ = ("_counts", "_failed", "_form", "_headers", "_lock", "_token", "_until", "url")

    def __init__(self, spec: ClientCredentials, base_url: str, counts: Counts) -> None:
        assert spec.client_secret is not None
        secret = spec.client_secret.get_secret_value()
        self.url = spec.url(base_url)
        self._counts = counts
        if spec.body == "json":
            # Airbyte's documented body, with its hyphenated grant-type.
            document = {
                "client_id": spec.client_id,
                "client_secret": secret,
                "grant-type": "client_credentials",
            }
            self._form = orjson.dumps(document)
            self._headers = {"Content-Type": "application/json"}
        else:
            # RFC 6749 section 2.3.1: Basic with the form-encoded id and secret.
            pair = f"{quote(spec.client_id, safe='')}:{quote(secret, safe='')}".encode()
            self._form = urlencode({"grant_type": "client_credentials"}).encode()
            self._headers = {
                "Content-Type": "application/x-www-form-urlencoded",
                "Authorization": "Basic " + base64.b64encode(pair).decode(),
            }
        self._token: dict[str, str] | None = None
        self._until = 0.0
        self._failed: tuple[float, UpstreamError] | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"Tokens(url={self.url!r})"

    async def header(self, http: Http) -> dict[str, str]:
        """The Authorization header with a token that is not about to expire.

        Reads that waited while a mint failed share its failure instead of each asking again,
        so a refused secret costs one token request per wave of reads, not one per sync.
        """
        asked = time.monotonic()
        async with self._lock:
            if self._token is not None and time.monotonic() < self._until:
                return self._token
            if self._failed is not None and self._failed[0] >= asked:
                raise _again(self._failed[1])
            try:
                self._token, self._until = await self._mint(http)
            except UpstreamError as exc:
                self._failed = (time.monotonic(), exc)
                raise
            self._failed = None
            return self._token

    def forget(self, refused: Mapping[str, str]) -> None:
        """Drop the token a 401 refused (unless another read already replaced it)."""
        if self._token is refused:
            self._token = None

    async def _mint(self, http: Http) -> tuple[dict[str, str], float]:
        sent = time.monotonic()
        try:
            body = await http.post(self.url, self._headers, self._form)
        except UpstreamError as exc:
            if exc.sent:
                self._counts.mint_failures += 1
                exc.detail = f"token request failed: {exc.detail}"
            raise
        try:
            token, lifetime = _answer(body)
        except ValueError as exc:
            self._counts.mint_failures += 1
            raise UpstreamError("unauthorized", f"token answer unusable: {exc}") from None
        self._counts.minted += 1
        early = min(MAX_EARLY, lifetime * EARLY_SHARE)
        return {"Authorization": f"Bearer {token}"}, sent + lifetime - early

    def bound(self, http: Http) -> Authorized:
        """`http` with this source's token on every GET, for one read."""
        return Authorized(http, self)


def _again(failure: UpstreamError) -> UpstreamError:
    """A copy of a shared mint failure for one more read (each read raises its own)."""
    copy = UpstreamError(failure.reason, failure.detail, sent=False, code=failure.code)
    copy.retry_after = failure.retry_after
    return copy


def _answer(body: Any) -> tuple[str, float]:
    """The access token and its lifetime in seconds from a token answer (RFC 6749 5.1).

    Without `expires_in` (it is only recommended) the token is kept until it is refused.
    """
    if not isinstance(body, dict):
        raise ValueError("not a JSON object")
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise ValueError("no access_token string")
    try:
        check_secret(token, "access_token")
    except ValueError:
        raise ValueError("the access_token cannot go in a header") from None
    kind = body.get("token_type", "Bearer")
    if not isinstance(kind, str) or kind.lower() != "bearer":
        raise ValueError("token_type is not Bearer")
    lifetime = body.get("expires_in")
    if lifetime is None:
        return token, math.inf
    if isinstance(lifetime, str) and lifetime.isdigit():
        lifetime = int(lifetime)
    if isinstance(lifetime, bool) or not isinstance(lifetime, int | float):
        raise ValueError("expires_in is not a number")
    if not lifetime > 0 or not math.isfinite(lifetime):
        raise ValueError("expires_in is not a positive number")
    return token, float(lifetime)


class Authorized:
    """An `Http` that adds the source's token and, after a 401, mints one more and tries again
    (once per read: a token refused twice is a credential problem, not an expiry)."""

    __slots__ = ("_http", "_retried", "_tokens")

    def __init__(self, http: Http, tokens: Tokens) -> None:
        self._http = http
        self._tokens = tokens
        self._retried = False

    async def get(self, url: str, headers: Mapping[str, str], *, listing: bool = False) -> Any:
        """GET `url` with the token; once per read, again with a new token after a 401."""
        auth = await self._tokens.header(self._http)
        try:
            return await self._http.get(url, {**headers, **auth}, listing=listing)
        except UpstreamError as exc:
            if exc.code != "401" or self._retried:
                raise
        self._retried = True
        self._tokens.forget(auth)
        auth = await self._tokens.header(self._http)
        return await self._http.get(url, {**headers, **auth}, listing=listing)

    async def post(self, url: str, headers: Mapping[str, str], form: bytes) -> Any:
        """POST as given (token requests carry their own credentials)."""
        return await self._http.post(url, headers, form)
