"""The YAML configuration: pydantic models that own defaults and checks, and its loader.

A broken file is refused as a whole with every problem listed, each naming the file and
the field path, so a bad config never starts half a service.
"""

from __future__ import annotations

import contextlib
import gc
import os
import re
import stat
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import Event
from yaml.nodes import Node
from yaml.resolver import Resolver

from exporter import values
from exporter.metrics import SYNC_FAMILIES, TARGET_LABELS
from exporter.providers import PROVIDERS

DEFAULT_PORT = 9869
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_HEADER_VALUE = re.compile(r"^[\x21-\x7e]+$")
MAX_SECRET_BYTES = 16384
MAX_CONFIG_NODES = 1_000_000
# Far deeper than any real config (about 6 levels), far shallower than what crashes a parser.
MAX_CONFIG_DEPTH = 64
MAX_REPORTED_PROBLEMS = 50
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
RESERVED_LABELS = frozenset(
    {*TARGET_LABELS, "job", "instance"} | {label for f in SYNC_FAMILIES for label in f.labels}
)


class ConfigError(Exception):
    """The configuration cannot be used; the message lists every problem found."""


# The (variable, value) pairs `${VAR}` expansion put into the document being validated.
_SUBSTITUTED: ContextVar[tuple[tuple[str, str], ...]] = ContextVar("substituted", default=())


def shown(value: object) -> str:
    """A config value as an error message may quote it: never what came from the environment.

    A value holding any expanded `${VAR}` is named by its variables instead, since a token
    or password put in the wrong field would otherwise be printed, logged and sent back to
    whoever called `/-/reload`.
    """
    text = str(value)
    names = sorted({name for name, sub in _SUBSTITUTED.get() if sub and sub in text})
    if names:
        return "<value from " + ", ".join(f"${{{name}}}" for name in names) + ">"
    return repr(value)


def _seconds(value: Any) -> Any:
    if isinstance(value, str):
        parsed = values.duration(value)
        if parsed is None:
            raise ValueError(f"not a duration: {shown(value)} (use e.g. 500ms, 10s, 5m, 1h)")
        return parsed
    return value


Seconds = Annotated[float, BeforeValidator(_seconds), Field(ge=0)]
PositiveSeconds = Annotated[float, BeforeValidator(_seconds), Field(gt=0)]


def _check_labels(labels: dict[str, str]) -> dict[str, str]:
    for name in labels:
        if not _LABEL_NAME.match(name) or name.startswith("__"):
            raise ValueError(f"invalid label name {name!r}")
        if name in RESERVED_LABELS:
            raise ValueError(f"label name {name!r} is reserved by the exporter")
    return labels


def _check_secret(value: str, where: str) -> None:
    """A token goes into an HTTP header: one line of visible ASCII, of a sane length."""
    if not value.strip():
        raise ValueError(f"{where} is empty")
    if len(value) > MAX_SECRET_BYTES:
        raise ValueError(f"{where} is longer than {MAX_SECRET_BYTES} characters")
    if not _HEADER_VALUE.match(value):
        raise ValueError(f"{where} contains spaces, line breaks, control or non-ASCII characters")


def _read_secret_file(path: Path, where: str) -> str:
    """Read a secret file: a regular file of at most MAX_SECRET_BYTES.

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
        content = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ValueError(f"{name} is not UTF-8 text") from None
    _check_secret(content, name)
    return content


class Model(BaseModel):
    """Base of every config model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


M = TypeVar("M", bound=Model)


class Auth(Model):
    """Credentials given inline (usually `${VAR}`) or as files (Kubernetes secrets)."""

    token: SecretStr | None = None
    token_file: Path | None = None
    connection_token: SecretStr | None = None
    connection_token_file: Path | None = None

    @model_validator(mode="after")
    def _read_files(self) -> Auth:
        updates: dict[str, SecretStr] = {}
        for key in ("token", "connection_token"):
            inline = getattr(self, key)
            path: Path | None = getattr(self, f"{key}_file")
            if inline is not None and path is not None:
                raise ValueError(f"set either {key} or {key}_file, not both")
            if path is not None:
                updates[key] = SecretStr(_read_secret_file(path, f"{key}_file"))
        if self.token is None and "token" not in updates:
            raise ValueError("token or token_file is required")
        for key in ("token", "connection_token"):
            inline = getattr(self, key)
            if inline is not None and key not in updates:
                _check_secret(inline.get_secret_value(), key)
        for key, value in updates.items():
            object.__setattr__(self, key, value)
        return self

    def secret(self, key: Literal["token", "connection_token"]) -> str:
        """The secret's plain value, for request headers only."""
        value: SecretStr | None = getattr(self, key)
        return "" if value is None else value.get_secret_value()


