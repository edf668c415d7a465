"""The generic adapter: lists, reads in bulk from the list, or one GET per sync, as its
`generic:` block says."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit

from exporter import jpath
from exporter.exposition.metrics import SYNC_HEALTH
from exporter.exposition.targets import Found, Shard, Target
from exporter.model import SyncStatus
from exporter.providers.base import (
    MAX_LIST_PAGES,
    Adapter,
    BadResponse,
    Http,
    Listing,
    UpstreamError,
    path_id,
)
from exporter.providers.detailpages import PagedDetail
from exporter.providers.generic.config import GenericConfig
from exporter.providers.generic.mapping import StatusMap, plain_field
from exporter.providers.generic.successes import Successes
from exporter.providers.lastsuccess import LastSuccessReader
from exporter.providers.oauth import Tokens
from exporter.schema import compile_path
from exporter.selection import LARGE_LISTING, Capped, first_by_id
from exporter.threads import in_thread

# A list fetched for a scrape answers the reads of that scrape's leftovers for this long.
LIST_REUSE = 1.0


def _origin(url: str) -> tuple[str, str, int] | None:
    """Scheme, host and port as a browser compares origins: the host's case and a default
    port do not matter; None for a URL with no host or a bad port."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or {"http": 80, "https": 443}.get(scheme, 0)
    except ValueError:
        return None
    return None if not parts.hostname else (scheme, parts.hostname, port)


# A listing as remembered: when it began, the items kept by id, and the ids it kept.
Listed = tuple[float, dict[str, Any], frozenset[str]]


