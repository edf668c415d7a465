"""One read per sync in flight: collections that overlap wait for it instead of reading again.

With `min_interval`, a reading is served again while it is young; but a reading only exists
once its read has finished, so scrapes with different timeouts (each its own collection)
used to read the same sync side by side. A read in flight now answers every collection that
asks within the window it would have been served for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from exporter.model import SyncStatus
from exporter.providers.base import UpstreamError


@dataclass(slots=True)
class InFlight:
    """A read under way: when its collection started, by when it must end, and its outcome."""

    at: float
    deadline: float
    done: asyncio.Event = field(default_factory=asyncio.Event)
    status: SyncStatus | None = None
    error: Exception | None = None


class SharedFailure(Exception):
    """Another collection's read of this sync failed; counted there, reported here too."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _cut_short(shared: InFlight, deadline: float) -> bool:
    """Whether the read ran out of its own collection's time, and this one has more."""
    error = shared.error
    timed_out = isinstance(error, UpstreamError) and error.reason == "timeout"
    return timed_out and shared.deadline < deadline


class Reads:
    """Where a sync's read in flight is kept, keyed by the sync's (source, id)."""

    def __init__(self) -> None:
        self._flying: dict[tuple[str, str], InFlight] = {}

    async def read(
        self,
        key: tuple[str, str],
        at: float,
        within: float,
        deadline: float,
        read: Callable[[], Awaitable[SyncStatus]],
    ) -> tuple[SyncStatus, float | None]:
        """The sync's status, and the start of the collection whose read gave it if not ours.

        Raises what `read` raises, or SharedFailure when the shared read failed; a shared
        read that only ran out of its collection's time is done again with this one's.
        Only for `within` above 0: with nothing to share, the caller reads on its own.
        """
        shared = self._flying.get(key)
        if shared is not None and at - shared.at < within:
            await shared.done.wait()
            if shared.status is not None:
                return shared.status, shared.at
            # A cancelled read (its collection's deadline, a shutdown) has no error: read again.
            if shared.error is not None and not _cut_short(shared, deadline):
                raise SharedFailure(shared.error)
        own = InFlight(at, deadline)
        self._flying[key] = own
        try:
            own.status = await read()
            return own.status, None
        except Exception as exc:
            own.error = exc
            raise
        finally:
            own.done.set()
            if self._flying.get(key) is own:
                del self._flying[key]