class SyncConfig(Model):
    """One sync to watch: an id, plus optional labels and staleness budget."""

    id: Annotated[str, Field(min_length=1)]
    labels: dict[str, str] = {}
    stale_after: PositiveSeconds | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        if isinstance(data, int | float) and not isinstance(data, bool):
            raise ValueError(f"sync id {shown(data)} must be a string: quote it in YAML")
        return {"id": data} if isinstance(data, str) else data

    _labels = field_validator("labels")(_check_labels)


class SourceConfig(Model):
    """One set of credentials at one provider, and the syncs read with them."""

    name: Annotated[str, Field(min_length=1)]
    provider: str
    base_url: str = ""
    auth: Auth
    labels: dict[str, str] = {}
    headers: dict[str, SecretStr] = {}
    syncs: list[SyncConfig] = []
    stale_after: PositiveSeconds | None = None
    max_concurrency: Annotated[int, Field(ge=1)] | None = None
    request_timeout: PositiveSeconds | None = None
    discover: bool = False
    discover_interval: PositiveSeconds = 300.0

    _labels = field_validator("labels")(_check_labels)

    @field_validator("provider")
    @classmethod
    def _known_provider(cls, provider: str) -> str:
        if provider not in PROVIDERS:
            known = ", ".join(PROVIDERS)
            raise ValueError(f"unknown provider {shown(provider)} (known: {known})")
        return provider

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

    @model_validator(mode="after")
    def _complete(self) -> SourceConfig:
        provider = PROVIDERS[self.provider]
        if not self.base_url:
            object.__setattr__(self, "base_url", provider.default_base_url)
        if self.discover and provider.list_url is None:
            raise ValueError(
                f"provider {shown(self.provider)} cannot list syncs: set syncs instead"
            )
        has_connection_token = self.auth.connection_token is not None
        if provider.needs_connection_token and not has_connection_token:
            raise ValueError(
                f"auth.connection_token or auth.connection_token_file is required "
                f"for provider {shown(self.provider)}"
            )
        if has_connection_token and not provider.needs_connection_token:
            raise ValueError(f"provider {shown(self.provider)} takes no auth.connection_token")
        seen: set[str] = set()
        for sync in self.syncs:
            if sync.id in seen:
                raise ValueError(f"sync id {shown(sync.id)} is listed twice")
            seen.add(sync.id)
        return self


class CollectorConfig(Model):
    """How syncs are read on each scrape."""

    request_timeout: PositiveSeconds = 5.0
    max_concurrency: Annotated[int, Field(ge=1)] = 20
    timeout_offset: Seconds = 0.5
    default_timeout: PositiveSeconds = 10.0
    max_timeout: PositiveSeconds = 120.0
    default_retry_after: Seconds = 30.0
    max_retry_after: PositiveSeconds = 3600.0
    stale_after: PositiveSeconds = 3600.0
    stale_intervals: Annotated[float, Field(gt=0)] = 3.0
    stale_slack: Seconds = 900.0
    # Horizontal sharding, as kube-state-metrics does it: this replica reads only the syncs
    # whose hash falls in its shard (see exporter/targets.py and the README's Performance section).
    shard: Annotated[int, Field(ge=0)] = 0
    total_shards: Annotated[int, Field(ge=1)] = 1

    @model_validator(mode="after")
    def _shard_in_range(self) -> CollectorConfig:
        if self.shard >= self.total_shards:
            raise ValueError(
                f"shard must be below total_shards "
                f"({shown(self.shard)} >= {shown(self.total_shards)})"
            )
        return self


