"""Building blocks of the config models that every provider adapter's source model is made of.

Kept apart from `exporter.config`, which assembles the whole file from the adapters, so an
adapter can declare its own source model without importing the assembly.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Generic, Literal, Self, TypeVar

import jmespath
from jmespath.exceptions import JMESPathError
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    SecretStr,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError

from exporter import values
from exporter.errors import ConfigError as ConfigError

MAX_SECRET_BYTES = 16384
MAX_LABEL_FROM = 10
MAX_SYNC_ID_LENGTH = 256
DEFAULT_WEBHOOK_BODY = 1 << 20
MAX_WEBHOOK_BODY = 64 << 20
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_VALUE = re.compile(r"[\x21-\x7e]+")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_PRINTABLE = re.compile(r"[\x21-\x7e\u00a0-\U0010ffff]+")
_PATH_PART = re.compile(r"\[(\d+)\]|([^.\[\]]+)")

Location = tuple[int | str, ...]


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


def field_location(field: str) -> Location:
    """A FieldError's path (`syncs[1].id`) as pydantic writes locations: ('syncs', 1, 'id')."""
    return tuple(int(index) if index else name for index, name in _PATH_PART.findall(field))


def located(error: ErrorDetails) -> tuple[Location, str]:
    """Where a pydantic error is and what it says, with a FieldError's field appended."""
    location = tuple(error["loc"])
    problem = (error.get("ctx") or {}).get("error")
    if isinstance(problem, FieldError):
        location += field_location(problem.field)
    return location, error["msg"].removeprefix("Value error, ")


def _line(location: Location, message: str, kind: str = "value_error") -> InitErrorDetails:
    # The message goes in as a value, never as the template: a `${VAR}` in it has braces.
    error = PydanticCustomError(kind, "{message}", {"message": message})
    return InitErrorDetails(type=error, loc=location, input=None)


def problems_error(
    title: str, problems: Iterable[FieldError], earlier: ValidationError | None = None
) -> ValidationError:
    """One ValidationError holding every problem, each at its own field, after `earlier`'s.

    Raised from a validator, pydantic keeps each line and its location, so one validator
    can report several problems at once instead of one per round of fixes.
    """
    lines = []
    if earlier is not None:
        for error in earlier.errors(include_url=False, include_input=False):
            location, message = located(error)
            lines.append(_line(location, message, error["type"]))
    lines += [_line(field_location(problem.field), str(problem)) for problem in problems]
    return ValidationError.from_exception_data(title, lines)


