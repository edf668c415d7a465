"""Any sync API that answers JSON, mapped onto the canonical status by configuration alone.

Teams run more sync services than we write adapters for, and each has a status API of its
own shape. A `generic:` block says where the syncs are (a list, a detail request, or both),
which JMESPath finds each field, and which provider status is which canonical state; every
path and state is checked at load time, so a wrong mapping fails the config, never a scrape.
Presets (`preset: fivetran`) are such blocks shipped in `exporter/presets/`, laid under the
source's own keys.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import functools
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlencode, urlsplit

import yaml
from pydantic import AfterValidator, Field, SecretStr, model_validator

from exporter import jpath
from exporter.metrics import SYNC_HEALTH
from exporter.model import State, SyncStatus
from exporter.providers.base import (
    MAX_LIST_PAGES,
    Adapter,
    BadResponse,
    Http,
    Listing,
    UpstreamError,
    path_id,
)
from exporter.providers.detailpages import DetailPages, PagedDetail
from exporter.providers.lastsuccess import LastSuccessFrom, LastSuccessReader
from exporter.providers.oauth import ClientCredentials, Tokens
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
from exporter.selection import LARGE_LISTING, Capped, first_by_id
from exporter.successes import Successes
from exporter.targets import Found, Shard, Target
from exporter.threads import in_thread

PRESET_KEYS = frozenset({"base_url", "headers", "label_from", "generic", "auth", "webhook"})
MAX_RULES = 50
# A list fetched for a scrape answers the reads of that scrape's leftovers for this long.
LIST_REUSE = 1.0
_REQUEST_PATH = re.compile(r"^/(?!/)[\x21-\x22\x24-\x7e]*$")
_PRESET_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


# --- the configuration ---------------------------------------------------------------------


def _expression(text: str) -> str:
    """A path that compiles, so a typo fails the load and not every scrape."""
    compile_path(text)
    return text


Expression = Annotated[str, AfterValidator(_expression)]


def _request_path(text: str) -> str:
    """A path on base_url: credentials only ever go to the configured host."""
    if not _REQUEST_PATH.match(text) or "://" in text:
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


@functools.cache
def _preset_files() -> dict[str, str]:
    """The shipped presets' YAML texts by name (read once)."""
    folder = resources.files("exporter") / "presets"
    found = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".yml"):
            found[entry.name.removesuffix(".yml")] = entry.read_text(encoding="utf-8")
    return dict(sorted(found.items()))


def preset_names() -> tuple[str, ...]:
    """The names `preset:` accepts."""
    return tuple(_preset_files())


@functools.cache
def _preset(name: str) -> dict[str, Any]:
    document = yaml.safe_load(_preset_files()[name])
    if not isinstance(document, dict) or not set(document) <= PRESET_KEYS:
        raise RuntimeError(f"preset {name} may only hold {', '.join(sorted(PRESET_KEYS))}")
    return document


def preset(name: str) -> dict[str, Any]:
    """A fresh copy of one preset's keys (base_url, headers, label_from, generic)."""
    return copy.deepcopy(_preset(name))


def merged(base: Any, over: Any) -> Any:
    """`over` laid on `base`: mappings merge key by key, `null` removes the base's key (back to
    the default), anything else replaces."""
    if isinstance(base, dict) and isinstance(over, dict):
        result = dict(base)
        for key, value in over.items():
            if value is None and key in base:
                del result[key]
            else:
                result[key] = merged(base[key], value) if key in base else value
        return result
    return over


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
        if not isinstance(name, str) or not _PRESET_NAME.match(name) or name not in _preset_files():
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


# --- reading ---------------------------------------------------------------------------------


def _plain_field(expression: Any) -> str | None:
    """The key, when a compiled path only takes one key of an object (`id`): then a dict
    lookup finds the same as JMESPath, some thirty times faster over a huge list."""
    parsed = getattr(expression, "parsed", None)
    if isinstance(parsed, dict) and parsed.get("type") == "field" and not parsed.get("children"):
        value = parsed.get("value")
        return value if isinstance(value, str) else None
    return None


