"""The listener's own vault read path (`keyless.server.token_protocol`, issue 18): a `GET` without a body
on the vault's port is answered below ASGI with the same bytes, and the vault API is handed the same
request, as on the ASGI path (uvicorn, the error shield, `VaultApi.__call__`), which every other
request still takes.

Each case runs through two real uvicorn servers on loopback with the server's protocol: one given the
vault API (the listener's path), one not (every request the ASGI way). The vault API is a stand-in
that records the `VaultRequest` it was handed and answers from it; tests/integration/server/
test_vault_*.py and tests/compat/test_keyvault_secrets.py drive the real one through the real server."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from keyless.listen import Guard, ListenerLimits
from keyless.server.app import ErrorShield
from keyless.server.eager import Turn
from keyless.server.observe import REQUEST_SECONDS, RouteObserver
from keyless.server.token_protocol import token_protocol
from keyless.server.vault.app import VaultApi, _json
from keyless.server.vault.request import VaultRequest, VaultResponse
from tests.support import loopback
from tests.support.loopback import trickle, uvicorn_on


class Api:
    """Answers with what it read of the request; `/boom` fails, `/challenge` is a 401 with a
    `WWW-Authenticate` header, `/nothing` a 204. `VaultApi.__call__` itself serves the ASGI path."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.via_asgi = 0

    async def answer(self, request: VaultRequest) -> VaultResponse:
        read = {"method": request.method, "raw_path": request.raw_path, "query": request.query,
                "params": request.params, "host": request.header(b"host"),
                "authorization": request.header(b"authorization"), "body": await request.body(1024)}
        self.seen.append(read)
        if request.raw_path == "/boom":
            raise RuntimeError("an unexpected failure")
        if request.raw_path == "/nothing":
            return VaultResponse(204, [(b"cache-control", b"no-store")])
        if request.raw_path == "/unframed":  # what the vault API never answers: a body without its length
            return VaultResponse(200, [(b"cache-control", b"no-store")], b"{}")
        body = orjson.dumps({k: v.decode() if isinstance(v, bytes) else v for k, v in read.items()})
        headers = [(b"cache-control", b"no-store")]
        if request.raw_path == "/challenge":
            headers.append((b"www-authenticate", b'Bearer authorization="https://x/t", resource="https://v"'))
        headers += [(b"content-length", b"%d" % len(body)), (b"content-type", b"application/json; charset=utf-8")]
        return VaultResponse(401 if request.raw_path == "/challenge" else 200, headers, body)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.via_asgi += 1
        await VaultApi.__call__(self, scope, receive, send)  # type: ignore[arg-type]


@asynccontextmanager
async def serving(api: Api, *, listener: bool, limits: ListenerLimits | None = None) -> AsyncIterator[int]:
    """A server whose only port is the vault's: the listener answers reads when `listener`."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    ctx: Any = SimpleNamespace(trusted_proxies=(), turn=Turn(),
                               settings=SimpleNamespace(vault_enabled=True, vault_port=port))
    limits = limits or ListenerLimits()
    observer = RouteObserver("vault", access_log=False)
    protocol = token_protocol(ctx, Guard(limits), RouteObserver("main", access_log=False),
                              (api, observer) if listener else None)  # type: ignore[arg-type]
    config = uvicorn.Config(ErrorShield(api), http=protocol, lifespan="off", access_log=False,
                            log_level="critical", **limits.uvicorn_options())
    async with uvicorn_on(config, sock) as port:
        yield port


async def converse(port: int, data: bytes) -> bytes:
    """The loopback conversation, correlation ids blanked too."""
    return re.sub(rb'"correlation_id":"[0-9a-f]{32}"', b'"correlation_id":"-"', await loopback.converse(port, data))


def both(data: bytes) -> tuple[tuple[bytes, Api], tuple[bytes, Api]]:
    """(bytes back, the API) for `data` the ASGI way and with the listener's vault path."""

    async def run(listener: bool) -> tuple[bytes, Api]:
        api = Api()
        async with serving(api, listener=listener) as port:
            return await converse(port, data), api

    return asyncio.run(run(False)), asyncio.run(run(True))


READ = (b"GET /secrets/db-password/?api-version=7.4 HTTP/1.1\r\nHost: v.vault.local:8443\r\n"
        b"Authorization: Bearer abc\r\n\r\n")
READS = [
    READ,
    b"GET /secrets/a%2Fb/v1?api-version=7.4&api-version=7.5&x=&y HTTP/1.1\r\nHost: one\r\nhost: two\r\n\r\n",
    b"GET /vaults/Other/secrets?maxresults=2&api-version=7.4 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    b"GET /secrets/x HTTP/1.0\r\nHost: x\r\n\r\n",
    b"GET /secrets/x?api-version=7.4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /challenge HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n",
    READ + b"GET /secrets/second?api-version=7.4 HTTP/1.1\r\nHost: x\r\n\r\n" + READ,  # pipelined
]


@pytest.mark.parametrize("data", READS)
def test_a_vault_read_gets_the_asgi_paths_bytes_and_request_from_the_listener(data: bytes) -> None:
    (theirs, their_api), (ours, our_api) = both(data)
    assert ours == theirs
    assert our_api.seen == their_api.seen and our_api.seen
    assert our_api.via_asgi == 0 and their_api.via_asgi == len(their_api.seen)


