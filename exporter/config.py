"""The YAML configuration: pydantic models that own defaults and checks, and its loader.

A broken file is refused as a whole with every problem listed, each naming the file and
the field path, so a bad config never starts half a service.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar, Union, get_args

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import Event
from yaml.nodes import Node
from yaml.resolver import Resolver

from exporter.exposition.families import Selection, check_patterns, split_patterns
from exporter.providers import PROVIDERS
from exporter.schema import (
    SUBSTITUTED,
    Checked,
    ConfigError,
    FieldError,
    Location,
    Model,
    PositiveSeconds,
    Seconds,
    SourceConfig,
    located,
    shown,
)
from exporter.threads import gc_paused

__all__ = ["Config", "ConfigError", "Model", "load_config", "parse_config", "parse_document"]

DEFAULT_PORT = 9869
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
MAX_CONFIG_NODES = 1_000_000
# Far deeper than any real config (about 6 levels), far shallower than what crashes a parser.
MAX_CONFIG_DEPTH = 64
MAX_REPORTED_PROBLEMS = 50
_TAG = "provider="

M = TypeVar("M", bound=Model)

# Regular expressions over family names: a YAML list, or one comma-separated string.
Patterns = Annotated[
    tuple[str, ...], BeforeValidator(split_patterns), AfterValidator(check_patterns)
]


class _UnknownProvider(Model):
    """Stands in for a source whose provider is unknown, to say so on its `provider` field."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    provider: Any = Field(default=None, validate_default=True)

    @field_validator("provider")
    @classmethod
    def _known(cls, provider: Any) -> Any:
        known = ", ".join(PROVIDERS)
        if provider is None:
            raise ValueError(f"is required (one of: {known})")
        raise ValueError(f"unknown provider {shown(provider)} (known: {known})")


def _provider_tag(data: Any) -> str:
    provider = data.get("provider") if isinstance(data, dict) else getattr(data, "provider", None)
    return f"{_TAG}{provider}" if provider in PROVIDERS else f"{_TAG}?"


if TYPE_CHECKING:
    AnySource = SourceConfig[Any, Any]
else:
    # A union built from the discovered adapters, told apart by `provider`.
    _TAGGED = tuple(
        Annotated[adapter.config_model, Tag(f"{_TAG}{name}")] for name, adapter in PROVIDERS.items()
    )
    AnySource = Annotated[
        Union[(*_TAGGED, Annotated[_UnknownProvider, Tag(f"{_TAG}?")])],
        Discriminator(_provider_tag),
    ]


