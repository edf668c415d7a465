"""The `generic:` block's models: every path and state checked at load time, so a wrong
mapping fails the config, never a scrape."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, SecretStr, model_validator

from exporter.model import State
from exporter.providers.detailpages import DetailPages
from exporter.providers.generic.presets import merged, preset, preset_names
from exporter.providers.lastsuccess import LastSuccessFrom
from exporter.providers.oauth import ClientCredentials
from exporter.schema import (
    MAX_SECRET_BYTES,
    Checked,
    FieldError,
    Model,
    SourceConfig,
    SyncConfig,
    check_header,
    compile_path,
    read_secret_file,
    secret_from,
    shown,
)

MAX_RULES = 50
_REQUEST_PATH = re.compile(r"/(?!/)[\x21-\x22\x24-\x7e]*")
_PRESET_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def _expression(text: str) -> str:
    """A path that compiles, so a typo fails the load and not every scrape."""
    compile_path(text)
    return text


Expression = Annotated[str, AfterValidator(_expression)]


def _request_path(text: str) -> str:
    """A path on base_url: credentials only ever go to the configured host."""
    if not _REQUEST_PATH.fullmatch(text) or "://" in text:
        raise ValueError(
            f"must be a path on base_url starting with '/', without scheme, host, spaces or "
            f"'#', got {shown(text)}"
        )
    return text


RequestPath = Annotated[str, AfterValidator(_request_path)]


class _Shorthand(Model):
    """A field given as a bare JMESPath, or as an object with the path and how to read it."""

    @model_validator(mode="before")
    @classmethod
    def _from_path(cls, data: Any) -> Any:
        return {"path": data} if isinstance(data, str) else data


class NumberField(_Shorthand):
    """A number; `scale` divides it (a percentage with scale 100 is a ratio)."""

    path: Expression
    scale: Annotated[float, Field(gt=0)] = 1.0


class TimeField(_Shorthand):
    """A point in time: an ISO-8601 string, or Unix seconds or milliseconds."""

    path: Expression
    format: Literal["iso", "epoch", "epoch_ms"] = "iso"


class DurationField(_Shorthand):
    """A length of time: a number in `unit`, a duration string such as `5m`, or one written
    out such as `every 30 minutes`."""

    path: Expression
    unit: Literal["ms", "s", "m", "h", "d"] = "s"


class Fields(Model):
    """Where each part of a sync's status is, in a list item or a detail body."""

    id: Expression = "id"
    status: Expression
    last_success: TimeField | None = None
    progress: NumberField | None = None
    records_synced: NumberField | None = None
    records_expected: NumberField | None = None
    interval: DurationField | None = None
    backoff: DurationField | None = None
    backoff_until: TimeField | None = None
    error: Expression | None = None
    warning: Expression | None = None
    on_demand: Expression | None = None
    name: Expression | None = None
    integration: Expression | None = None
    # The latest run's identity (a job id, a failure's time): a new one while errored is
    # another failed run for sync_runs_total.
    run: Expression | None = None


class Rule(Model):
    """A canonical state for syncs whose document makes `when` true (JMESPath truthiness)."""

    when: Expression
    state: State


class ListSpec(Checked):
    """How to list the syncs: one GET, following pages by cursor, by next-page URL, or by
    offset while the page says there are more (`offset_param` with `more`)."""

    path: RequestPath
    items: Expression = "@"
    next: Expression | None = None
    cursor_param: str | None = None
    offset_param: str | None = None
    more: Expression | None = None
    params: dict[str, str | int] = Field(default_factory=dict)

    @classmethod
    def problems(cls, values: Mapping[str, Any], raw: Mapping[str, Any]) -> Iterator[FieldError]:
        """A cursor needs the path to it, an offset the path saying more pages follow (and
        neither goes with the other); a query parameter needs a name and a value."""
        cursor = values.get("cursor_param")
        if cursor is not None and raw.get("next") is None:
            yield FieldError("cursor_param", "needs next: the path to the next page's cursor")
        offset = values.get("offset_param")
        if offset is not None and raw.get("more") is None:
            yield FieldError("offset_param", "needs more: the path that says more pages follow")
        if raw.get("more") is not None and offset is None:
            yield FieldError("more", "needs offset_param: the query parameter of the offset")
        if offset is not None and raw.get("next") is not None:
            yield FieldError("offset_param", "set either offset_param (with more) or next")
        for name, given in (("cursor_param", cursor), ("offset_param", offset)):
            if given is not None and not given.strip():
                yield FieldError(name, "is empty")
        for name, value in values.get("params", {}).items():
            if not name.strip():
                yield FieldError("params", "a query parameter has an empty name")
            elif isinstance(value, str) and not value.strip():
                yield FieldError(f"params.{name}", "is empty: set it (the preset leaves it to you)")


