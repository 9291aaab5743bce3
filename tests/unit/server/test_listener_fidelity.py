"""The listener's protocol answers what uvicorn's own httptools protocol would, byte for byte (the Date
aside), wherever it takes over a piece of uvicorn's work (issue 18): the ASGI scope it builds only when
a request goes uvicorn's way, and its own `data_received` (a 400 on a parse error, upgrades). Each
test runs the same input through a plain uvicorn server and the server's `TokenProtocol`."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
import uvicorn

from keyless.listen import Guard, ListenerLimits
from keyless.oauth.request import TokenHttpRequest
from keyless.oauth.service import TokenResult
from keyless.server.eager import Turn
from keyless.server.observe import RouteObserver
from keyless.server.token_protocol import token_protocol
from tests.support.loopback import converse, uvicorn_on

Scopes = list[dict[str, Any]]


class Service:
    async def handle(self, tenant: str, http: TokenHttpRequest) -> TokenResult:
        return TokenResult(status=200, body={"token_for": tenant})


def recording_app(scopes: Scopes) -> Callable[..., Awaitable[None]]:
    async def app(scope: dict[str, Any], receive: Callable[[], Awaitable[Any]],
                  send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        if scope["type"] == "websocket":
            return  # never accepted: the websocket protocol refuses the handshake
        if scope["type"] != "http":
            return
        seen = {key: value for key, value in scope.items() if key not in ("client", "server")}
        seen["client"], seen["server"] = scope["client"][0], scope["server"][0]  # ports differ by run
        scopes.append(seen)
        more = True
        while more:
            more = (await receive()).get("more_body", False)
        body = orjson.dumps({"path": scope["path"]})
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})

    return app


@asynccontextmanager
async def serving(scopes: Scopes, *, ours: bool, guard: Guard | None = None) -> AsyncIterator[int]:
    """A server on loopback: the server's `TokenProtocol` when `ours`, else uvicorn's httptools one."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    limits = ListenerLimits()
    ctx: Any = SimpleNamespace(tokens=Service(), trusted_proxies=(), turn=Turn(),
                               settings=SimpleNamespace(vault_enabled=False, vault_port=0))
    guard = guard or Guard(limits)
    http: Any = token_protocol(ctx, guard, RouteObserver("main", access_log=False)) if ours else "httptools"
    config = uvicorn.Config(recording_app(scopes), http=http, lifespan="off", access_log=False, log_level="critical",
                            **limits.uvicorn_options())
    async with uvicorn_on(config, sock) as port:
        yield port


def both(data: bytes, *, before: bytes = b"") -> tuple[tuple[bytes, Scopes], tuple[bytes, Scopes]]:
    """What uvicorn answers to `data`, and what `TokenProtocol` answers to `before` + `data` (the
    answer to `before` cut off): the bytes sent back and the scopes the app saw."""

    async def run(ours: bool) -> tuple[bytes, Scopes]:
        scopes: Scopes = []
        async with serving(scopes, ours=ours) as port:
            received = await converse(port, before + data if ours else data)
        if ours and before:
            assert received.startswith(b"HTTP/1.1 200 OK"), received
            received = received[received.index(b"}") + 1:]  # the token answer to `before`
        return received, scopes

    return asyncio.run(run(False)), asyncio.run(run(True))


TOKEN_POST = (b"POST /t1/oauth2/v2.0/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
              b"Content-Length: 3\r\n\r\na=1")
ASGI_REQUESTS = [
    b"GET /a%20b/c?q=1&r=%2F HTTP/1.1\r\nHost: x\r\nX-Thing: one  \r\nX-Thing: two\r\n\r\n",
    b"POST /elsewhere HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi",
    b"GET /old HTTP/1.0\r\nHost: x\r\n\r\n",
    b"POST /t1/oauth2/v2.0/token HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\na=1",
    b"GET /t1/oauth2/v2.0/token HTTP/1.1\r\nHost: x\r\n\r\n",
]


@pytest.mark.parametrize("request_bytes", ASGI_REQUESTS)
def test_a_request_going_uvicorns_way_after_a_token_post_sees_uvicorns_scope(request_bytes: bytes) -> None:
    """The scope is built only for a request that takes uvicorn's path: after a token POST on the same
    connection (which built none) it is the one uvicorn builds, and so is the answer."""
    (theirs, their_scopes), (ours, our_scopes) = both(request_bytes, before=TOKEN_POST)
    assert ours == theirs
    assert our_scopes == their_scopes and len(our_scopes) == 1


MALFORMED = [
    b"GARBAGE\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    b"POST /t1/oauth2/v2.0/token HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"POST /t1/oauth2/v2.0/token HTTP/1.1\r\nHo st: x\r\nContent-Length: 3\r\n\r\na=1",
    b"GET / HTTP/9.9\r\n\r\n",
]


@pytest.mark.parametrize("data", MALFORMED)
@pytest.mark.parametrize("after_token", [False, True])
def test_malformed_input_gets_uvicorns_400(data: bytes, after_token: bool) -> None:
    (theirs, _), (ours, _) = both(data, before=TOKEN_POST if after_token else b"")
    assert ours == theirs
    assert b"400 Bad Request" in ours


def test_garbage_behind_a_token_post_in_the_same_read_gets_uvicorns_400_after_the_token() -> None:
    """uvicorn's answer to the POST would come from a task the 400 overtakes (it closes the connection
    first); the listener answers the POST inside the parser callback, so it comes before the 400."""
    (theirs, _), (ours, _) = both(TOKEN_POST + b"\x00\x01 not a request\r\n\r\n")
    assert theirs.startswith(b"HTTP/1.1 400 Bad Request")
    assert ours.startswith(b"HTTP/1.1 200 OK") and ours.endswith(theirs) and ours.count(b"HTTP/1.1") == 2


UPGRADES = [
    b"GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    b"GET /h2 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
    b"POST /t1/oauth2/v2.0/token HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nContent-Length: 3\r\n\r\na=1",
]


@pytest.mark.parametrize("data", UPGRADES)
@pytest.mark.parametrize("after_token", [False, True])
def test_upgrades_go_uvicorns_way(data: bytes, after_token: bool) -> None:
    (theirs, their_scopes), (ours, our_scopes) = both(data, before=TOKEN_POST if after_token else b"")
    assert ours == theirs and ours
    assert our_scopes == their_scopes


@pytest.mark.parametrize("request_bytes", [TOKEN_POST, ASGI_REQUESTS[0]])
def test_a_kept_alive_connection_is_idle_between_requests_and_busy_once_the_next_begins(request_bytes: bytes) -> None:
    """What uvicorn's `data_received` did first (end the keep-alive wait) the inlined one does too."""
    guard = Guard(ListenerLimits())

    async def run() -> list[int]:
        idle = []
        async with serving([], ours=True, guard=guard) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            for _ in range(2):
                writer.write(request_bytes)
                await reader.readuntil(b"}")
                await asyncio.sleep(0.05)
                idle.append(len(guard.idle))  # answered: waiting for the next request
                writer.write(request_bytes[:10])  # the next one begins
                await asyncio.sleep(0.05)
                idle.append(len(guard.idle))
                writer.write(request_bytes[10:])
                await reader.readuntil(b"}")
            writer.close()
        return idle

    assert asyncio.run(run()) == [1, 0, 1, 0]
