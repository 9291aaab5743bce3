"""Keyset paging: the one convention for every list Keyless serves (docs/api.md, "Paging").

A page is at most `limit` items in a fixed order; the next page starts after the last item's sort
key. The cursor that carries that key is opaque to callers (base64url of JSON) but deliberately
*harmless* rather than signed: it holds only the sort key of an item the caller was just shown and a
tag of the list it came from, and every page is still filtered by tenant and access on the server, so
a forged or edited cursor can only choose where a listing the caller may read anyway starts. A cursor
that does not decode, belongs to another list or has the wrong shape is refused (`InvalidCursor`,
400 `invalid_cursor`), never guessed at.

Keyset (not offset) paging, because items created or deleted between two requests neither repeat
nor vanish from the pages that follow (the failure mode of `?offset=` under writes; see Markus
Winand, "We need tool support for keyset pagination", and the Link header practice of RFC 8288).

This module knows no HTTP framework: `keyless.server.manage.paging` reads `limit`/`cursor` from the
query and writes the `Link: <…>; rel="next"` header; the console or any other caller can page an
in-memory sequence with `take` or a store query with `Window.after` + `Window.cut`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from keyless.errors import KeylessError

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# The posture report's pages (read whole by `keyless posture`): each page costs a fixed number of queries
# and a request, so 20,000 workloads take 4 pages instead of 20 (docs/benchmarks.md, "Posture").
MAX_REPORT_LIMIT = 5000
MAX_CURSOR_LENGTH = 512

Scalar = str | int | float
Key = tuple[Scalar, ...]
T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)


class InvalidCursor(KeylessError):
    """The cursor was not made by this list: answered 400 `invalid_cursor`."""

    code = "invalid_cursor"


class Order(Generic[T_contra]):
    """How a list is sorted: the key of an item and the types of that key's parts (a cursor must
    match them). Ties must be impossible, so a key ends with an id."""

    def __init__(self, key: Callable[[T_contra], Key], shape: tuple[type, ...]) -> None:
        self._key = key
        self.shape = shape

    def key(self, item: T_contra) -> Key:
        return self._key(item)


class Created(Protocol):
    """Most directory objects: listed in creation order, the id breaking ties."""

    @property
    def created_at(self) -> float: ...

    @property
    def id(self) -> str: ...


BY_CREATED: Order[Created] = Order(lambda x: (x.created_at, x.id), (float, str))


def _tag(scope: str) -> str:
    return hashlib.sha256(scope.encode()).hexdigest()[:12]


def encode(scope: str, key: Key) -> str:
    raw = json.dumps([_tag(scope), *key], separators=(",", ":"), ensure_ascii=True).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _fits(value: object, kind: type) -> bool:
    if isinstance(value, bool):
        return False
    if kind is float:
        return isinstance(value, (int, float)) and value == value  # no NaN: it never compares
    return isinstance(value, kind)


def decode(scope: str, cursor: str, shape: Sequence[type]) -> Key:
    """The key a cursor carries, checked against the list's `scope` and key `shape`."""
    if len(cursor) > MAX_CURSOR_LENGTH or not cursor.isascii():
        raise InvalidCursor("the cursor is not one this list gave out")
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidCursor("the cursor is not one this list gave out") from None
    if (not isinstance(decoded, list) or len(decoded) != len(shape) + 1 or decoded[0] != _tag(scope)
            or not all(_fits(v, k) for v, k in zip(decoded[1:], shape, strict=True))):
        raise InvalidCursor("the cursor is not one this list gave out")
    return tuple(decoded[1:])


@dataclass(frozen=True)
class Window:
    """One page request: how many items, and after which key (None: from the start). `scope` names
    the list (the request path), so a cursor from one list is refused by another."""

    scope: str
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None

    def after(self, shape: Sequence[type]) -> Key | None:
        return None if self.cursor is None else decode(self.scope, self.cursor, shape)

    def cut(self, rows: Sequence[T], key: Callable[[T], Key]) -> tuple[list[T], str | None]:
        """Rows fetched with `limit + 1` (in order, after the cursor) → this page and the next cursor."""
        page = list(rows[: self.limit])
        more = len(rows) > self.limit and page
        return page, (encode(self.scope, key(page[-1])) if more else None)

    def take(self, items: Iterable[T], order: Order[T]) -> tuple[list[T], str | None]:
        """Page a sequence held in memory: sort by `order`, skip through the cursor, cut."""
        after = self.after(order.shape)
        ranked = sorted(items, key=order.key)
        if after is not None:
            ranked = [i for i in ranked if order.key(i) > after]
        return self.cut(ranked[: self.limit + 1], order.key)
