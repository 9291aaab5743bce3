"""What the vault API reads of a request and what it answers, whichever layer carried it (issue 18).

A vault read is answered by the listener itself, below ASGI (`keyless.server.vault_protocol`), as a
token POST is; every other vault request goes through uvicorn and the ASGI app. Both hand `VaultApi`
the same `VaultRequest` and send the same `VaultResponse`, so the checks and answers are one piece of
code whichever way a request came. Each accessor reads exactly what Starlette's `Request` gave the
API before: a header is the first of that name (`Headers.get`), a query parameter the last of that
name (`QueryParams`, blank values kept), the path the raw bytes as sent (catalog G01).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from keyless.server.routes.common import read_capped

BodyReader = Callable[[int], Awaitable[bytes]]  # the body, at most this many bytes (else BodyTooLarge)


async def _no_body(limit: int) -> bytes:
    return b""


class VaultRequest:
    """One request's method, raw path, query string and headers (names lower-case, as uvicorn gives
    them), and how to read its body."""

    __slots__ = ("_headers", "_params", "_read", "links", "method", "query", "raw_path")

    def __init__(self, method: str, raw_path: bytes, query: bytes, headers: list[tuple[bytes, bytes]],
                 read: BodyReader = _no_body) -> None:
        self.method = method
        self.raw_path = raw_path.decode("latin-1")
        self.query = query
        self._headers = headers
        self._read = read
        self._params: dict[str, str] | None = None
        self.links: str | None = None  # the URL base of `nextLink`s when the vault is addressed by path

    @classmethod
    def from_scope(cls, scope: Scope, receive: Receive) -> VaultRequest:
        async def read(limit: int) -> bytes:
            return await read_capped(Request(scope, receive), limit)

        raw_path = scope.get("raw_path") or scope["path"].encode()
        return cls(scope["method"], raw_path, scope.get("query_string", b""), scope["headers"], read)

    def header(self, name: bytes) -> str | None:
        """The first header called `name` (lower-case), latin-1 decoded, or None."""
        for key, value in self._headers:
            if key == name:
                return value.decode("latin-1")
        return None

    @property
    def params(self) -> dict[str, str]:
        """The query parameters, the last value of each name winning (Starlette's `QueryParams`)."""
        if self._params is None:
            self._params = dict(parse_qsl(self.query.decode("latin-1"), keep_blank_values=True))
        return self._params

    async def body(self, limit: int) -> bytes:
        """The body, refused (`BodyTooLarge`) as soon as it passes `limit` (G03)."""
        return await self._read(limit)


class VaultResponse:
    """Status, headers (in the order they are sent) and body of one answer."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes = b"") -> None:
        self.status = status
        self.headers = headers
        self.body = body

    async def send(self, send: Send) -> None:
        """As ASGI messages: what Starlette's `Response` sent for the same answer."""
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})
