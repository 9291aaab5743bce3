"""`VaultRequest` reads a request exactly as Starlette's `Request` did for the vault API before the
listener answered reads itself (issue 18): the first header of a name, the last query parameter of a
name with blank values kept, the raw path as sent, the body under its cap."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import pytest
from starlette.requests import Request

from keyless.server.routes.common import BodyTooLarge, read_capped
from keyless.server.vault.request import VaultRequest, VaultResponse

HEADERS = [
    [],
    [(b"host", b"one"), (b"host", b"two"), (b"authorization", b"Bearer a b"), (b"if-match", b"")],
    [(b"content-length", b"12"), (b"x", b"\xe9t\xe9")],
]
QUERIES = [b"", b"api-version=7.4", b"api-version=7.4&api-version=7.5&x=&y&%24skiptoken=a%2Bb+c&maxresults=%FF"]
NAMES = [b"host", b"authorization", b"if-match", b"content-length", b"x", b"absent"]


def scope(headers: list[tuple[bytes, bytes]], query: bytes,
          raw_path: bytes | None = b"/secrets/a%2Fb/") -> dict[str, Any]:
    return {"type": "http", "method": "GET", "path": "/secrets/a/b/", "raw_path": raw_path, "query_string": query,
            "headers": headers}


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


@pytest.mark.parametrize("headers", HEADERS)
@pytest.mark.parametrize("query", QUERIES)
def test_headers_parameters_and_path_read_as_starlette_reads_them(headers: list[tuple[bytes, bytes]],
                                                                   query: bytes) -> None:
    theirs = Request(scope(headers, query), _receive)
    ours = VaultRequest.from_scope(scope(headers, query), _receive)
    assert [ours.header(n) for n in NAMES] == [theirs.headers.get(n.decode()) for n in NAMES]
    assert ours.params == dict(theirs.query_params)
    assert ours.raw_path == "/secrets/a%2Fb/" and ours.query == query and ours.method == "GET"


def test_without_a_raw_path_the_decoded_path_is_used() -> None:
    assert VaultRequest.from_scope(scope([], b"", raw_path=None), _receive).raw_path == "/secrets/a/b/"


def chunks(*parts: bytes) -> Any:
    messages = [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1} for i, p in enumerate(parts)]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    return receive


@pytest.mark.parametrize(("headers", "parts", "limit"), [
    ([], (b"ab", b"cd"), 4),
    ([], (b"ab", b"cde"), 4),
    ([(b"content-length", b"5")], (b"abcde",), 4),
    ([(b"content-length", b"x")], (b"",), 4),
])
def test_the_body_is_read_under_its_cap_as_read_capped_reads_it(headers: list[tuple[bytes, bytes]],
                                                                 parts: tuple[bytes, ...], limit: int) -> None:
    async def outcome(read: Any) -> bytes | str:
        try:
            return bytes(await read())
        except BodyTooLarge:
            return "too large"

    ours = asyncio.run(outcome(lambda: VaultRequest.from_scope(scope(headers, b""), chunks(*parts)).body(limit)))
    theirs = asyncio.run(outcome(lambda: read_capped(Request(scope(headers, b""), chunks(*parts)), limit)))
    assert ours == theirs
    assert ours == (b"abcd" if parts == (b"ab", b"cd") else "too large")


def test_a_response_is_sent_as_two_asgi_messages() -> None:
    sent: list[MutableMapping[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    asyncio.run(VaultResponse(200, [(b"content-length", b"2")], b"{}").send(send))
    assert sent == [{"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]},
                    {"type": "http.response.body", "body": b"{}"}]
