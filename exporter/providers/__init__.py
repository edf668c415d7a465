"""Provider adapters, found by module name: adding a provider means adding one file here."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping

from exporter.providers.base import Provider


def _discover() -> dict[str, Provider]:
    found: dict[str, Provider] = {}
    for module_info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        provider = getattr(module, "PROVIDER", None)
        if isinstance(provider, Provider):
            found[provider.name] = provider
    return dict(sorted(found.items()))


PROVIDERS: Mapping[str, Provider] = _discover()
