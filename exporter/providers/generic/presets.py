"""The shipped presets (`preset: fivetran`): `generic:` blocks in `exporter/presets/`, read
once and laid under a source's own keys."""

from __future__ import annotations

import copy
import functools
from importlib import resources
from typing import Any

import yaml

PRESET_KEYS = frozenset({"base_url", "headers", "label_from", "generic", "auth", "webhook"})


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
