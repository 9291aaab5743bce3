"""`limit` and `cursor` on every management list (docs/api.md, "Paging"), over `keyless.paging`.

A list operation takes `page: Paging` and returns `page.take(items, order)` (or, for a store query
that pages itself, `page.after(shape)` then `page.cut(rows, key)`). The body stays the JSON array it
always was, so older callers still parse it; when more items follow, the answer carries
`Link: </…?limit=N&cursor=C>; rel="next"` (RFC 8288, as GitHub's API does), a path-absolute
reference that holds every other query parameter of the request, so following it repeats the same
filter. The last page has no `Link`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from fastapi import Depends, Query, Request, Response

from keyless.paging import DEFAULT_LIMIT, MAX_CURSOR_LENGTH, MAX_LIMIT, MAX_REPORT_LIMIT, Key, Order, Window, encode

T = TypeVar("T")

LINK_HEADER_DOC: dict[str, Any] = {
    "description": 'RFC 8288 `<…>; rel="next"` when more items follow: the same request with `cursor` set. '
                   "Absent on the last page.",
    "schema": {"type": "string"},
}


class Page:
    """One page request of one list, and where the `Link` to the next goes."""

    def __init__(self, request: Request, response: Response, window: Window) -> None:
        self._request = request
        self._response = response
        self.window = window

    @property
    def limit(self) -> int:
        return self.window.limit

    def take(self, items: Iterable[T], order: Order[T]) -> list[T]:
        page, cursor = self.window.take(items, order)
        self._link(cursor)
        return page

    def after(self, shape: Sequence[type]) -> Key | None:
        return self.window.after(shape)

    def cut(self, rows: Sequence[T], key: Callable[[T], Key]) -> list[T]:
        page, cursor = self.window.cut(rows, key)
        self._link(cursor)
        return page

    def next_after(self, key: Key | None) -> str | None:
        """For a list whose store pages (and filters) by itself: the cursor of the page after `key`
        (None: this is the last page), also sent as the `Link`."""
        cursor = None if key is None else encode(self.window.scope, key)
        self._link(cursor)
        return cursor

    def _link(self, cursor: str | None) -> None:
        if cursor is None:
            return
        query = [(k, v) for k, v in self._request.query_params.multi_items() if k not in {"cursor", "limit"}]
        query += [("limit", str(self.window.limit)), ("cursor", cursor)]
        self._response.headers["Link"] = f'<{self._request.url.path}?{urlencode(query)}>; rel="next"'


Cursor = Annotated[str | None, Query(max_length=MAX_CURSOR_LENGTH, description="Where to go on: the `cursor` of "
                                     "the previous answer's `Link: rel=\"next\"`.")]


async def _page(
    request: Request, response: Response,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"At most this many items (default "
                                f"{DEFAULT_LIMIT}, at most {MAX_LIMIT}).")] = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page:
    return Page(request, response, Window(scope=request.url.path, limit=limit, cursor=cursor))


async def _report_page(
    request: Request, response: Response,
    limit: Annotated[int, Query(ge=1, le=MAX_REPORT_LIMIT, description=f"At most this many items (default "
                                f"{DEFAULT_LIMIT}, at most {MAX_REPORT_LIMIT}).")] = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page:
    return Page(request, response, Window(scope=request.url.path, limit=limit, cursor=cursor))


Paging = Annotated[Page, Depends(_page)]
# A report read whole by its client (the posture report): larger pages, fewer requests (docs/api.md, "Paging").
ReportPaging = Annotated[Page, Depends(_report_page)]
