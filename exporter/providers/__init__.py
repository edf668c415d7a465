"""Provider adapters, found by module name: adding a provider means adding one file here."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from typing import Any

from exporter.exposition.metrics import RUN_FAMILIES, SYNC_FAMILIES, TARGET_LABELS, Family
from exporter.providers.base import Adapter
from exporter.schema import reserve_labels

AdapterClass = type[Adapter[Any]]


def _discover() -> dict[str, AdapterClass]:
    found: dict[str, AdapterClass] = {}
    for module_info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        adapter = getattr(module, "PROVIDER", None)
        if isinstance(adapter, type) and issubclass(adapter, Adapter):
            found[adapter.name] = adapter
    return dict(sorted(found.items()))


PROVIDERS: Mapping[str, AdapterClass] = _discover()


def _all_families() -> tuple[Family, ...]:
    """Every adapter's own families in provider order; a name two adapters share must agree."""
    by_name: dict[str, Family] = {family.name: family for family in SYNC_FAMILIES}
    ordered: list[Family] = []
    for adapter in PROVIDERS.values():
        for family in adapter.families:
            known = by_name.get(family.name)
            if known is None:
                by_name[family.name] = family
                ordered.append(family)
            elif known != family:
                raise RuntimeError(f"{adapter.name} redefines metric family {family.name}")
    return tuple(ordered)


PROVIDER_FAMILIES: tuple[Family, ...] = _all_families()


def reserved_labels() -> frozenset[str]:
    """Label names the exporter writes itself, which static labels and label_from must avoid.

    A family's own labels follow a sync's label set in every sample line: a user label of the
    same name would write the name twice, a line Prometheus rejects.
    """
    names = {*TARGET_LABELS, "job", "instance", "le", "quantile"}
    names.update(label for family in (*SYNC_FAMILIES, *RUN_FAMILIES) for label in family.labels)
    for adapter in PROVIDERS.values():
        names.update(adapter.target_labels)
        names.update(adapter.info_labels)
        names.update(label for family in adapter.families for label in family.labels)
    return frozenset(names)


reserve_labels(reserved_labels())