def parse_listen_address(address: str) -> tuple[str | None, int]:
    """Split `[host]:port` (`:9869`, `127.0.0.1:9869`, `[::1]:9869`); no host means all."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"invalid listen address {shown(address)}, expected [host]:port")
    host = host.strip("[]")
    return (host or None), int(port)


class WebConfig(Model):
    """Where the exporter listens."""

    listen_address: str = f":{DEFAULT_PORT}"

    @field_validator("listen_address")
    @classmethod
    def _address(cls, address: str) -> str:
        parse_listen_address(address)
        return address


class LogConfig(Model):
    """Log verbosity and line format."""

    level: Literal["debug", "info", "warn", "error"] = "info"
    format: Literal["logfmt", "json"] = "logfmt"


class Config(Model):
    """The whole file."""

    sources: list[SourceConfig]
    collector: CollectorConfig = CollectorConfig()
    web: WebConfig = WebConfig()
    log: LogConfig = LogConfig()

    @model_validator(mode="after")
    def _unique_names(self) -> Config:
        seen: set[str] = set()
        for source in self.sources:
            if source.name in seen:
                raise ValueError(f"source name {shown(source.name)} is used twice")
            seen.add(source.name)
        return self


def _path(location: tuple[int | str, ...]) -> str:
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.startswith(("function-", "union[")) or part in {"str", "dict[str,any]"}:
            continue
        else:
            path += f".{part}" if path else part
    return path or "(top level)"


class _Expansion:
    """`${VAR}` substitution over the YAML tree, refusing cycles, alias bombs and deep nests."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.substituted: list[tuple[str, str]] = []
        self.nodes = 0
        self._path_ids: set[int] = set()

    def expand(self, node: Any, location: tuple[int | str, ...]) -> Any:
        self.nodes += 1
        if self.nodes > MAX_CONFIG_NODES:
            raise ConfigError(
                f"more than {MAX_CONFIG_NODES} values (YAML aliases nested too deep?)"
            )
        if isinstance(node, dict | list):
            # Aliases can stack shallow anchors into a deep tree that the YAML depth check
            # never saw.
            if len(location) >= MAX_CONFIG_DEPTH:
                raise ConfigError(
                    f"{_path(location)}: nested more than {MAX_CONFIG_DEPTH} levels deep"
                )
            if id(node) in self._path_ids:
                raise ConfigError(f"{_path(location)}: a YAML alias refers to itself")
            self._path_ids.add(id(node))
            try:
                if isinstance(node, list):
                    return [self.expand(v, (*location, i)) for i, v in enumerate(node)]
                expanded = {}
                for key, value in node.items():
                    if not isinstance(key, str):
                        self.problems.append(
                            f"{_path(location)}: key {shown(key)} is not a string; quote it "
                            "(YAML reads unquoted on, off, yes, no and numbers otherwise)"
                        )
                        continue
                    expanded[key] = self.expand(value, (*location, key))
                return expanded
            finally:
                self._path_ids.discard(id(node))
        if isinstance(node, str) and "${" in node:

            def substitute(match: re.Match[str]) -> str:
                name = match.group(1)
                if name not in os.environ:
                    self.problems.append(
                        f"{_path(location)}: environment variable {name} is not set"
                    )
                    return ""
                self.substituted.append((name, os.environ[name]))
                return os.environ[name]

            return _ENV_REFERENCE.sub(substitute, node)
        return node


class _TooDeep(Exception):
    """A YAML document nested deeper than MAX_CONFIG_DEPTH, at the node that went too far."""

    def __init__(self, line: int, column: int) -> None:
        super().__init__(line, column)
        self.line = line
        self.column = column


class _DepthLimit(Composer):
    """Stops composing at MAX_CONFIG_DEPTH levels, before a recursive composer runs out of stack.

    libyaml's own composer (what yaml.CSafeLoader uses) recurses in C and crashes the whole
    process on a document nested 100,000 levels deep; PyYAML's Python one raises a
    RecursionError with a 3,000-line traceback at about 300.
    """

    _depth = 0
    peek_event: Callable[[], Event]

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_CONFIG_DEPTH:
                mark = self.peek_event().start_mark
                raise _TooDeep(mark.line + 1 if mark else 0, mark.column + 1 if mark else 0)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