@dataclass(frozen=True, slots=True)
class StatusMap:
    """A `generic:` block with every path compiled once: the document-to-status function."""

    status: Any
    status_text: str
    rules: tuple[tuple[Any, State], ...]
    states: Mapping[str, State]
    folded: Mapping[str, State]
    numbers: tuple[tuple[str, Any, float], ...]
    last_success: tuple[Any, str] | None
    interval: tuple[Any, str] | None
    backoff: tuple[Any, str] | None
    backoff_until: tuple[Any, str] | None
    texts: tuple[tuple[str, Any], ...]
    warning: Any = None
    on_demand: Any = None

    @classmethod
    def of(cls, api: GenericApi) -> StatusMap:
        """Compile `api`'s paths (they were checked at load time)."""
        f = api.fields
        numbers = tuple(
            (name, compile_path(spec.path), spec.scale)
            for name, spec in (
                ("progress_ratio", f.progress),
                ("records_synced", f.records_synced),
                ("records_expected", f.records_expected),
            )
            if spec is not None
        )

        def timed(spec: TimeField | None) -> tuple[Any, str] | None:
            return None if spec is None else (compile_path(spec.path), spec.format)

        def lasting(spec: DurationField | None) -> tuple[Any, str] | None:
            return None if spec is None else (compile_path(spec.path), spec.unit)

        texts = tuple(
            (name, compile_path(path))
            for name, path in (("error", f.error), ("name", f.name), ("integration", f.integration))
            if path is not None
        )
        return cls(
            status=compile_path(f.status),
            status_text=f.status,
            rules=tuple((compile_path(rule.when), rule.state) for rule in api.state_rules),
            states=dict(api.states),
            folded={status.lower(): state for status, state in api.states.items()},
            numbers=numbers,
            last_success=timed(f.last_success),
            interval=lasting(f.interval),
            backoff=lasting(f.backoff),
            backoff_until=timed(f.backoff_until),
            texts=texts,
            warning=None if f.warning is None else compile_path(f.warning),
            on_demand=None if f.on_demand is None else compile_path(f.on_demand),
        )

    def state(self, document: Any, status: str) -> State:
        """The first rule that holds, else the status's mapping (exact, then ignoring case)."""
        for when, state in self.rules:
            if jpath.truthy(jpath.search(when, document)):
                return state
        found = self.states.get(status)
        if found is None:
            found = self.folded.get(status.lower(), State.UNKNOWN)
        return found

    def parse(self, document: Any, now: float | None = None) -> SyncStatus:
        """Map one sync's document (a list item, or a detail body over it) to a status."""
        if not isinstance(document, dict | list):
            raise BadResponse(f"expected a JSON object or array, got {type(document).__name__}")
        status = jpath.text(jpath.search(self.status, document))
        if status is None:
            raise BadResponse(f"the status path {self.status_text!r} found no string")
        state = self.state(document, status)
        found = {name: jpath.text(jpath.search(path, document)) or "" for name, path in self.texts}
        result = SyncStatus(
            state=state,
            provider_status=status,
            info={"name": found.get("name", ""), "integration": found.get("integration", "")},
            error_reason=found.get("error", ""),
        )
        for name, path, scale in self.numbers:
            number = jpath.number(jpath.search(path, document))
            setattr(result, name, None if number is None else number / scale)
        if self.last_success is not None:
            path, format = self.last_success
            result.last_synced_timestamp = jpath.point(jpath.search(path, document), format)
        if self.interval is not None:
            path, unit = self.interval
            result.interval_seconds = jpath.duration(jpath.search(path, document), unit)
        result.rate_limit_backoff_seconds = self._backoff(document, state, now)
        if self.on_demand is not None and jpath.truthy(jpath.search(self.on_demand, document)):
            # Syncs only when asked (manual schedules): no budget from an interval.
            result.on_demand, result.interval_seconds = True, None
        if self.warning is not None:
            warned = jpath.truthy(jpath.search(self.warning, document))
            result.sets[SYNC_HEALTH.field] = "warn" if warned else "ok"
        return result

    def _backoff(self, document: Any, state: State, now: float | None) -> float | None:
        if self.backoff is None and self.backoff_until is None:
            return None
        if state is not State.RATE_LIMITED:
            return 0.0
        if self.backoff is not None:
            path, unit = self.backoff
            seconds = jpath.duration(jpath.search(path, document), unit)
            if seconds is not None:
                return seconds
        if self.backoff_until is not None:
            path, format = self.backoff_until
            until = jpath.point(jpath.search(path, document), format)
            if until is not None:
                return max(until - (time.time() if now is None else now), 0.0)
        return None


