"""What every provider adapter is made of; the collector and discovery depend on this only.

An adapter is a class per provider, instantiated per source: it declares its config model
(validated under the source), the metric families and sync_info labels only it fills, which
syncs the config names, how to list the provider's syncs, and how to read one sync's status.
It never opens a connection itself: it is handed an `Http`, the transport written once in
`exporter.sources.upstream`, so it stays a pure description of one provider's API.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar, Generic, Protocol, TypeVar
from urllib.parse import quote, urlencode

from exporter.errors import BadResponse as BadResponse
from exporter.errors import UpstreamError as UpstreamError
from exporter.exposition.metrics import Family
from exporter.exposition.targets import Found, Shard, Target
from exporter.model import SyncStatus
from exporter.schema import SourceConfig, labels_from

MAX_LIST_PAGES = 1000
# What `quote` never escapes: an id of only these is its own path segment.
_PLAIN_SEGMENT = re.compile(r"[A-Za-z0-9_.~-]+")
# Failures of a bulk listing that say nothing of each sync, which may still be read alone.
_LISTING_ONLY = frozenset({"timeout", "connect", "server_error", "bad_response"})


class Http(Protocol):
    """A source's door to its provider as an adapter sees it: one GET (or a token POST),
    decoded JSON or an error.

    `get` raises UpstreamError for any failure (HTTP status, transport, body too large, not
    JSON); `listing` allows the larger bodies of list pages.
    """

    async def get(self, url: str, headers: Mapping[str, str], *, listing: bool = False) -> Any:
        """GET `url` and return its decoded JSON body."""
        ...

    async def post(self, url: str, headers: Mapping[str, str], form: bytes) -> Any:
        """POST `form` to `url` (a token request) and return its decoded JSON body."""
        ...


Listing = dict[str, "list[Found] | UpstreamError"]

C = TypeVar("C", bound=SourceConfig[Any, Any])


class Adapter(ABC, Generic[C]):
    """One source's provider: which syncs to read and how to read each one."""

    name: ClassVar[str]
    default_base_url: ClassVar[str]
    config_model: ClassVar[type[SourceConfig[Any, Any]]]
    # Families only this provider fills (values in SyncStatus.values / .sets by family name).
    families: ClassVar[tuple[Family, ...]] = ()
    # sync_info labels beyond the core name and integration.
    info_labels: ClassVar[tuple[str, ...]] = ()
    # Labels that identify a sync beside source, provider and sync_id (on every series).
    target_labels: ClassVar[tuple[str, ...]] = ()
    # Whether `discover` exists; and whether to list even without `discover: true`, because
    # the listing describes configured syncs better than their own status does.
    can_discover: ClassVar[bool] = True
    lists_for_info: ClassVar[bool] = False
    # Whether a failed bulk listing (a timeout, a 5xx, a bad body: not a refusal) leaves its
    # syncs to be read one by one with `read` instead of marking them all down.
    reads_alone_when_bulk_fails: ClassVar[bool] = False
    # Where this provider's webhook deliveries name their event, and the names it documents
    # and where they name the sync (a source's `webhook` options replace them).
    webhook_event: ClassVar[str | None] = None
    webhook_id: ClassVar[str | None] = None
    webhook_outcome: ClassVar[str | None] = None
    webhook_run: ClassVar[str | None] = None
    webhook_events: ClassVar[tuple[str, ...]] = ()
    # Events that change what the listing says of a sync (true by JMESPath's truth): the
    # source lists again, and the sync is read after that listing.
    webhook_relist: ClassVar[str | None] = None

    def __init__(self, config: C, shard: Shard) -> None:
        self.config = config
        self.base_url: str = config.base_url or self.default_base_url
        self.shard = shard
        self.label_from = config.compiled_label_from()
        self.minted = 0
        self.mint_failures = 0

    @property
    def mints(self) -> bool:
        """Whether this source signs its own tokens (exports the minting counters)."""
        return False

    def adopt(self, previous: Adapter[Any]) -> None:
        """Keep what the adapter it replaces learnt across readings (a reload that keeps the
        source's listings); most adapters learn nothing."""

    def info_label_names(self) -> tuple[str, ...]:
        """Every sync_info label of this source's syncs, in order."""
        return (*self.info_labels, *(label for label, _ in self.label_from))

    def described(self, body: Any) -> dict[str, str]:
        """The label_from labels read from the provider's object for a sync."""
        return labels_from(body, self.label_from) if self.label_from else {}

    def configured(self) -> list[Found]:
        """The syncs the config lists, as targets-to-be."""
        return [
            Found(sync.id, labels=sync.labels, stale_after=sync.stale_after)
            for sync in self.config.syncs
        ]

    async def discover(self, http: Http) -> Listing:
        """Every sync the provider lists, per scope (a user, or '' for the whole source).

        A scope whose listing failed maps to its error, so discovery keeps that scope's
        last good list and replaces the others.
        """
        raise NotImplementedError(f"{self.name} cannot list syncs")

    def reads_in_bulk(self) -> bool:
        """Whether one listing answers every sync's status, so a scrape reads that instead."""
        return False

    async def read_many(self, targets: Sequence[Target], http: Http) -> dict[str, SyncStatus]:
        """Statuses of many syncs from one listing, by sync id (when reads_in_bulk()).

        A sync the listing does not carry is then read with `read`; a listing that fails
        raises, and every sync it was to answer fails with that reason, unless
        `reads_alone_after` says to read each one with `read` instead.
        """
        raise NotImplementedError(f"{self.name} cannot read syncs in bulk")

    def reads_alone_after(self, error: Exception) -> bool:
        """Whether the syncs a failed `read_many` was to answer are then read one by one (within
        the request budget), for adapters whose `read` does not depend on the listing."""
        if not self.reads_alone_when_bulk_fails:
            return False
        if isinstance(error, BadResponse):
            return True
        return isinstance(error, UpstreamError) and error.sent and error.reason in _LISTING_ONLY

    @abstractmethod
    async def read(self, target: Target, http: Http) -> SyncStatus:
        """Read one sync's status (one or more requests); raise UpstreamError or BadResponse."""