if hasattr(yaml, "CSafeLoader"):
    from yaml._yaml import CParser

    class _Loader(_DepthLimit, CParser, SafeConstructor, Resolver):
        """A safe loader on libyaml's C parser (~3x PyYAML's own), composing in Python."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            Composer.__init__(self)

else:  # pragma: no cover - PyYAML built without libyaml

    class _Loader(_DepthLimit, yaml.SafeLoader):  # type: ignore[no-redef]
        """PyYAML's pure-Python safe loader with the depth limit."""


_gc_lock = threading.Lock()
_gc_holders = 0


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a config is built.

    Building 100,000 syncs makes millions of objects, and the collector would walk them all
    again and again: parsing took 5.2 s instead of 2.0 s, and each full pass held the
    interpreter for up to a second, stalling the event loop while a reload parsed in a thread.
    """
    global _gc_holders
    with _gc_lock:
        if _gc_holders == 0:
            was_enabled = gc.isenabled()
            gc.disable()
        else:
            was_enabled = False
        _gc_holders += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_holders -= 1
            if _gc_holders == 0 and (was_enabled or not gc.isenabled()):
                gc.enable()


def _load_yaml(text: str, origin: str) -> Any:
    """The YAML document as Python values; any failure is a ConfigError naming the file."""
    try:
        loader = _Loader(text)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except _TooDeep as exc:
        raise ConfigError(
            f"{origin}: nested more than {MAX_CONFIG_DEPTH} levels deep "
            f"(line {exc.line}, column {exc.column})"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{origin}: not valid YAML{where}: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{origin}: nested too deeply") from None
    except Exception as exc:
        # A tag or date PyYAML cannot build (!!int twelve, 2023-02-30) raises plain Python
        # errors whose text may quote the value: only the kind is shown.
        raise ConfigError(
            f"{origin}: not valid YAML: a value cannot be read ({type(exc).__name__})"
        ) from None


def _report(origin: str, problems: list[str]) -> ConfigError:
    lines = [f"{origin}: {problem}" for problem in problems[:MAX_REPORTED_PROBLEMS]]
    if len(problems) > MAX_REPORTED_PROBLEMS:
        lines.append(f"{origin}: ... and {len(problems) - MAX_REPORTED_PROBLEMS} more problems")
    return ConfigError("\n".join(lines))


def parse_document(model: type[M], text: str, origin: str, top: str) -> M:
    """Validate YAML text against `model`; `origin` names the file in every message.

    `top` says what the top level should hold, for the message when it is not a mapping.
    Every failure is a ConfigError, and no message quotes a value expanded from `${VAR}`.
    """
    with gc_paused():
        raw = _load_yaml(text, origin)
        if not isinstance(raw, dict):
            raise ConfigError(f"{origin}: the top level must be a mapping with {top}")
        # Top-level keys starting with x- hold YAML anchors for reuse, as in Compose files.
        raw = {k: v for k, v in raw.items() if not (isinstance(k, str) and k.startswith("x-"))}
        expansion = _Expansion()
        try:
            expanded = expansion.expand(raw, ())
        except ConfigError as exc:
            raise ConfigError(f"{origin}: {exc}") from None
        except RecursionError:
            raise ConfigError(f"{origin}: nested too deeply") from None
        if expansion.problems:
            raise _report(origin, expansion.problems)
        token = _SUBSTITUTED.set(tuple(expansion.substituted))
        try:
            return model.model_validate(expanded)
        except ValidationError as exc:
            problems = []
            for error in exc.errors(include_input=False, include_url=False):
                message = error["msg"].removeprefix("Value error, ")
                problems.append(f"{_path(error['loc'])}: {message}")
            raise _report(origin, problems) from None
        except Exception as exc:
            raise ConfigError(f"{origin}: cannot be validated ({type(exc).__name__})") from None
        finally:
            _SUBSTITUTED.reset(token)


def read_document(path: str | Path, what: str) -> str:
    """A config file's text, or a ConfigError naming it."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: {what} is not UTF-8 text") from None


def parse_config(text: str, origin: str) -> Config:
    """Validate the exporter's config from YAML text."""
    return parse_document(Config, text, origin, "a 'sources' list")


def load_config(path: str | Path) -> Config:
    """Read and validate a config file."""
    return parse_config(read_document(path, "config file"), str(path))