def _detail(text: str) -> str:
    """A request path whose only placeholder is the sync id."""
    _request_path(text.replace("{id}", "x"))
    if "{" in text.replace("{id}", "") or "}" in text.replace("{id}", ""):
        raise ValueError(f"only {{id}} is filled in, got {shown(text)}")
    return text


class GenericApi(Checked):
    """The `generic:` block: where the syncs are and how their JSON maps to a status."""

    listing: ListSpec | None = Field(default=None, alias="list")
    detail: Annotated[str, AfterValidator(_detail)] | None = None
    detail_pages: DetailPages | None = None
    last_success_from: LastSuccessFrom | None = None
    fields: Fields
    states: dict[str, State] = Field(default_factory=dict)
    state_rules: Annotated[list[Rule], Field(max_length=MAX_RULES)] = Field(default_factory=list)
    # For providers that mark every full run initial (Nango): initializing only until a
    # success of the sync has been seen.
    initial_until_success: bool = False

    @classmethod
    def problems(cls, values: Mapping[str, Any], raw: Mapping[str, Any]) -> Iterator[FieldError]:
        """Somewhere to read syncs from, and statuses told apart by more than their case."""
        if raw.get("list") is None and raw.get("detail") is None:
            yield FieldError(
                "", "set list (the syncs and their statuses), detail (one GET per sync), or both"
            )
        if raw.get("detail_pages") is not None and raw.get("detail") is None:
            yield FieldError("detail_pages", "pages of the detail body: set detail")
        if raw.get("last_success_from") is not None and raw.get("detail") is None:
            yield FieldError("last_success_from", "needs detail: it is read after each detail")
        folded: dict[str, tuple[str, State]] = {}
        for status, state in values.get("states", {}).items():
            if not status:
                yield FieldError("states", "a provider status is empty")
                continue
            seen = folded.setdefault(status.lower(), (status, state))
            if seen[1] is not state:
                yield FieldError(
                    f"states.{status}",
                    f"differs from {seen[0]!r} only in case but maps to another state",
                )


class GenericAuth(Model):
    """A token sent as Bearer or in a header of its own, a user name and password (Basic), or
    OAuth2 client credentials that mint the token."""

    client_credentials: ClientCredentials | None = None
    token: SecretStr | None = None
    token_file: Path | None = None
    header: str | None = None
    username: SecretStr | None = None
    username_file: Path | None = None
    password: SecretStr | None = None
    password_file: Path | None = None

    @model_validator(mode="after")
    def _one_way(self) -> GenericAuth:
        if self.client_credentials is not None:
            others = [name for name in type(self).model_fields if name != "client_credentials"]
            if any(getattr(self, name) is not None for name in others):
                raise ValueError("set either client_credentials or a token or password, not both")
            return self
        token = secret_from(self.token, self.token_file, "token")
        user = secret_from(self.username, self.username_file, "username")
        password = _password(self.password, self.password_file)
        if token is not None and (user is not None or password is not None):
            raise ValueError("set either a token or a username and password, not both")
        if token is None and user is None and password is None:
            raise ValueError(
                "token or token_file (sent as Bearer, or in the header named by header), "
                "username and password (Basic), or client_credentials, is required"
            )
        if user is None and password is not None:
            raise FieldError("username", "is required with a password (Basic auth)")
        if user is not None and password is None:
            raise FieldError("password", "is required with a username (Basic auth)")
        if user is not None and ":" in user.get_secret_value():
            raise FieldError(
                "username", "must not contain ':' (Basic auth joins it to the password)"
            )
        if self.header is not None:
            if token is None:
                raise FieldError("header", "names the header the token goes in: set token")
            try:
                check_header(self.header, "")
            except ValueError as exc:
                raise FieldError("header", str(exc)) from None
        object.__setattr__(self, "token", token)
        object.__setattr__(self, "username", user)
        object.__setattr__(self, "password", password)
        return self

    def headers(self) -> dict[str, str]:
        """The authentication header, in plain text: for requests only (none with client
        credentials, whose minted token is added per request)."""
        if self.client_credentials is not None:
            return {}
        if self.token is not None:
            if self.header is None:
                return {"Authorization": f"Bearer {self.token.get_secret_value()}"}
            return {self.header: self.token.get_secret_value()}
        assert self.username is not None and self.password is not None
        pair = f"{self.username.get_secret_value()}:{self.password.get_secret_value()}"
        return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}


