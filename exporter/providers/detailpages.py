"""A generic source's detail body that comes in pages (Merge's sync status, 100 models a page).

The pages' arrays are joined under their key in the first page's body, so the fields and
rules read one document whatever the number of pages.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Annotated, Any
from urllib.parse import urlencode

from pydantic import AfterValidator

from exporter import jpath
from exporter.providers.base import MAX_LIST_PAGES, BadResponse, Http, UpstreamError
from exporter.schema import Checked, FieldError, compile_path, shown

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _expression(text: str) -> str:
    compile_path(text)
    return text


class DetailPages(Checked):
    """A detail body that comes in pages: the array under `items` is gathered from every page,
    the cursor `next` finds sent as `cursor_param`."""

    items: str
    next: Annotated[str, AfterValidator(_expression)]
    cursor_param: str

    @classmethod
    def problems(cls, values: Mapping[str, Any], raw: Mapping[str, Any]) -> Iterator[FieldError]:
        """The array is a top-level key (the pages' arrays are joined under it)."""
        items = values.get("items")
        if isinstance(items, str) and not _KEY.fullmatch(items):
            yield FieldError("items", f"must be a top-level key of the body, got {shown(items)}")
        cursor = values.get("cursor_param")
        if isinstance(cursor, str) and not cursor.strip():
            yield FieldError("cursor_param", "is empty")


class PagedDetail:
    """`DetailPages` compiled once: reads every page of one sync's detail."""

    def __init__(self, pages: DetailPages) -> None:
        self.items = pages.items
        self.cursor_param = pages.cursor_param
        self.next = compile_path(pages.next)

    async def read(self, http: Http, url: str, headers: dict[str, str]) -> dict[str, Any]:
        """The first page's body with every page's items; a cursor seen twice, or more than
        MAX_LIST_PAGES pages, fails the read."""
        found: list[Any] = []
        first: dict[str, Any] | None = None
        seen: set[str] = set()
        page = url
        for _ in range(MAX_LIST_PAGES):
            body = await http.get(page, headers)
            items = body.get(self.items) if isinstance(body, dict) else None
            if not isinstance(items, list):
                raise BadResponse(f"the detail body's {self.items!r} is no JSON array")
            first = body if first is None else first
            found.extend(items)
            given = jpath.search(self.next, body)
            cursor = jpath.text(given) if jpath.truthy(given) else None
            if not cursor:
                return {**first, self.items: found}
            if cursor in seen:
                raise UpstreamError(
                    "bad_response", "the detail's next cursor repeats an earlier one"
                )
            seen.add(cursor)
            page = url + ("&" if "?" in url else "?") + urlencode({self.cursor_param: cursor})
        raise UpstreamError("bad_response", f"the detail did not end within {MAX_LIST_PAGES} pages")
