"""Building blocks of the config models that every provider adapter's source model is made of.

Kept apart from `exporter.config`, which assembles the whole file from the adapters, so an
adapter can declare its own source model without importing the assembly.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Generic, TypeVar

import jmespath
from jmespath.exceptions import JMESPathError
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from exporter import values

MAX_SECRET_BYTES = 16384
MAX_LABEL_FROM = 10
MAX_SYNC_ID_LENGTH = 256
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_HEADER_VALUE = re.compile(r"^[\x21-\x7e]+$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_PRINTABLE = re.compile(r"^[\x21-\x7e\u00a0-\U0010ffff]+$")


class ConfigError(Exception):
    """The configuration cannot be used; the message lists every problem found."""


# The (variable, value) pairs `${VAR}` expansion put into the document being validated.
SUBSTITUTED: ContextVar[tuple[tuple[str, str], ...]] = ContextVar("substituted", default=())


def shown(value: object) -> str:
    """A config value as an error message may quote it: never what came from the environment.

    A value holding any expanded `${VAR}` is named by its variables instead, since a token
    or password put in the wrong field would otherwise be printed, logged and sent back to
    whoever called `/-/reload`.
    """
    text = str(value)
    names = sorted({name for name, sub in SUBSTITUTED.get() if sub and sub in text})
    if names:
        return "<value from " + ", ".join(f"${{{name}}}" for name in names) + ">"
    return repr(value)


class FieldError(ValueError):
    """A cross-field problem that belongs to one field: `field` is its path below the model.

    Raised from model validators, whose errors pydantic would otherwise place on the model;
    the loader appends `field` to the location so the message names the field itself.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class Model(BaseModel):
    """Base of every config model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _seconds(value: Any) -> Any:
    if isinstance(value, str):
        parsed = values.duration(value)
        if parsed is None:
            raise ValueError(f"not a duration: {shown(value)} (use e.g. 500ms, 10s, 5m, 1h)")
        return parsed
    return value


Seconds = Annotated[float, BeforeValidator(_seconds), Field(ge=0)]
PositiveSeconds = Annotated[float, BeforeValidator(_seconds), Field(gt=0)]


def check_label_names(labels: dict[str, str]) -> dict[str, str]:
    """Label names Prometheus accepts; names the exporter uses itself are checked by the loader."""
    for name in labels:
        if not _LABEL_NAME.match(name) or name.startswith("__"):
            raise ValueError(f"invalid label name {name!r}")
    return labels


def check_secret(value: str, where: str) -> None:
    """A token goes into an HTTP header: one line of visible ASCII, of a sane length."""
    if not value.strip():
        raise ValueError(f"{where} is empty")
    if len(value) > MAX_SECRET_BYTES:
        raise ValueError(f"{where} is longer than {MAX_SECRET_BYTES} characters")
    if not _HEADER_VALUE.match(value):
        raise ValueError(f"{where} contains spaces, line breaks, control or non-ASCII characters")


def check_header(name: str, value: str) -> None:
    """A header an adapter sends as configured: a valid name, and a value on one line."""
    if not _HEADER_NAME.match(name):
        raise ValueError(f"invalid HTTP header name {name!r}")
    if "\n" in value or "\r" in value:
        raise ValueError(f"header {name!r} contains a line break")


def read_secret_file(path: Path, where: str) -> str:
    """A secret file's text, stripped: a regular file of at most MAX_SECRET_BYTES.

    A FIFO would block open() until a writer came, freezing start-up or the reload, and a
    device such as /dev/zero never ends; both are refused. The file is checked before it is
    opened, opened without blocking, and checked again through the open handle, so swapping
    in a FIFO between the two cannot block either.
    """
    name = f"{where} {shown(str(path))}"
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise ValueError(f"{name} is not a regular file")
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ValueError(f"{name} is not a regular file")
            raw = handle.read(MAX_SECRET_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"cannot read {name}: {exc.strerror}") from None
    if len(raw) > MAX_SECRET_BYTES:
        raise ValueError(f"{name} is larger than {MAX_SECRET_BYTES} bytes")
    try:
        return raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ValueError(f"{name} is not UTF-8 text") from None


def secret_from(inline: SecretStr | None, path: Path | None, key: str) -> SecretStr | None:
    """One secret given inline or as a file, checked as a header value; None when neither."""
    if inline is not None and path is not None:
        raise ValueError(f"set either {key} or {key}_file, not both")
    if path is not None:
        text = read_secret_file(path, f"{key}_file")
        check_secret(text, f"{key}_file {shown(str(path))}")
        return SecretStr(text)
    if inline is not None:
        check_secret(inline.get_secret_value(), key)
    return inline


def check_sync_id(sync_id: str) -> str | None:
    """Why `sync_id` cannot be requested or exported safely, or None if it can."""
    if not sync_id or len(sync_id) > MAX_SYNC_ID_LENGTH:
        return f"must be 1 to {MAX_SYNC_ID_LENGTH} characters"
    if sync_id in (".", "..") or "/" in sync_id:
        return "must not be '.', '..' or contain '/'"
    if not _PRINTABLE.match(sync_id):
        return "must not contain spaces or control characters"
    return None


class BearerAuth(Model):
    """One API key or token, sent as `Authorization: Bearer`, given inline or as a file."""

    token: SecretStr | None = None
    token_file: Path | None = None

    @model_validator(mode="after")
    def _read_file(self) -> BearerAuth:
        token = secret_from(self.token, self.token_file, "token")
        if token is None:
            raise ValueError("token or token_file is required")
        object.__setattr__(self, "token", token)
        return self

    def bearer(self) -> str:
        """The token's plain value, for the Authorization header only."""
        assert self.token is not None
        return self.token.get_secret_value()


