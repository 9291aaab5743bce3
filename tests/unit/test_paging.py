"""keyless.paging: keyset pages that neither repeat nor skip under writes, and cursors that are
harmless when forged (docs/api.md, "Paging")."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyless.paging import BY_CREATED, MAX_CURSOR_LENGTH, InvalidCursor, Window, decode, encode


@dataclass(frozen=True)
class Item:
    id: str
    created_at: float


def _walk(items: list[Item], limit: int, scope: str = "/t/manage/v1/things") -> list[list[Item]]:
    pages, cursor = [], None
    while True:
        page, cursor = Window(scope, limit, cursor).take(items, BY_CREATED)
        pages.append(page)
        if cursor is None:
            return pages


@given(st.lists(st.tuples(st.text(max_size=6), st.integers(0, 5)), unique_by=lambda t: t[0], max_size=40),
       st.integers(1, 7))
def test_pages_cover_every_item_once_in_order(raw: list[tuple[str, int]], limit: int) -> None:
    items = [Item(id=i, created_at=float(t)) for i, t in raw]
    pages = _walk(items, limit)
    flat = [i for p in pages for i in p]
    assert flat == sorted(items, key=lambda i: (i.created_at, i.id))
    assert all(len(p) <= limit for p in pages)
    assert all(pages[:-1]) and (len(pages[-1]) > 0 or not items)  # no empty page but an empty list's


def test_an_item_deleted_or_added_between_pages_shifts_nothing_that_follows() -> None:
    items = [Item(id=f"i{n}", created_at=float(n)) for n in range(6)]
    first, cursor = Window("/s", 2).take(items, BY_CREATED)
    assert [i.id for i in first] == ["i0", "i1"]
    changed = [i for i in items if i.id != "i1"] + [Item(id="i9", created_at=9.0)]  # the last shown goes
    rest, _ = Window("/s", 10, cursor).take(changed, BY_CREATED)
    assert [i.id for i in rest] == ["i2", "i3", "i4", "i5", "i9"]  # offset paging would have skipped i2


@pytest.mark.parametrize("cursor", [
    "not base64 !", "", "x" * (MAX_CURSOR_LENGTH + 1), "é",
    base64.urlsafe_b64encode(b"{not json").decode(),
    base64.urlsafe_b64encode(json.dumps({"a": 1}).encode()).decode(),
])
def test_a_cursor_this_list_did_not_make_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        Window("/s", 2, cursor).take([Item("a", 1.0)], BY_CREATED)


def test_a_cursor_from_another_list_is_refused() -> None:
    cursor = encode("/tenant/manage/v1/applications/A/secrets", (1.0, "x"))
    assert decode("/tenant/manage/v1/applications/A/secrets", cursor, (float, str)) == (1.0, "x")
    with pytest.raises(InvalidCursor):
        decode("/tenant/manage/v1/applications/B/secrets", cursor, (float, str))


@pytest.mark.parametrize("key", [(1.0,), (1.0, "x", "y"), ("x", 1.0), (True, "x"), (float("nan"), "x"), (1.0, 2)])
def test_a_forged_key_of_the_wrong_shape_is_refused(key: tuple[object, ...]) -> None:
    raw = json.dumps([_tag_of("/s"), *key]).encode()
    forged = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    with pytest.raises(InvalidCursor):
        decode("/s", forged, (float, str))


def _tag_of(scope: str) -> str:
    raw = encode(scope, ())
    return str(json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))[0])


def test_a_forged_cursor_of_the_right_shape_only_moves_the_start() -> None:
    items = [Item(id=f"i{n}", created_at=float(n)) for n in range(5)]
    forged = encode("/s", (2.5, ""))
    page, _ = Window("/s", 10, forged).take(items, BY_CREATED)
    assert [i.id for i in page] == ["i3", "i4"]  # items the caller could list anyway, nothing else
