"""Which per-sync families a scrape exposes: kube-state-metrics' allow and deny lists.

A fleet that charts three families should not pay for nineteen series per sync. The lists
hold regular expressions matched against whole family names; the exporter's own families
(`sync_exporter_*`) are never filtered, since its own alerts read them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from exporter.exposition.metrics import SYNC_RUNS, SYNC_STATE, Family
from exporter.model import STATES
from exporter.schema import shown

SELF_PREFIX = "sync_exporter_"
# Families every read sync has, one series each (sync_up also for a sync not read).
_ALWAYS = frozenset(
    {"sync_up", "sync_provider_status", "sync_info", "sync_status_read_timestamp_seconds"}
)


def split_patterns(value: Any) -> Any:
    """A comma-separated string (the flag's form) as a list; a YAML list as it is."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def check_patterns(patterns: tuple[str, ...]) -> tuple[str, ...]:
    """Refuse an expression that does not compile, saying which and why."""
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression {shown(pattern)}: {exc}") from None
    return patterns


def _combined(patterns: Sequence[str]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{pattern})" for pattern in patterns))


@dataclass(frozen=True, slots=True)
class Selection:
    """An allowlist or a denylist (never both) of per-sync family names, anchored."""

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()

    def keeps(self, name: str) -> bool:
        """Whether the family called `name` is exposed."""
        if name.startswith(SELF_PREFIX):
            return True
        allow, deny = _combined(self.allow), _combined(self.deny)
        if allow is not None:
            return allow.fullmatch(name) is not None
        return deny is None or deny.fullmatch(name) is None

    def split(self, families: Iterable[Family]) -> tuple[list[str], list[str]]:
        """The names of `families` exposed, and those dropped."""
        kept: list[str] = []
        dropped: list[str] = []
        for family in families:
            (kept if self.keeps(family.name) else dropped).append(family.name)
        return kept, dropped

    def describe(self, families: Iterable[Family]) -> str:
        """One line for --config.check and the startup log: which families are exposed."""
        every = list(families)
        kept, dropped = self.split(every)
        if not dropped:
            return f"all {len(kept)} per-sync families"
        return f"{len(kept)} of {len(every)} per-sync families: {', '.join(kept) or 'none'}"

    def unmatched(self, families: Iterable[Family]) -> list[str]:
        """Expressions that match no family of `families` (a typo, or a family renamed)."""
        names = [family.name for family in families]
        return [
            pattern
            for pattern in (*self.allow, *self.deny)
            if not any(re.fullmatch(pattern, name) for name in names)
        ]


def series_per_sync(family: Family) -> str:
    """How many series one sync costs in this family, for the docs' cost table."""
    if family is SYNC_STATE:
        return str(len(STATES))
    if family is SYNC_RUNS:
        return "0 or 2 (one per outcome, once a reading has been seen)"
    if family.states:
        return f"{len(family.states)} (+1 for a state outside these)"
    if family.name in _ALWAYS:
        return "1"
    return "0 or 1"


EVERY_FAMILY = Selection()