def require_object(body: Any, *, status: bool = True) -> dict[str, Any]:
    """Refuse a body that is not a JSON object (with a string `status` unless told otherwise)."""
    if not isinstance(body, dict):
        raise BadResponse(f"expected a JSON object, got {type(body).__name__}")
    if status and not isinstance(body.get("status"), str):
        raise BadResponse("response has no string 'status' field")
    return body


def objects_in(items: Any, what: str) -> list[dict[str, Any]]:
    """The objects of a JSON array; anything else is a bad response."""
    if not isinstance(items, list):
        raise BadResponse(f"the list of {what} is not a JSON array")
    return [item for item in items if isinstance(item, dict)]


def listed_id(item: Mapping[str, Any]) -> str:
    """A listed object's id as text ('' when it has none, which discovery then drops)."""
    value = item.get("id")
    return value if isinstance(value, str) else ""


def path_id(sync_id: str) -> str:
    """An id as one URL path segment (most ids need no escaping: one match, not a `quote`)."""
    if _PLAIN_SEGMENT.fullmatch(sync_id):
        return sync_id
    return quote(sync_id, safe="")


def with_query(url: str, **params: str | int | None) -> str:
    """`url` with the given query parameters, leaving out those that are None."""
    given = {key: str(value) for key, value in params.items() if value is not None}
    return f"{url}?{urlencode(given)}" if given else url


async def follow_pages(
    fetch: Callable[[str | None], Awaitable[tuple[list[dict[str, Any]], str | None]]],
) -> list[dict[str, Any]]:
    """Every item of a cursor-paginated list; a cursor seen twice or too many pages is a failure.

    A listing that cannot end is not taken as complete: discovery then keeps its last good
    list instead of replacing it with a truncated one.
    """
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    seen: set[str] = set()
    for _ in range(MAX_LIST_PAGES):
        page, cursor = await fetch(cursor)
        items.extend(page)
        if cursor is None:
            return items
        if cursor in seen:
            raise UpstreamError("bad_response", "the list's next cursor repeats an earlier one")
        seen.add(cursor)
    raise UpstreamError("bad_response", f"the list did not end within {MAX_LIST_PAGES} pages")


def next_cursor(body: Mapping[str, Any]) -> str | None:
    """The `next` cursor of a page, if it has a usable one."""
    following = body.get("next")
    return following if isinstance(following, str) and following else None