class Generic(Adapter[GenericConfig]):
    """A source of any JSON sync API: listed, read in bulk from the list, or one GET each."""

    name = "generic"
    default_base_url = ""
    config_model = GenericConfig
    # With a detail request the list item describes each sync (its name, say); without one
    # discover() lists only when asked to, as a scrape reads the list anyway.
    lists_for_info = True
    families = (SYNC_HEALTH,)

    def __init__(self, config: GenericConfig, shard: Shard) -> None:
        super().__init__(config, shard)
        api = config.generic
        self.mapping = StatusMap.of(api)
        self._listing = api.listing
        self._detail = api.detail
        self._pages = None if api.detail_pages is None else PagedDetail(api.detail_pages)
        self._items = None if api.listing is None else compile_path(api.listing.items)
        self._next = (
            None
            if api.listing is None or api.listing.next is None
            else compile_path(api.listing.next)
        )
        self._more = (
            None
            if api.listing is None or api.listing.more is None
            else compile_path(api.listing.more)
        )
        self._id = compile_path(api.fields.id)
        self._id_key = plain_field(self._id)
        self._auth = config.auth.headers()
        spec = config.auth.client_credentials
        since = api.last_success_from
        self._last_success = None if since is None else LastSuccessReader(since, self.base_url)
        self._tokens = None if spec is None else Tokens(spec, self.base_url, self)
        self._own = {
            sync.id: {name: value.get_secret_value() for name, value in sync.headers.items()}
            for sync in config.syncs
            if sync.headers
        }
        self._origin = _origin(self.base_url)
        base = urlsplit(self.base_url)
        self._root = f"{base.scheme}://{base.netloc}"
        self._lock = asyncio.Lock()
        self._listed: Listed | None = None
        self._successes = Successes(api.initial_until_success)

    def adopt(self, previous: Adapter[Any]) -> None:
        """The last successes the replaced source saw (its mapping was the same)."""
        if isinstance(previous, Generic):
            self._successes = previous._successes

    @property
    def mints(self) -> bool:
        """Client credentials mint the source's tokens (counted as Paragon's are)."""
        return self._tokens is not None

    def _authorized(self, http: Http) -> Http:
        """`http` adding the minted token, for one read, when client credentials are set."""
        return http if self._tokens is None else self._tokens.bound(http)

    def _headers(self, sync_id: str | None) -> dict[str, str]:
        if sync_id is None or sync_id not in self._own:
            return self._auth
        return {**self._own[sync_id], **self._auth}

    def reads_in_bulk(self) -> bool:
        """Without a detail request the list carries every status: one listing answers all."""
        return self._listing is not None and self._detail is None

    async def discover(self, http: Http) -> Listing:
        """Every listed sync, its list item as context (what the detail body is laid over).

        A huge list is cut to the configured syncs and the first by id up to `max_syncs`
        before any is built (in a thread), the others only counted.
        """
        if self._listing is None or (not self.config.discover and self._detail is None):
            return {"": []}
        http = self._authorized(http)
        try:
            items = await self._list(http)
        except UpstreamError as exc:
            return {"": exc}
        except BadResponse as exc:
            return {"": UpstreamError("bad_response", str(exc))}
        if len(items) <= LARGE_LISTING:
            return {"": [Found(sync_id, context=item) for sync_id, item in items]}
        configured = {sync.id for sync in self.config.syncs}
        cap = int(self.config.max_syncs) if self.config.discover else 0

        def pick() -> Capped:
            chosen, beyond = first_by_id(
                items, configured, cap, lambda sync_id: self.shard.owns(self.config.name, sync_id)
            )
            found = Capped(Found(sync_id, context=item) for sync_id, item in chosen)
            found.beyond = beyond
            return found

        return {"": await in_thread(pick, "listing", no_gc=True)}

    async def read_many(self, targets: Sequence[Target], http: Http) -> dict[str, SyncStatus]:
        """Every status the list carries, from one listing (every page of it), or from a
        listing that began after this call did (concurrent probes and collections share it).
        Only the targets' items are parsed, and of a huge list only theirs are kept."""
        asked = time.monotonic()
        http = self._authorized(http)
        wanted = {target.sync_id for target in targets}
        async with self._lock:
            listed = self._listed
            if listed is None or listed[0] < asked or not wanted <= listed[2]:
                listed = await self._fresh_listing(http, wanted)
        statuses = {}
        now = time.time()
        for sync_id in wanted:
            item = listed[1].get(sync_id)
            if item is None:
                continue
            try:
                status = self.mapping.parse(item, now)
                status.info.update(self.described(item))
            except Exception:
                continue  # read on its own next, which says why
            statuses[sync_id] = self._successes.settle(sync_id, status, now)
        return statuses

    async def _fresh_listing(self, http: Http, wanted: set[str]) -> Listed:
        """List now and remember it, with when it began: every item of an ordinary list (so
        concurrent probes of other syncs share it), only the `wanted` syncs' of a huge one; a
        sync listed twice keeps its first item, as discovery does. Called with the lock held."""
        began = time.monotonic()
        pairs = await self._list(http)
        huge = len(pairs) > LARGE_LISTING

        def keep() -> dict[str, Any]:
            items: dict[str, Any] = {}
            for sync_id, item in pairs:
                if not huge or sync_id in wanted:
                    items.setdefault(sync_id, item)
            return items

        items = await in_thread(keep, "listing", no_gc=True) if huge else keep()
        self._listed = (began, items, frozenset(wanted) | (frozenset() if huge else items.keys()))
        return self._listed

    async def read(self, target: Target, http: Http) -> SyncStatus:
        """One sync: its detail body laid over its list item, or its item of a fresh listing."""
        item = target.context if isinstance(target.context, dict) else {}
        http = self._authorized(http)
        if self._detail is not None:
            url = self.base_url + self._detail.replace("{id}", path_id(target.sync_id))
            headers = self._headers(target.sync_id)
            if self._pages is None:
                body = await http.get(url, headers)
            else:
                body = await self._pages.read(http, url, headers)
            document = {**item, **body} if isinstance(body, dict) else body
        else:
            document = await self._listed_item(target.sync_id, http)
        now = time.time()
        status = self.mapping.parse(document, now)
        status.info.update(self.described(document))
        if self._last_success is not None:
            headers = self._headers(target.sync_id)
            await self._last_success.fill(
                status, document, target.sync_id, target.memory, http, headers
            )
        return self._successes.settle(target.sync_id, status, now)

    async def _listed_item(self, sync_id: str, http: Http) -> Any:
        """The sync's item from a listing at most LIST_REUSE old, so leftovers of a bulk read
        cost no second listing."""
        async with self._lock:
            listed = self._listed
            if listed is None or time.monotonic() - listed[0] > LIST_REUSE:
                listed = await self._fresh_listing(http, {sync_id})
            elif sync_id not in listed[2]:
                listed = await self._fresh_listing(http, {sync_id, *listed[2]})
        if sync_id not in listed[1]:
            raise BadResponse("the list does not carry this sync")
        return listed[1][sync_id]

    def _ids(self, items: list[Any]) -> list[tuple[str, Any]]:
        """Each item with its sync id ("" when it has none)."""
        key = self._id_key
        if key is not None:
            return [
                (jpath.text(item.get(key)) or "" if isinstance(item, dict) else "", item)
                for item in items
            ]
        return [(jpath.text(jpath.search(self._id, item)) or "", item) for item in items]

    def _first_page(self) -> str:
        assert self._listing is not None
        url = self.base_url + self._listing.path
        params = {name: str(value) for name, value in self._listing.params.items()}
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params)
        return url

    def _following(self, first: str, cursor: str) -> str:
        """The next page's URL: the first one with the cursor, or the URL the provider gave,
        which must stay on base_url's host (the request carries credentials)."""
        assert self._listing is not None
        param = self._listing.cursor_param or self._listing.offset_param
        if param is not None:
            query = urlencode({param: cursor})
            return first + ("&" if "?" in first else "?") + query
        if cursor.startswith("/") and not cursor.startswith("//"):
            return self._root + cursor
        if self._origin is None or _origin(cursor) != self._origin:
            raise BadResponse("the next page's URL is not on base_url's host")
        return cursor

    async def _list(self, http: Http) -> list[tuple[str, Any]]:
        """Every page of the list, as (sync id, item); a cursor seen twice is a failure, and so
        is an empty page that says more follow (its offset would repeat)."""
        assert self._items is not None
        first = self._first_page()
        url = first
        found: list[tuple[str, Any]] = []
        seen: set[str] = set()
        for _ in range(MAX_LIST_PAGES):
            body = await http.get(url, self._headers(None), listing=True)
            items = jpath.search(self._items, body)
            if not isinstance(items, list):
                raise BadResponse("the list's items path found no JSON array")
            if len(items) > LARGE_LISTING:
                found.extend(
                    await in_thread(functools.partial(self._ids, items), "listing", no_gc=True)
                )
            else:
                found.extend(self._ids(items))
            if self._more is not None:
                if not jpath.truthy(jpath.search(self._more, body)):
                    return found
                if not items:
                    raise UpstreamError("bad_response", "an empty page says more follow")
                url = self._following(first, str(len(found)))
                continue
            given = None if self._next is None else jpath.search(self._next, body)
            cursor = jpath.text(given) if jpath.truthy(given) else None
            if not cursor:
                return found
            if cursor in seen:
                raise UpstreamError("bad_response", "the list's next cursor repeats an earlier one")
            seen.add(cursor)
            url = self._following(first, cursor)
        raise UpstreamError("bad_response", f"the list did not end within {MAX_LIST_PAGES} pages")