def _origin(url: str) -> tuple[str, str, int] | None:
    """Scheme, host and port as a browser compares origins: the host's case and a default
    port do not matter; None for a URL with no host or a bad port."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or {"http": 80, "https": 443}.get(scheme, 0)
    except ValueError:
        return None
    return None if not parts.hostname else (scheme, parts.hostname, port)


# A listing as remembered: when it began, the items kept by id, and the ids it kept.
Listed = tuple[float, dict[str, Any], frozenset[str]]


class Generic(Adapter[GenericConfig]):
    """A source of any JSON sync API: listed, read in bulk from the list, or one GET each."""

    name = "generic"
    default_base_url = ""
    config_model = GenericConfig
    # With a detail request the list item describes each sync (its name, say); without one
    # discover() lists only when asked to, as a scrape reads the list anyway.
    lists_for_info = True
    families = (SYNC_HEALTH,)

    def __init__(self, config: GenericConfig, shard: Shard) -> None:
        super().__init__(config, shard)
        api = config.generic
        self.mapping = StatusMap.of(api)
        self._listing = api.listing
        self._detail = api.detail
        self._pages = None if api.detail_pages is None else PagedDetail(api.detail_pages)
        self._items = None if api.listing is None else compile_path(api.listing.items)
        self._next = (
            None
            if api.listing is None or api.listing.next is None
            else compile_path(api.listing.next)
        )
        self._more = (
            None
            if api.listing is None or api.listing.more is None
            else compile_path(api.listing.more)
        )
        self._id = compile_path(api.fields.id)
        self._id_key = _plain_field(self._id)
        self._auth = config.auth.headers()
        spec = config.auth.client_credentials
        since = api.last_success_from
        self._last_success = None if since is None else LastSuccessReader(since, self.base_url)
        self._tokens = None if spec is None else Tokens(spec, self.base_url, self)
        self._own = {
            sync.id: {name: value.get_secret_value() for name, value in sync.headers.items()}
            for sync in config.syncs
            if sync.headers
        }
        self._origin = _origin(self.base_url)
        base = urlsplit(self.base_url)
        self._root = f"{base.scheme}://{base.netloc}"
        self._lock = asyncio.Lock()
        self._listed: Listed | None = None
        self._successes = Successes(api.initial_until_success)

    def adopt(self, previous: Adapter[Any]) -> None:
        """The last successes the replaced source saw (its mapping was the same)."""
        if isinstance(previous, Generic):
            self._successes = previous._successes

    @property
    def mints(self) -> bool:
        """Client credentials mint the source's tokens (counted as Paragon's are)."""
        return self._tokens is not None

    def _authorized(self, http: Http) -> Http:
        """`http` adding the minted token, for one read, when client credentials are set."""
        return http if self._tokens is None else self._tokens.bound(http)

    def _headers(self, sync_id: str | None) -> dict[str, str]:
        if sync_id is None or sync_id not in self._own:
            return self._auth
        return {**self._own[sync_id], **self._auth}

    def reads_in_bulk(self) -> bool:
        """Without a detail request the list carries every status: one listing answers all."""
        return self._listing is not None and self._detail is None

    async def discover(self, http: Http) -> Listing:
        """Every listed sync, its list item as context (what the detail body is laid over).

        A huge list is cut to the configured syncs and the first by id up to `max_syncs`
        before any is built (in a thread), the others only counted.
        """
        if self._listing is None or (not self.config.discover and self._detail is None):
            return {"": []}
        http = self._authorized(http)
        try:
            items = await self._list(http)
        except UpstreamError as exc:
            return {"": exc}
        except BadResponse as exc:
            return {"": UpstreamError("bad_response", str(exc))}
        if len(items) <= LARGE_LISTING:
            return {"": [Found(sync_id, context=item) for sync_id, item in items]}
        configured = {sync.id for sync in self.config.syncs}
        cap = int(self.config.max_syncs) if self.config.discover else 0

        def pick() -> Capped:
            chosen, beyond = first_by_id(
                items, configured, cap, lambda sync_id: self.shard.owns(self.config.name, sync_id)
            )
            found = Capped(Found(sync_id, context=item) for sync_id, item in chosen)
            found.beyond = beyond
            return found

        return {"": await in_thread(pick, "listing", no_gc=True)}

    async def read_many(self, targets: Sequence[Target], http: Http) -> dict[str, SyncStatus]:
        """Every status the list carries, from one listing (every page of it), or from a
        listing that began after this call did (concurrent probes and collections share it).
        Only the targets' items are kept and parsed, however long the list."""
        asked = time.monotonic()
        http = self._authorized(http)
        wanted = {target.sync_id for target in targets}
        async with self._lock:
            listed = self._listed
            if listed is None or listed[0] < asked or not wanted <= listed[2]:
                listed = await self._fresh_listing(http, wanted)
        statuses = {}
        now = time.time()
        for sync_id in wanted:
            item = listed[1].get(sync_id)
            if item is None:
                continue
            try:
                status = self.mapping.parse(item, now)
                status.info.update(self.described(item))
            except Exception:
                continue  # read on its own next, which says why
            statuses[sync_id] = self._successes.settle(sync_id, status, now)
        return statuses

    async def _fresh_listing(self, http: Http, wanted: set[str]) -> Listed:
        """List now and remember the items of the `wanted` syncs, with when it began; a sync
        listed twice keeps its first item, as discovery does. Called with the lock held."""
        began = time.monotonic()
        pairs = await self._list(http)

        def keep() -> dict[str, Any]:
            items: dict[str, Any] = {}
            for sync_id, item in pairs:
                if sync_id in wanted:
                    items.setdefault(sync_id, item)
            return items

        items = (
            await in_thread(keep, "listing", no_gc=True) if len(pairs) > LARGE_LISTING else keep()
        )
        self._listed = (began, items, frozenset(wanted))
        return self._listed

    async def read(self, target: Target, http: Http) -> SyncStatus:
        """One sync: its detail body laid over its list item, or its item of a fresh listing."""
        item = target.context if isinstance(target.context, dict) else {}
        http = self._authorized(http)
        if self._detail is not None:
            url = self.base_url + self._detail.replace("{id}", path_id(target.sync_id))
            headers = self._headers(target.sync_id)
            if self._pages is None:
                body = await http.get(url, headers)
            else:
                body = await self._pages.read(http, url, headers)
            document = {**item, **body} if isinstance(body, dict) else body
        else:
            document = await self._listed_item(target.sync_id, http)
        now = time.time()
        status = self.mapping.parse(document, now)
        status.info.update(self.described(document))
        if self._last_success is not None:
            headers = self._headers(target.sync_id)
            await self._last_success.fill(
                status, document, target.sync_id, target.memory, http, headers
            )
        return self._successes.settle(target.sync_id, status, now)

    async def _listed_item(self, sync_id: str, http: Http) -> Any:
        """The sync's item from a listing at most LIST_REUSE old, so leftovers of a bulk read
        cost no second listing."""
        async with self._lock:
            listed = self._listed
            if listed is None or time.monotonic() - listed[0] > LIST_REUSE:
                listed = await self._fresh_listing(http, {sync_id})
            elif sync_id not in listed[2]:
                listed = await self._fresh_listing(http, {sync_id, *listed[2]})
        if sync_id not in listed[1]:
            raise BadResponse("the list does not carry this sync")
        return listed[1][sync_id]

    def _ids(self, items: list[Any]) -> list[tuple[str, Any]]:
        """Each item with its sync id ("" when it has none)."""
        key = self._id_key
        if key is not None:
            return [
                (jpath.text(item.get(key)) or "" if isinstance(item, dict) else "", item)
                for item in items
            ]
        return [(jpath.text(jpath.search(self._id, item)) or "", item) for item in items]

    def _first_page(self) -> str:
        assert self._listing is not None
        url = self.base_url + self._listing.path
        params = {name: str(value) for name, value in self._listing.params.items()}
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params)
        return url

    def _following(self, first: str, cursor: str) -> str:
        """The next page's URL: the first one with the cursor, or the URL the provider gave,
        which must stay on base_url's host (the request carries credentials)."""
        assert self._listing is not None
        param = self._listing.cursor_param or self._listing.offset_param
        if param is not None:
            query = urlencode({param: cursor})
            return first + ("&" if "?" in first else "?") + query
        if cursor.startswith("/") and not cursor.startswith("//"):
            return self._root + cursor
        if self._origin is None or _origin(cursor) != self._origin:
            raise BadResponse("the next page's URL is not on base_url's host")
        return cursor

    async def _list(self, http: Http) -> list[tuple[str, Any]]:
        """Every page of the list, as (sync id, item); a cursor seen twice is a failure, and so
        is an empty page that says more follow (its offset would repeat)."""
        assert self._items is not None
        first = self._first_page()
        url = first
        found: list[tuple[str, Any]] = []
        seen: set[str] = set()
        for _ in range(MAX_LIST_PAGES):
            body = await http.get(url, self._headers(None), listing=True)
            items = jpath.search(self._items, body)
            if not isinstance(items, list):
                raise BadResponse("the list's items path found no JSON array")
            if len(items) > LARGE_LISTING:
                found.extend(
                    await in_thread(functools.partial(self._ids, items), "listing", no_gc=True)
                )
            else:
                found.extend(self._ids(items))
            if self._more is not None:
                if not jpath.truthy(jpath.search(self._more, body)):
                    return found
                if not items:
                    raise UpstreamError("bad_response", "an empty page says more follow")
                url = self._following(first, str(len(found)))
                continue
            given = None if self._next is None else jpath.search(self._next, body)
            cursor = jpath.text(given) if jpath.truthy(given) else None
            if not cursor:
                return found
            if cursor in seen:
                raise UpstreamError("bad_response", "the list's next cursor repeats an earlier one")
            seen.add(cursor)
            url = self._following(first, cursor)
        raise UpstreamError("bad_response", f"the list did not end within {MAX_LIST_PAGES} pages")


PROVIDER = Generic