class SyncConfig(Model):
    """One sync to watch: an id, plus optional labels and staleness budget."""

    id: str
    labels: dict[str, str] = {}
    stale_after: PositiveSeconds | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        if isinstance(data, int | float) and not isinstance(data, bool):
            raise ValueError(f"sync id {shown(data)} must be a string: quote it in YAML")
        return {"id": data} if isinstance(data, str) else data

    @field_validator("id")
    @classmethod
    def _safe_id(cls, sync_id: str) -> str:
        problem = check_sync_id(sync_id)
        if problem is not None:
            raise ValueError(f"sync id {problem}")
        return sync_id

    _labels = field_validator("labels")(check_label_names)


def compile_path(expression: str) -> Any:
    """A JMESPath expression compiled once at load time; ValueError when it does not parse."""
    try:
        return jmespath.compile(expression)
    except JMESPathError as exc:
        # jmespath draws a caret under the expression on extra lines: keep the message one line.
        reason = str(exc).splitlines()[0].removeprefix("Invalid jmespath expression: ")
        reason = reason.removesuffix(", for expression:").rstrip(":")
        position = getattr(exc, "lex_position", None)
        if isinstance(position, int):
            reason += f" at character {position + 1}"
        raise ValueError(f"not a JMESPath expression: {shown(expression)} ({reason})") from None


A = TypeVar("A", bound=BaseModel)
S = TypeVar("S", bound=SyncConfig)


class SourceConfig(Model, Generic[A, S]):
    """What every source has, whatever its provider; an adapter adds its own fields.

    An adapter subclasses this with its `provider` literal, its auth model and its sync
    model, so its options are validated under the source with their paths in errors.
    """

    name: Annotated[str, Field(min_length=1)]
    provider: str
    base_url: str = ""
    auth: A
    labels: dict[str, str] = {}
    headers: dict[str, SecretStr] = {}
    syncs: list[S] = []
    stale_after: PositiveSeconds | None = None
    max_concurrency: Annotated[int, Field(ge=1)] | None = None
    request_timeout: PositiveSeconds | None = None
    discover: bool = False
    discover_interval: PositiveSeconds = 300.0
    max_syncs: Annotated[int, Field(ge=1)] = 10_000
    label_from: dict[str, str] = {}
    min_interval: Seconds = 0.0
    max_requests_per_second: Annotated[float, Field(gt=0)] | None = None
    # Read only through /probe?source=NAME, so Prometheus can scrape it on its own interval.
    probe_only: bool = False

    _labels = field_validator("labels")(check_label_names)

    @field_validator("headers")
    @classmethod
    def _header_names(cls, headers: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name, value in headers.items():
            if not _HEADER_NAME.match(name):
                raise ValueError(f"invalid HTTP header name {name!r}")
            if "\n" in value.get_secret_value() or "\r" in value.get_secret_value():
                raise ValueError(f"header {name!r} contains a line break")
        return headers

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if "@" in url.split("://", 1)[-1].split("/", 1)[0]:
            raise ValueError(
                "base_url must not contain a user name or password: "
                "put credentials in auth or headers"
            )
        if url and not re.match(r"^https?://[^/\s]+", url):
            raise ValueError(f"base_url must be an http:// or https:// URL, got {shown(url)}")
        return url.rstrip("/")

    @field_validator("syncs")
    @classmethod
    def _unique_ids(cls, syncs: list[S]) -> list[S]:
        seen: set[str] = set()
        for index, sync in enumerate(syncs):
            if sync.id in seen:
                raise FieldError(f"[{index}].id", f"sync id {shown(sync.id)} is listed twice")
            seen.add(sync.id)
        return syncs

    @field_validator("label_from")
    @classmethod
    def _label_paths(cls, label_from: dict[str, str]) -> dict[str, str]:
        if len(label_from) > MAX_LABEL_FROM:
            raise ValueError(f"at most {MAX_LABEL_FROM} labels")
        check_label_names(label_from)
        for label, expression in label_from.items():
            try:
                compile_path(expression)
            except ValueError as exc:
                raise FieldError(label, str(exc)) from None
        return label_from

    @model_validator(mode="after")
    def _reads_something(self) -> SourceConfig[A, S]:
        if not self.syncs and not self.discover:
            raise FieldError("syncs", "no syncs and discover is false: nothing to read")
        return self

    def compiled_label_from(self) -> list[tuple[str, Any]]:
        """The label_from expressions, compiled, in a stable order."""
        return [(label, compile_path(path)) for label, path in sorted(self.label_from.items())]


def labels_from(body: Any, expressions: Sequence[tuple[str, Any]]) -> dict[str, str]:
    """Label values read from a provider's object by label_from; absent paths give ''."""
    found: dict[str, str] = {}
    for label, expression in expressions:
        try:
            value = expression.search(body)
        except (JMESPathError, TypeError, ValueError):
            value = None
        if isinstance(value, bool):
            value = str(value).lower()
        elif isinstance(value, int | float):
            value = values.format_number(value)
        found[label] = values.label_text(value)
    return found
