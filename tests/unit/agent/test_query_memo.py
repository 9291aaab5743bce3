"""The agent remembers accepted query strings (issue 18 item 4: the cached-token path parses the same
query again and again); a refused query is refused every time, and the memo stays bounded."""

from __future__ import annotations

import pytest

from keyless.agent import endpoints
from keyless.agent.endpoints import QUERY_MEMO, Refusal, _query


def test_an_accepted_query_is_parsed_once_and_answered_the_same() -> None:
    raw = b"api-version=2018-02-01&resource=api%3A%2F%2Fbench"
    first = _query(raw)
    assert first == {"api-version": "2018-02-01", "resource": "api://bench"}
    assert _query(raw) is first


@pytest.mark.parametrize("raw", [b"resource=a&resource=b", b"a=" + b"x" * 4096, b"\xff=1"])
def test_a_refused_query_is_never_remembered(raw: bytes) -> None:
    for _ in range(2):
        with pytest.raises(Refusal):
            _query(raw)
    assert raw not in endpoints._QUERIES


def test_many_distinct_queries_keep_the_memo_bounded() -> None:
    for i in range(QUERY_MEMO * 3):
        _query(f"api-version=2018-02-01&resource=api://r{i}".encode())
    assert len(endpoints._QUERIES) <= QUERY_MEMO