class CollectorConfig(Model):
    """How syncs are read on each scrape."""

    request_timeout: PositiveSeconds = 5.0
    max_concurrency: Annotated[int, Field(ge=1)] = 20
    timeout_offset: Seconds = 0.5
    default_timeout: PositiveSeconds = 10.0
    min_timeout: PositiveSeconds = 1.0
    max_timeout: PositiveSeconds = 120.0
    default_retry_after: Seconds = 30.0
    max_retry_after: PositiveSeconds = 3600.0
    stale_after: PositiveSeconds = 3600.0
    stale_intervals: Annotated[float, Field(gt=0)] = 3.0
    stale_slack: Seconds = 900.0
    # Horizontal sharding, as kube-state-metrics does it: this replica reads only the syncs
    # whose hash falls in its shard (see exporter/exposition/targets.py and the README's
    # Performance section).
    total_shards: Annotated[int, Field(ge=1)] = 1
    shard: Annotated[int, Field(ge=0)] = 0
    # Per-sync families to expose (allowlist) or drop (denylist), as kube-state-metrics has.
    metric_allowlist: Patterns = ()
    metric_denylist: Patterns = ()

    @field_validator("shard")
    @classmethod
    def _shard_in_range(cls, shard: int, info: ValidationInfo) -> int:
        total = info.data.get("total_shards")
        if isinstance(total, int) and shard >= total:
            raise ValueError(f"must be below total_shards ({shown(shard)} >= {shown(total)})")
        return shard

    @field_validator("metric_denylist")
    @classmethod
    def _one_list(cls, deny: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        if deny and info.data.get("metric_allowlist"):
            raise ValueError("cannot be combined with metric_allowlist: use one or the other")
        return deny

    @property
    def families(self) -> Selection:
        """Which per-sync families the exposition has."""
        return Selection(self.metric_allowlist, self.metric_denylist)


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


class Config(Checked):
    """The whole file."""

    sources: list[AnySource]
    collector: CollectorConfig = CollectorConfig()
    web: WebConfig = WebConfig()
    log: LogConfig = LogConfig()

    @classmethod
    def problems(cls, values: Mapping[str, Any], raw: Mapping[str, Any]) -> Iterator[FieldError]:
        """Source names used twice, read from the file as given: shown whatever else is wrong."""
        sources = raw.get("sources")
        if not isinstance(sources, list):
            return
        seen: set[str] = set()
        for index, source in enumerate(sources):
            name = source.get("name") if isinstance(source, dict) else None
            if not isinstance(name, str):
                continue
            if name in seen:
                yield FieldError(
                    f"sources[{index}].name", f"source name {shown(name)} is used twice"
                )
            seen.add(name)


def _skipped(part: int | str) -> bool:
    """Parts of a pydantic location that name a validator or a union member, not a key."""
    return isinstance(part, str) and (
        part.startswith(("function-", "union[", _TAG)) or part in {"str", "dict[str,any]"}
    )


def _path(location: Location) -> str:
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _skipped(part):
            continue
        else:
            path += f".{part}" if path else part
    return path or "(top level)"


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The models a field's type can hold: itself, list items, dict values, union members."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in _models_in(arg)]


def model_at(root: type[BaseModel], location: Location) -> type[BaseModel] | None:
    """The model whose fields are at `location` below `root` (None below a plain value).

    A source's location holds the `provider=<name>` tag pydantic's union adds, which picks
    that provider's own model, so its own fields are known.
    """
    models: list[type[BaseModel]] = [root]
    for part in location:
        if isinstance(part, str) and part.startswith(_TAG):
            adapter = PROVIDERS.get(part.removeprefix(_TAG))
            models = [adapter.config_model] if adapter is not None else []
        elif isinstance(part, str) and not _skipped(part):
            field = models[0].model_fields.get(part) if len(models) == 1 else None
            models = _models_in(field.annotation) if field is not None else []
    return models[0] if len(models) == 1 else None


def _suggestion(root: type[BaseModel], location: Location) -> str:
    """` (did you mean 'syncs'?)` for an unknown key close to a field of the model it is in."""
    model = model_at(root, location[:-1])
    key = location[-1] if location else None
    if model is None or not isinstance(key, str):
        return ""
    close = difflib.get_close_matches(key, list(model.model_fields), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _order(root: type[BaseModel]) -> Callable[[tuple[Any, ...]], tuple[int, int]]:
    """Problems in the order of the file's sections and of the items of a list."""
    fields = list(root.model_fields)

    def key(problem: tuple[Any, ...]) -> tuple[int, int]:
        location: Location = problem[0]
        first = location[0] if location else None
        section = fields.index(first) if first in fields else -1
        item = location[1] if len(location) > 1 and isinstance(location[1], int) else -1
        return section, item

    return key


class _Expansion:
    """`${VAR}` substitution over the YAML tree, refusing cycles, alias bombs and deep nests."""

    def __init__(self) -> None:
        self.problems: list[tuple[Location, str]] = []
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
                            (
                                location,
                                f"key {shown(key)} is not a string; quote it (YAML reads "
                                "unquoted on, off, yes, no and numbers otherwise)",
                            )
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
                    self.problems.append((location, f"environment variable {name} is not set"))
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
        if "nesting depth" in problem:
            # libyaml 0.2.6 and later (PyYAML 6.0.4's wheels) stop at 1,000 levels while
            # reading ahead, before the composer above counts to its limit.
            raise ConfigError(
                f"{origin}: nested more than {MAX_CONFIG_DEPTH} levels deep{where}"
            ) from None
        raise ConfigError(f"{origin}: not valid YAML{where}: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{origin}: nested too deeply") from None
    except Exception as exc:
        # A tag or date PyYAML cannot build (!!int twelve, 2023-02-30) raises plain Python
        # errors whose text may quote the value: only the kind is shown.
        raise ConfigError(
            f"{origin}: not valid YAML: a value cannot be read ({type(exc).__name__})"
        ) from None


def _report(origin: str, lines: list[str]) -> ConfigError:
    """Every problem on a line of its own, up to MAX_REPORTED_PROBLEMS, then how many more."""
    shown_lines = lines[:MAX_REPORTED_PROBLEMS]
    if len(lines) > MAX_REPORTED_PROBLEMS:
        shown_lines.append(f"{origin}: ... and {len(lines) - MAX_REPORTED_PROBLEMS} more problems")
    return ConfigError("\n".join(shown_lines))


Overrides = Mapping[tuple[str, str], tuple[str, Any]]
"""Values given on the command line: (section, key) -> (the flag's name, its value)."""


def parse_document(
    model: type[M], text: str, origin: str, top: str, overrides: Overrides | None = None
) -> M:
    """Validate YAML text against `model`; `origin` names the file in every message.

    `top` says what the top level should hold, for the message when it is not a mapping.
    The file must be valid on its own; `overrides` (flag values) then replace values of its
    sections and are checked in the same pass, a problem with one naming the flag. Every
    failure is a ConfigError listing every problem found, and no message quotes a value
    expanded from `${VAR}`.
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
        problems = list(expansion.problems)
        token = SUBSTITUTED.set(tuple(expansion.substituted))
        result: M | None = None
        try:
            try:
                result = model.model_validate(expanded)
            except ValidationError as exc:
                # A value left empty by an unset variable (or a key dropped) fails for that
                # reason only, which is already said, at its own place or its model's.
                said = [_keys(location) for location, _ in expansion.problems]
                for location, message in _problems(model, exc):
                    if not any(_related(_keys(location), other) for other in said):
                        problems.append((location, message))
            sections, flag_problems = _with_flags(model, expanded, overrides or {}, problems)
        except Exception as exc:
            raise ConfigError(f"{origin}: cannot be validated ({type(exc).__name__})") from None
        finally:
            SUBSTITUTED.reset(token)
        if result is not None and not problems and not flag_problems:
            return result.model_copy(update=sections) if sections else result
        flags = {place: flag for place, (flag, _) in (overrides or {}).items()}
        found = [(location, message, False) for location, message in problems]
        found += [(location, message, True) for location, message in flag_problems]
        lines = []
        for location, message, from_flags in sorted(found, key=_order(model)):
            given = flags.get((str(location[0]), str(location[1]))) if len(location) == 2 else None
            if from_flags and given:
                lines.append(f"flag {given}: {message}")
            elif from_flags:
                lines.append(f"{origin}: {_path(location)}: {message} (with the flags given)")
            else:
                lines.append(f"{origin}: {_path(location)}: {message}")
        raise _report(origin, lines)


def _with_flags(
    model: type[BaseModel],
    expanded: dict[str, Any],
    overrides: Overrides,
    problems: list[tuple[Location, str]],
) -> tuple[dict[str, BaseModel], list[tuple[Location, str]]]:
    """The sections flags change, validated with the flags' values over the file's.

    Also returns the problems the file alone does not have (in `problems`): a flag's value,
    or one that clashes with the file's, such as a shard beyond the file's total_shards.
    """
    sections: dict[str, BaseModel] = {}
    found: list[tuple[Location, str]] = []
    for section in sorted({section for section, _ in overrides}):
        field = model.model_fields.get(section)
        models = _models_in(field.annotation) if field is not None else []
        given = expanded.get(section)
        if len(models) != 1 or not isinstance(given, dict | None):
            continue
        merged = dict(given or {})
        for (name, key), (_, value) in overrides.items():
            if name == section:
                merged[key] = value
        try:
            sections[section] = models[0].model_validate(merged)
        except ValidationError as exc:
            for location, message in _problems(models[0], exc):
                problem = ((section, *location), message)
                if problem not in problems:
                    found.append(problem)
    return sections, found


def _keys(location: Location) -> Location:
    """A location as keys and indexes of the file, without pydantic's union and validator parts."""
    return tuple(part for part in location if not _skipped(part))


def _related(one: Location, other: Location) -> bool:
    """Whether one location is within the other or holds it (the top level holds all, ignored)."""
    shorter = min(len(one), len(other))
    return shorter > 0 and one[:shorter] == other[:shorter]


def _problems(model: type[BaseModel], exc: ValidationError) -> Iterator[tuple[Location, str]]:
    """Each of pydantic's errors as a location and a message, unknown keys with a suggestion."""
    for error in exc.errors(include_input=False, include_url=False):
        location, message = located(error)
        if error["type"] == "extra_forbidden":
            message += _suggestion(model, location)
        yield location, message


def read_document(path: str | Path, what: str) -> str:
    """A config file's text, or a ConfigError naming it."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: {what} is not UTF-8 text") from None


def parse_config(text: str, origin: str, overrides: Overrides | None = None) -> Config:
    """Validate the exporter's config from YAML text, with flag values over the file's."""
    return parse_document(Config, text, origin, "a 'sources' list", overrides)


def load_config(path: str | Path, overrides: Overrides | None = None) -> Config:
    """Read and validate a config file, with flag values over the file's."""
    return parse_config(read_document(path, "config file"), str(path), overrides)