def _password(inline: SecretStr | None, path: Path | None) -> SecretStr | None:
    """A Basic password: any characters but line breaks (it is sent base64-encoded)."""
    if inline is not None and path is not None:
        raise ValueError("set either password or password_file, not both")
    text = inline.get_secret_value() if inline is not None else None
    where = "password"
    if path is not None:
        where = f"password_file {shown(str(path))}"
        text = read_secret_file(path, "password_file")
    if text is None:
        return None
    if not text or "\n" in text or "\r" in text or len(text) > MAX_SECRET_BYTES:
        raise ValueError(f"{where} is empty, longer than {MAX_SECRET_BYTES} or has a line break")
    return SecretStr(text)


class GenericSyncConfig(SyncConfig):
    """A configured sync; its own headers (inline or from files) go with its detail request."""

    headers: dict[str, SecretStr] = Field(default_factory=dict)
    header_files: dict[str, Path] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _read_headers(self) -> GenericSyncConfig:
        merged = dict(self.headers)
        for name, path in self.header_files.items():
            if name in merged:
                raise FieldError(f"header_files.{name}", "is also in headers: set it once")
            try:
                merged[name] = SecretStr(read_secret_file(path, f"header_files.{name}"))
            except ValueError as exc:
                raise FieldError(f"header_files.{name}", str(exc)) from None
        for name, value in merged.items():
            try:
                check_header(name, value.get_secret_value())
            except ValueError as exc:
                raise FieldError("headers", str(exc)) from None
        object.__setattr__(self, "headers", merged)
        return self


class GenericConfig(SourceConfig[GenericAuth, GenericSyncConfig]):
    """Any JSON sync API, described by its `generic:` block (or a preset and overrides)."""

    provider: Literal["generic"]
    preset: str | None = None
    generic: GenericApi

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("preset") is None:
            return data
        name = data["preset"]
        well_formed = isinstance(name, str) and _PRESET_NAME.fullmatch(name) is not None
        if not well_formed or name not in preset_names():
            known = ", ".join(preset_names())
            raise FieldError("preset", f"unknown preset {shown(name)} (known: {known})")
        base = preset(name)
        auth = data.get("auth")
        if isinstance(auth, dict) and "client_credentials" not in auth:
            base.pop("auth", None)  # another way to sign in replaces the preset's whole
        if data.get("webhook") is None:
            base.pop("webhook", None)  # a preset's webhook applies only to a source that has one
        return merged(base, data)

    @classmethod
    def problems(cls, values: Mapping[str, Any], raw: Mapping[str, Any]) -> Iterator[FieldError]:
        """A host to call, a list to discover from, and a detail request for per-sync headers
        (one without `{id}` then tells the syncs apart by their headers alone)."""
        yield from super().problems(values, raw)
        if values.get("base_url") == "":
            yield FieldError("base_url", "is required for the generic provider (or a preset's)")
        api: GenericApi | None = values.get("generic")
        if api is None:
            return
        if values.get("discover") and api.listing is None:
            yield FieldError("discover", "needs generic.list: how to list the syncs")
        syncs: list[GenericSyncConfig] = values.get("syncs", [])
        headed = [i for i, sync in enumerate(syncs) if sync.headers]
        if headed and api.detail is None:
            yield FieldError(
                f"syncs[{headed[0]}].headers",
                "a sync's own headers go with its detail request: set generic.detail",
            )
        if api.detail is not None and "{id}" not in api.detail:
            if api.listing is not None:
                yield FieldError(
                    "generic.detail",
                    "must contain {id} when syncs are listed (every sync would read the same URL)",
                )
            elif len(syncs) > 1 and len(headed) < len(syncs):
                yield FieldError(
                    "generic.detail",
                    "without {id}, every sync must carry its own headers (syncs[].headers), "
                    "or they would all read the same URL",
                )