OTHERS = [
    b"PUT /secrets/x?api-version=7.4 HTTP/1.1\r\nHost: x\r\nContent-Length: 13\r\n\r\n{\"value\":\"v\"}",
    b"GET /secrets/x?api-version=7.4 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi",
    b"GET /secrets/x?api-version=7.4 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
    b"DELETE /secrets/x?api-version=7.4 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"HEAD /secrets/x?api-version=7.4 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /secrets/x HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
]


@pytest.mark.parametrize("data", OTHERS)
def test_every_other_vault_request_takes_the_asgi_path(data: bytes) -> None:
    (theirs, their_api), (ours, our_api) = both(data)
    assert ours == theirs
    assert our_api.seen == their_api.seen
    assert our_api.via_asgi == their_api.via_asgi == len(our_api.seen) == 1


@pytest.mark.parametrize("first", [OTHERS[0], OTHERS[1]])
def test_a_read_pipelined_behind_an_asgi_request_waits_its_turn(first: bytes) -> None:
    """A read parsed while a request on uvicorn's path is in flight waits in uvicorn's pipeline queue and
    is answered after it, in order, by the listener."""
    (theirs, their_api), (ours, our_api) = both(first + READ + first)
    assert ours == theirs and ours.count(b"HTTP/1.1 200 OK") == 3
    assert our_api.seen == their_api.seen
    assert (our_api.via_asgi, their_api.via_asgi) == (2, 3)


UPGRADE = b"GET /secrets/x HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"


@pytest.mark.parametrize("data", [b"GET /secrets/\xff HTTP/1.1\r\nHost: x\r\n\r\n", UPGRADE])
def test_what_uvicorn_refuses_or_upgrades_is_left_to_uvicorn(data: bytes) -> None:
    (theirs, their_api), (ours, our_api) = both(data)
    assert ours == theirs
    assert our_api.seen == their_api.seen


def test_an_unexpected_error_is_logged_with_the_correlation_id_the_client_gets(
        caplog: pytest.LogCaptureFixture) -> None:
    async def run() -> bytes:
        async with serving(Api(), listener=True) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n" + READ)
            received = b""
            while received.count(b"HTTP/1.1") < 2 or not received.endswith(b"}"):
                received += await asyncio.wait_for(reader.read(65536), 5)
            writer.close()
            return received

    received = asyncio.run(run())
    correlation = re.search(rb'"correlation_id":"([0-9a-f]{32})"', received)
    assert received.startswith(b"HTTP/1.1 500 Internal Server Error\r\n") and correlation is not None
    assert b"HTTP/1.1 200 OK" in received  # the connection stays usable
    logged = [r for r in caplog.records if getattr(r, "event", None) == "server_error"]
    assert [r.correlation_id for r in logged] == [correlation.group(1).decode()]  # type: ignore[attr-defined]


def test_vault_reads_are_timed_under_the_vault_surface() -> None:
    def count() -> float:
        return sum(s.value for m in REQUEST_SECONDS.collect() for s in m.samples
                   if s.name.endswith("_count") and s.labels == {"surface": "vault", "route": "/"})

    async def run() -> None:
        async with serving(Api(), listener=True) as port:
            await converse(port, READ + READ)

    before = count()
    asyncio.run(run())
    assert count() == before + 2


def test_a_body_without_its_exact_length_is_a_500_not_a_misframed_answer() -> None:
    async def run() -> bytes:
        async with serving(Api(), listener=True) as port:
            return await converse(port, b"GET /unframed HTTP/1.1\r\nHost: x\r\n\r\n")

    assert asyncio.run(run()).startswith(b"HTTP/1.1 500 Internal Server Error\r\n")


def test_a_header_value_that_could_split_the_head_is_refused_before_any_layer_sends_it() -> None:
    with pytest.raises(RuntimeError):
        _json({}, 401, {"www-authenticate": 'Bearer resource="https://v"\r\nSet-Cookie: x=1'})
    assert _json({}, 401, {"www-authenticate": "Bearer"}).headers[1] == (b"www-authenticate", b"Bearer")


@pytest.mark.parametrize("rest", [b"GET /secrets/x?api-ver",  # the next request's head, cut short
                                  b"PUT /secrets/x HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n{"])  # its body
def test_slowloris_behind_a_vault_read_answered_at_once_still_meets_its_deadline(rest: bytes) -> None:
    """A read answered inside the parser callback (the stand-in never waits) must not mark the
    connection idle while the same read still holds the next request: its head and body deadlines
    run as usual though a byte comes now and then (docs/security.md, "Slow and idle clients")."""
    limits = ListenerLimits(keep_alive_timeout=30, header_timeout=0.6, body_timeout=0.6)

    async def run() -> tuple[bytes, float]:
        async with serving(Api(), listener=True, limits=limits) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(READ + rest)
            first = await reader.readuntil(b"}")
            elapsed = await trickle(reader, writer, b"s" if rest.endswith(b"ver") else b" ")
            writer.close()
            return first, elapsed

    first, elapsed = asyncio.run(run())
    assert first.startswith(b"HTTP/1.1 200") and b'"raw_path":"/secrets/db-password/"' in first
    assert elapsed < 1.5  # the 0.6 s deadline, not the 30 s keep-alive wait nor never
