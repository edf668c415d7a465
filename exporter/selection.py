"""The syncs of a huge listing worth building: those configured, and the first by id up to the cap.

Discovery keeps at most `max_syncs` listed syncs, the first in id order. A listing of two
million items used to become two million `Found` objects before that cut, on the event
loop; an adapter that lists that much picks the few it needs first, here, and counts the
others without building anything for them.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Collection, Sequence
from typing import Any

from exporter.exposition.targets import Found
from exporter.schema import check_sync_id

# Lists longer than this are picked from, and in a thread: shorter ones cost little.
LARGE_LISTING = 10_000


class Capped(list[Found]):
    """A listing's syncs picked before the cap; `beyond` counts the rest, never looked at."""

    beyond: int = 0


def first_by_id(
    pairs: Sequence[tuple[str, Any]],
    keep: Collection[str],
    cap: int,
    owns: Callable[[str], bool],
) -> tuple[list[tuple[str, Any]], int]:
    """The pairs (id, item) worth building, and how many others this replica would own.

    Worth building: every pair whose id is in `keep`, and the others in id order until `cap`
    distinct ids that are valid and owned are among them (with the invalid, duplicate and
    unowned ids met on the way, which discovery counts or skips as it always does). An id
    listed twice keeps its first item.
    """
    wanted: set[str] = set()
    want = cap
    others = sum(1 for sync_id, _ in pairs if sync_id not in keep)
    while cap:
        smallest = heapq.nsmallest(want, (sync_id for sync_id, _ in pairs if sync_id not in keep))
        wanted = set(smallest)
        usable = sum(1 for sync_id in wanted if check_sync_id(sync_id) is None and owns(sync_id))
        if usable >= cap or want >= others:
            break
        want *= 2
    chosen: list[tuple[str, Any]] = []
    beyond = 0
    for sync_id, item in pairs:
        if sync_id in keep or sync_id in wanted:
            chosen.append((sync_id, item))
        elif owns(sync_id):
            beyond += 1
    return chosen, beyond