class Model(BaseModel):
    """Base of every config model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# The fields validated so far by the innermost Checked model being validated.
_VALIDATED: ContextVar[dict[str, Any] | None] = ContextVar("validated", default=None)


class Checked(Model):
    """A model whose checks across fields run even when some of its other fields are invalid.

    pydantic runs model validators only once every field is valid, so a file with one bad
    duration would hide a source that reads nothing until the duration was fixed; here
    `problems()` runs on the fields that did validate, and its findings join pydantic's.
    """

    @classmethod
    def problems(cls, values: Mapping[str, Any], raw: Mapping[str, Any]) -> Iterator[FieldError]:
        """Problems across fields, each at its field's path below this model.

        `values` holds the fields that validated (defaults for those not given; a field whose
        own validation failed is absent, and a check needing it must skip). When another field
        failed, a value is as its type made it, before the field's own after-validators, which
        the checks here do not depend on. `raw` is the input mapping as given, for checks that
        must run even on fields that did not validate.
        """
        return iter(())

    @field_validator("*", mode="wrap")
    @classmethod
    def _note_validated(
        cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> Any:
        result = handler(value)
        validated = _VALIDATED.get()
        if validated is not None and info.field_name is not None:
            validated[info.field_name] = result
        return result

    @model_validator(mode="wrap")
    @classmethod
    def _check_across_fields(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        validated: dict[str, Any] = {}
        token = _VALIDATED.set(validated)
        try:
            model = handler(data)
        except ValidationError as exc:
            if not isinstance(data, dict):
                raise
            failed = {error["loc"][0] for error in exc.errors() if error["loc"]}
            values: dict[str, Any] = {}
            for name, info in cls.model_fields.items():
                if name in failed:
                    continue
                if name in validated:
                    values[name] = validated[name]
                elif name not in data and not info.is_required():
                    values[name] = info.get_default(call_default_factory=True, validated_data={})
            found = list(cls.problems(values, data))
            if found:
                raise problems_error(cls.__name__, found, exc) from None
            raise
        finally:
            _VALIDATED.reset(token)
        found = list(cls.problems(dict(model), data if isinstance(data, dict) else {}))
        if found:
            raise problems_error(cls.__name__, found)
        return model


def _seconds(value: Any) -> Any:
    if isinstance(value, str):
        parsed = values.duration(value)
        if parsed is None:
            raise ValueError(f"not a duration: {shown(value)} (use e.g. 500ms, 10s, 5m, 1h)")
        return parsed
    return value


Seconds = Annotated[float, BeforeValidator(_seconds), Field(ge=0)]
PositiveSeconds = Annotated[float, BeforeValidator(_seconds), Field(gt=0)]


_RESERVED_LABELS: set[str] = set()


def reserve_labels(names: Iterable[str]) -> None:
    """Add names the exporter writes itself; the provider registry tells them, unknown here."""
    _RESERVED_LABELS.update(names)


def check_label_names(labels: dict[str, str]) -> dict[str, str]:
    """Label names Prometheus accepts and the exporter does not write itself."""
    for name in labels:
        if not _LABEL_NAME.fullmatch(name) or name.startswith("__"):
            raise ValueError(f"invalid label name {name!r}")
        if name in _RESERVED_LABELS:
            raise ValueError(f"label name {name!r} is reserved by the exporter")
    return labels


def check_secret(value: str, where: str) -> None:
    """A token goes into an HTTP header: one line of visible ASCII, of a sane length."""
    if not value.strip():
        raise ValueError(f"{where} is empty")
    if len(value) > MAX_SECRET_BYTES:
        raise ValueError(f"{where} is longer than {MAX_SECRET_BYTES} characters")
    if not _HEADER_VALUE.fullmatch(value):
        raise ValueError(f"{where} contains spaces, line breaks, control or non-ASCII characters")


def check_header(name: str, value: str) -> None:
    """A header an adapter sends as configured: a valid name, and a value on one line."""
    if not _HEADER_NAME.fullmatch(name):
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
    if not _PRINTABLE.fullmatch(sync_id):
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


class WebhookSignature(Model):
    """How a provider signs a delivery: an HMAC of the raw body, in one header."""

    header: str
    algorithm: Literal["sha1", "sha256", "sha512"] = "sha256"
    encoding: Literal["hex", "base64", "base64url"] = "hex"
    # Text before the digest in the header, as in `sha256=<hex>`.
    prefix: str = ""

    @field_validator("header")
    @classmethod
    def _header_name(cls, name: str) -> str:
        if not _HEADER_NAME.fullmatch(name):
            raise ValueError(f"invalid HTTP header name {shown(name)}")
        return name


class WebhookConfig(Model):
    """A source's webhook: its secret, and how deliveries are signed and named.

    Without `signature`, deliveries carry the secret itself, as `?token=` or a Bearer token
    (for providers that document no signature).
    """

    secret: SecretStr | None = None
    secret_file: Path | None = None
    signature: WebhookSignature | None = None
    max_body_bytes: Annotated[int, Field(ge=1, le=MAX_WEBHOOK_BODY)] = DEFAULT_WEBHOOK_BODY
    # Where a delivery names its event, and the names counted as themselves (others: `other`).
    event: str | None = None
    events: list[str] = []
    # Which sync an event is about: the path to its sync id, or paths in the event matched
    # against paths in the sync's listing item (`{connectionId: connection_id}`).
    id: str | None = None
    match: dict[str, str] = {}
    # A run's outcome (`succeeded` or `failed`; anything else is no run) and its identity,
    # so a redelivery counts once (without it, the body is the identity).
    outcome: str | None = None
    run: str | None = None
    # An event about a sync a discovering source has not listed asks for a listing, at most
    # one per this many seconds (later ones wait for the window's end).
    rediscover_every: PositiveSeconds = 60.0

    @model_validator(mode="after")
    def _read_file(self) -> WebhookConfig:
        secret = secret_from(self.secret, self.secret_file, "secret")
        if secret is None:
            raise ValueError("secret or secret_file is required")
        object.__setattr__(self, "secret", secret)
        return self

    @field_validator("event", "id", "outcome", "run")
    @classmethod
    def _event_path(cls, expression: str | None) -> str | None:
        if expression is not None:
            compile_path(expression)
        return expression

    @field_validator("match")
    @classmethod
    def _match_paths(cls, match: dict[str, str]) -> dict[str, str]:
        for event_path, item_path in match.items():
            for expression in (event_path, item_path):
                try:
                    compile_path(expression)
                except ValueError as exc:
                    raise FieldError(event_path, str(exc)) from None
        return match

    def key(self) -> bytes:
        """The secret's bytes, for the HMAC or the token comparison only."""
        assert self.secret is not None
        return self.secret.get_secret_value().encode()


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


