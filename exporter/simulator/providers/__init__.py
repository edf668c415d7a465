"""Simulated providers, found by module name: adding a provider means adding one module here
(or one package, for a big one, whose `__init__` exposes `PROVIDER`)."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping

from exporter.simulator.providers.base import SimProvider


def _discover() -> dict[str, SimProvider]:
    found: list[SimProvider] = []
    for module_info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        provider = getattr(module, "PROVIDER", None)
        if isinstance(provider, SimProvider):
            found.append(provider)
    found.sort(key=lambda provider: (provider.rank, provider.name))
    return {provider.name: provider for provider in found}


PROVIDERS: Mapping[str, SimProvider] = _discover()
