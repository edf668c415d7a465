"""sync-status-exporter.example.yml: valid as shipped, each alternative too, and complete.

Its secrets are where a deployment keeps them (files under /secrets/, `${VAR}`s); the tests
write those files to a temporary directory, point the paths there and set the variables, as
a deployment would. A new option in any config model, an adapter's included, fails the
completeness test until the example shows it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, get_origin

import pytest
import yaml
from pydantic import BaseModel

from exporter.config import CollectorConfig, Config, LogConfig, WebConfig, load_config
from exporter.providers import PROVIDERS
from tests.keys import signing_key_pem
from tests.procs import run_exporter
from tests.tools import ROOT

EXAMPLE = ROOT / "sync-status-exporter.example.yml"
ALTERNATIVE = re.compile(r"^(?P<indent> *)# or: (?P<key>[a-z_]+): (?P<value>\S+)")
KEY_LINE = re.compile(r"^(?P<indent> *)(?:- )?(?P<key>[a-z_]+):")
SECRET_FILE = re.compile(r"/secrets/[\w.-]+")
VARIABLE = re.compile(r"\$\{(\w+)\}")


def deployed(text: str, directory: Path) -> tuple[str, dict[str, str]]:
    """The example as it runs: its secret files written under `directory`, its variables set."""
    for path in sorted(set(SECRET_FILE.findall(text))):
        name = path.removeprefix("/secrets/")
        secret = signing_key_pem() if name.endswith(".pem") else f"secret-of-{name}\n"
        (directory / name).write_text(secret)
    env = {}
    for name in VARIABLE.findall(text):
        env[name] = signing_key_pem() if "SIGNING_KEY" in name else f"value-of-{name}"
    return text.replace("/secrets/", f"{directory}/"), env


def alternatives(text: str) -> list[tuple[int, str]]:
    """Each `# or: key: value` line: its index and the line with the key in effect instead."""
    found = []
    for index, line in enumerate(text.splitlines()):
        match = ALTERNATIVE.match(line)
        if match:
            found.append((index, f"{match['indent']}{match['key']}: {match['value']}"))
    return found


def with_alternatives(text: str) -> str:
    """Every alternative uncommented beside its key: not a valid config, but every key shows."""
    lines = text.splitlines()
    for index, line in alternatives(text):
        lines[index] = line
    return "\n".join(lines)


def options(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every option of a model as a path (`auth.token_file`, `syncs[].user`), recursively."""
    found = set()
    for name, field in model.model_fields.items():
        path = f"{prefix}{field.alias or name}"
        found.add(path)
        annotation = field.annotation
        inner = path + ("[]" if get_origin(annotation) is list else "")
        for argument in (annotation, *getattr(annotation, "__args__", ())):
            if isinstance(argument, type) and issubclass(argument, BaseModel):
                found |= options(argument, f"{inner}.")
    return found


def keys(value: Any, path: str = "") -> set[str]:
    """Every key of a YAML value as a path, list items as `[]`."""
    found = set()
    if isinstance(value, dict):
        for key, item in value.items():
            sub = f"{path}.{key}" if path else str(key)
            found |= {sub, *keys(item, sub)}
    elif isinstance(value, list):
        for item in value:
            found |= keys(item, f"{path}[]")
    return found


def test_the_example_passes_config_check(tmp_path: Path) -> None:
    text, env = deployed(EXAMPLE.read_text(), tmp_path)
    config = tmp_path / "sync-status-exporter.yml"
    config.write_text(text)
    result = run_exporter("--config.file", str(config), "--config.check", env=env)
    assert result.returncode == 0, result.stderr
    valid, exposing = result.stdout.splitlines()
    assert valid == f"{config}: valid, 10 sources, 6 syncs"
    assert re.fullmatch(r"exposing all \d+ per-sync families", exposing), exposing


@pytest.mark.parametrize(
    "index", [index for index, _ in alternatives(EXAMPLE.read_text())], ids=lambda i: f"line{i + 1}"
)
def test_each_alternative_is_valid_in_place_of_the_key_above_it(
    index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = EXAMPLE.read_text().splitlines()
    replacement = dict(alternatives(EXAMPLE.read_text()))[index]
    above = KEY_LINE.match(lines[index - 1])
    assert above, f"line {index + 1}: an alternative must follow the key it replaces"
    assert above["indent"] == ALTERNATIVE.match(lines[index])["indent"]  # type: ignore[index]
    lines[index - 1 : index + 1] = [replacement]
    text, env = deployed("\n".join(lines), tmp_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "variant.yml"
    path.write_text(text)
    load_config(path)


def source_options() -> dict[str, set[str]]:
    """Each provider's source options; those all providers share count under the name ''."""
    each = {name: options(adapter.config_model) for name, adapter in PROVIDERS.items()}
    shared = set.intersection(*each.values())
    return {"": shared} | {name: found - shared for name, found in each.items()}


@pytest.mark.parametrize("provider", sorted(source_options()), ids=lambda p: p or "shared")
def test_every_source_option_is_in_the_example(provider: str) -> None:
    """Options all providers share may show on any source; a provider's own, on one of its."""
    document = yaml.safe_load(with_alternatives(EXAMPLE.read_text()))
    shown = set()
    for source in document["sources"]:
        if provider in ("", source["provider"]):
            shown |= keys(source)
    missing = sorted(source_options()[provider] - shown)
    where = f"{provider} options" if provider else "source options"
    assert not missing, f"sync-status-exporter.example.yml lacks {where} {missing}"


def test_every_option_outside_the_sources_is_in_the_example() -> None:
    document = yaml.safe_load(with_alternatives(EXAMPLE.read_text()))
    expected = {option for option in options(Config) if not option.startswith("sources")}
    missing = sorted(expected - keys(document))
    assert not missing, f"sync-status-exporter.example.yml lacks {missing}"


def test_the_sections_it_calls_defaults_are_the_defaults() -> None:
    document = yaml.safe_load(EXAMPLE.read_text())
    assert CollectorConfig.model_validate(document["collector"]) == CollectorConfig()
    assert WebConfig.model_validate(document["web"]) == WebConfig()
    assert LogConfig.model_validate(document["log"]) == LogConfig()


def test_the_readme_links_to_the_example() -> None:
    assert "](sync-status-exporter.example.yml)" in (ROOT / "README.md").read_text()