class SourceConfig(Checked, Generic[A, S]):
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
    webhook: WebhookConfig | None = None

    _labels = field_validator("labels")(check_label_names)

    @field_validator("headers")
    @classmethod
    def _header_names(cls, headers: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name, value in headers.items():
            if not _HEADER_NAME.fullmatch(name):
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
        if url and not re.fullmatch(r"https?://[^/\s]+(?:/\S*)?", url):
            raise ValueError(f"base_url must be an http:// or https:// URL, got {shown(url)}")
        return url.rstrip("/")

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

    @classmethod
    def problems(cls, values: Mapping[str, Any], raw: Mapping[str, Any]) -> Iterator[FieldError]:
        """Repeated sync ids, a source that reads nothing, label_from names already taken."""
        yield from _repeated_ids(raw.get("syncs"))
        # A field that did not validate is absent: then nothing is known, nothing is said.
        if not values.get("syncs", True) and not values.get("discover", True):
            yield FieldError("syncs", "no syncs and discover is false: nothing to read")
        if "label_from" in values and "labels" in values:
            static = set(values["labels"])
            for sync in values.get("syncs", ()):
                static.update(sync.labels)
            for name in values["label_from"]:
                if name in static:
                    yield FieldError(
                        "label_from", f"label name {name!r} is already used by a static label"
                    )

    def compiled_label_from(self) -> list[tuple[str, Any]]:
        """The label_from expressions, compiled, in a stable order."""
        return [(label, compile_path(path)) for label, path in sorted(self.label_from.items())]


def _repeated_ids(syncs: Any) -> Iterator[FieldError]:
    """Sync ids listed twice, read from the list as given so they show beside other problems."""
    if not isinstance(syncs, list):
        return
    seen: set[str] = set()
    for index, sync in enumerate(syncs):
        sync_id = sync.get("id") if isinstance(sync, dict) else sync
        if not isinstance(sync_id, str):
            continue
        if sync_id in seen:
            yield FieldError(f"syncs[{index}].id", f"sync id {shown(sync_id)} is listed twice")
        seen.add(sync_id)


def labels_from(body: Any, expressions: Sequence[tuple[str, Any]]) -> dict[str, str]:
    """Label values read from a provider's object by label_from; absent paths give ''."""
    found: dict[str, str] = {}
    for label, expression in expressions:
        try:
            value = expression.search(body)
        except (JMESPathError, TypeError, ValueError, ArithmeticError, RecursionError):
            value = None
        if isinstance(value, bool):
            value = str(value).lower()
        elif isinstance(value, int | float):
            value = values.format_number(value)
        found[label] = values.label_text(value)
    return found
