"""The metric reference of docs/metrics.md and docs/providers/<name>.md, generated from the core
families and each adapter's own declarations, one table per provider as kube-state-metrics keeps
one per resource (a test keeps the docs equal to it: `python -m exporter.exposition.reference`
prints it)."""

from __future__ import annotations

from exporter.exposition.metrics import (
    EXPORTER_FAMILIES,
    RUN_FAMILIES,
    SYNC_FAMILIES,
    SYNC_INFO,
    TARGET_LABELS,
    table,
)
from exporter.model import CORE_INFO_LABELS
from exporter.providers import PROVIDERS


def core_table() -> str:
    """The families every provider's syncs have (the run counters once a reading is seen)."""
    return table((*SYNC_FAMILIES, *RUN_FAMILIES))


def exporter_table() -> str:
    """The exporter's own families."""
    return table(EXPORTER_FAMILIES, base=())


def provider_table(name: str) -> str:
    """One provider's labels beyond the core ones, and the families only it fills."""
    adapter = PROVIDERS[name]
    identity = (*TARGET_LABELS, *adapter.target_labels)
    info = (*CORE_INFO_LABELS, *adapter.info_labels)
    lines = [
        f"Identity labels: {', '.join(f'`{label}`' for label in identity)}.",
        f"`{SYNC_INFO.name}` labels: {', '.join(f'`{label}`' for label in info)}"
        + ", plus any `label_from` labels.",
        "",
    ]
    if adapter.families:
        lines.append(table(adapter.families, base=identity).rstrip("\n"))
    else:
        lines.append("No families of its own.")
    return "\n".join(lines) + "\n"


def main() -> int:
    """Print the whole reference."""
    print("## Every provider (docs/metrics.md)\n")
    print(core_table())
    for name in PROVIDERS:
        print(f"## {name} (docs/providers/{name}.md)\n")
        print(provider_table(name))
    print("## The exporter itself (docs/metrics.md)\n")
    print(exporter_table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
