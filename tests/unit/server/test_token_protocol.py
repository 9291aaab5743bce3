"""The listener's own token path (`keyless.server.token_protocol`), in a real uvicorn server on loopback:
what the ASGI path gave a token POST is still there below it — request order on a pipelined
connection, the JSON 500 with a correlation id for an unexpected error (catalog M04) on a connection
that stays usable, uvicorn's path for every other request and for the vault's port.

The token service is a stand-in here (it records what it was given, or fails on purpose: an
unexpected error cannot be provoked from outside a real one); tests/integration/server/
test_token_protocol.py drives the real server."""

from __future__ import annotations

import asyncio
import logging
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
from keyless.server.observe import REQUEST_SECONDS, RouteObserver
from keyless.server.token_protocol import token_protocol
from tests.support.loopback import trickle

TOKEN = b"POST /t1/oauth2/v2.0/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"


class Service:
    """Answers every token request with its body echoed, or raises when the body says so."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, TokenHttpRequest]] = []

    async def handle(self, tenant: str, http: TokenHttpRequest) -> TokenResult:
        self.seen.append((tenant, http))
        if http.body == b"boom":
            raise RuntimeError("an unexpected failure, with a secret: s3cret")
        await asyncio.sleep(0)
        return TokenResult(status=200, body={"echo": http.body.decode(), "too_large": http.body_too_large})


async def _asgi(scope: dict[str, Any], receive: Callable[[], Awaitable[Any]],
                send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
    """Everything the token path does not take: a slow answer for /slow, an answer before the body for
    /early, else which path ASGI saw."""
    if scope["type"] != "http":
        return
    more = scope["path"] != "/early"  # /early answers before reading the body (a refusal's shape)
    while more:
        more = (await receive()).get("more_body", False)
    if scope["path"] == "/slow":
        await asyncio.sleep(0.3)
    body = orjson.dumps({"asgi": scope["method"] + " " + scope["path"]})
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


@asynccontextmanager
async def serving(service: Service, *, vault: bool = False, limits: ListenerLimits | None = None,
                  guard: Guard | None = None) -> AsyncIterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    settings = SimpleNamespace(vault_enabled=vault, vault_port=port if vault else 0)
    ctx: Any = SimpleNamespace(tokens=service, trusted_proxies=(), settings=settings, turn=Turn())
    limits = limits or ListenerLimits()
    protocol = token_protocol(ctx, guard or Guard(limits), RouteObserver("main", access_log=False))
    config = uvicorn.Config(_asgi, http=protocol, lifespan="off", access_log=False, log_level="warning",
                            **limits.uvicorn_options())
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        await task


async def exchange(port: int, data: bytes, answers: int) -> list[tuple[int, dict[bytes, bytes], Any]]:
    """Send `data` in one write and read `answers` responses (status, headers, JSON body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    out = []
    try:
        for _ in range(answers):
            status = int((await reader.readline()).split()[1])
            headers: dict[bytes, bytes] = {}
            while (line := await reader.readline()) != b"\r\n":
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers[b"content-length"]))
            out.append((status, headers, orjson.loads(body)))
    finally:
        writer.close()
    return out


def token_post(body: bytes, extra: bytes = b"") -> bytes:
    return TOKEN + b"Content-Length: %d\r\n" % len(body) + extra + b"\r\n" + body


def test_a_pipelined_token_request_waits_for_the_request_before_it() -> None:
    """HTTP/1.1 answers in request order (RFC 9112 §9.3.2): a token POST queued behind a slow request
    on the same connection is answered after it, and a request behind it after it."""
    service = Service()

    async def run() -> list[tuple[int, dict[bytes, bytes], Any]]:
        async with serving(service) as port:
            data = b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n" + token_post(b"a=1") + \
                b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n" + token_post(b"a=2")
            return await exchange(port, data, 4)

    answers = asyncio.run(run())
    assert [a[2] for a in answers] == [{"asgi": "GET /slow"}, {"echo": "a=1", "too_large": False},
                                       {"asgi": "GET /after"}, {"echo": "a=2", "too_large": False}]
    assert [tenant for tenant, _ in service.seen] == ["t1", "t1"]
    assert answers[1][1][b"cache-control"] == b"no-store" and b"date" in answers[1][1]


def test_an_unexpected_error_is_a_json_500_with_a_correlation_id(caplog: pytest.LogCaptureFixture) -> None:
    service = Service()

    async def run() -> list[tuple[int, dict[bytes, bytes], Any]]:
        async with serving(service) as port:
            return await exchange(port, token_post(b"boom") + token_post(b"a=1"), 2)

    with caplog.at_level(logging.ERROR, logger="keyless.server"):
        (status, _, body), after = asyncio.run(run())
    assert status == 500
    assert set(body) == {"error", "error_description", "correlation_id"} and body["error"] == "server_error"
    assert "s3cret" not in orjson.dumps(body).decode()
    logged = [r for r in caplog.records if getattr(r, "correlation_id", None) == body["correlation_id"]]
    assert len(logged) == 1 and logged[0].exc_info is not None  # the traceback is in the log only
    assert after[0] == 200  # the connection is still served


def test_connection_close_and_http_1_0_end_the_connection_after_the_answer() -> None:
    async def run(request: bytes) -> tuple[dict[bytes, bytes], bytes]:
        async with serving(Service()) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            raw = await asyncio.wait_for(reader.read(), 5)  # returns only once the server closes
            writer.close()
        head, _, _ = raw.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")[1:]
        return {k.lower(): v.strip() for k, _, v in (ln.partition(b":") for ln in lines)}, raw

    headers, raw = asyncio.run(run(token_post(b"a=1", b"Connection: close\r\n")))
    assert headers[b"connection"] == b"close" and raw.startswith(b"HTTP/1.1 200")
    headers, raw = asyncio.run(run(token_post(b"a=1").replace(b"HTTP/1.1", b"HTTP/1.0", 1)))
    assert headers[b"connection"] == b"close" and raw.startswith(b"HTTP/1.1 200")


def test_a_body_over_the_cap_is_not_buffered_and_the_service_refuses_it() -> None:
    service = Service()

    async def run() -> list[tuple[int, dict[bytes, bytes], Any]]:
        async with serving(service) as port:
            declared = TOKEN + b"Content-Length: 40000\r\n\r\n"  # no body sent at all: answered at once
            return await exchange(port, declared, 1)

    answers = asyncio.run(run())
    assert answers[0][2] == {"echo": "", "too_large": True}

    service = Service()

    async def streamed() -> list[tuple[int, dict[bytes, bytes], Any]]:
        async with serving(service) as port:
            chunk = b"a" * 20000
            chunked = TOKEN + b"Transfer-Encoding: chunked\r\n\r\n" + (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 2
            return await exchange(port, chunked, 1)  # the second chunk passes 32 KiB: answered then

    answers = asyncio.run(streamed())
    assert answers[0][2] == {"echo": "", "too_large": True}


def test_a_client_leaving_mid_body_gets_nothing_processed() -> None:
    service = Service()

    async def run() -> None:
        async with serving(service) as port:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(TOKEN + b"Content-Length: 100\r\n\r\ngrant_type=client_credentials")
            await writer.drain()
            writer.close()
            await asyncio.sleep(0.2)

    asyncio.run(run())
    assert service.seen == []


def test_other_methods_paths_and_the_vault_port_take_uvicorn_s_path() -> None:
    service = Service()

    async def run(vault: bool) -> list[Any]:
        async with serving(service, vault=vault) as port:
            data = b"GET /t1/oauth2/v2.0/token HTTP/1.1\r\nHost: x\r\n\r\n" + token_post(b"a=1").replace(
                b"/t1/oauth2/v2.0/token", b"/t1/oauth2/v2.0/tokens", 1) + token_post(b"a=2")
            return [a[2] for a in await exchange(port, data, 3)]

    assert asyncio.run(run(vault=False)) == [{"asgi": "GET /t1/oauth2/v2.0/token"},
                                             {"asgi": "POST /t1/oauth2/v2.0/tokens"},
                                             {"echo": "a=2", "too_large": False}]
    assert asyncio.run(run(vault=True))[2] == {"asgi": "POST /t1/oauth2/v2.0/token"}  # the vault's own port


def test_token_requests_are_timed_under_their_route_template() -> None:
    count = sum(s.value for s in REQUEST_SECONDS.collect()[0].samples
                if s.name.endswith("_count") and s.labels.get("route") == "/{tenant}/oauth2/token")

    async def run() -> None:
        async with serving(Service()) as port:
            await exchange(port, token_post(b"a=1").replace(b"/oauth2/v2.0/token", b"/oauth2/token", 1), 1)

    asyncio.run(run())
    after = sum(s.value for s in REQUEST_SECONDS.collect()[0].samples
                if s.name.endswith("_count") and s.labels.get("route") == "/{tenant}/oauth2/token")
    assert after == count + 1


@pytest.mark.parametrize("path", [b"/t1/oauth2/v2.0/token", b"/early"])
def test_a_connection_answered_before_its_body_ended_still_closes_when_idle(path: bytes) -> None:
    """An answer sent before the body was read (over the cap) leaves the body deadline running; once
    the body has ended, the keep-alive wait starts, so the connection cannot be held open for free
    (the token path and uvicorn's alike)."""
    limits = ListenerLimits(keep_alive_timeout=0.3, header_timeout=5, body_timeout=5)

    async def run() -> tuple[bytes, float]:
        async with serving(Service(), limits=limits) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            head = TOKEN.replace(b"/t1/oauth2/v2.0/token", path, 1) + b"Content-Length: 40000\r\n\r\n"
            writer.write(head)
            first = await reader.readuntil(b"\r\n\r\n")  # answered at once
            writer.write(b"a" * 40000)
            await writer.drain()
            started = asyncio.get_running_loop().time()
            await asyncio.wait_for(reader.read(), 3)  # EOF: the server closed the idle connection
            elapsed = asyncio.get_running_loop().time() - started
            writer.close()
            return first, elapsed

    first, elapsed = asyncio.run(run())
    assert first.startswith(b"HTTP/1.1 200") and elapsed < 2.5


class AnswersAtOnce(Service):
    """A token service whose reads all hit the caches: it never waits, so the listener answers inside
    the parser callback that completed the request (keyless.server.eager)."""

    async def handle(self, tenant: str, http: TokenHttpRequest) -> TokenResult:
        self.seen.append((tenant, http))
        return TokenResult(status=200, body={"echo": http.body.decode(), "too_large": http.body_too_large})


@pytest.mark.parametrize("rest", [b"POST /t1/oauth2/v2.0/to",  # the next request's head, cut short
                                  token_post(b"a=2")[:-2]])  # its head whole, its body cut short
def test_slowloris_behind_a_request_answered_at_once_still_meets_its_deadline(rest: bytes) -> None:
    """A request answered inside the parser callback must not mark the connection idle while the same
    read still holds the next request: that request's head and body deadlines run as usual, even when
    the client trickles a byte now and then (docs/security.md, "Slow and idle clients")."""
    limits = ListenerLimits(keep_alive_timeout=30, header_timeout=0.6, body_timeout=0.6)

    async def run() -> tuple[bytes, float]:
        async with serving(AnswersAtOnce(), limits=limits) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(token_post(b"a=1") + rest)
            first = await reader.readuntil(b"}")
            elapsed = await trickle(reader, writer, b"x" if rest.endswith(b"to") else b"a")
            writer.close()
            return first, elapsed

    first, elapsed = asyncio.run(run())
    assert first.startswith(b"HTTP/1.1 200") and b'"echo":"a=1"' in first
    assert elapsed < 1.5  # the 0.6 s deadline, not the 30 s keep-alive wait nor never


def test_pipelined_requests_answered_at_once_come_back_in_order() -> None:
    service = AnswersAtOnce()

    async def run() -> list[tuple[int, dict[bytes, bytes], Any]]:
        async with serving(service) as port:
            return await exchange(port, token_post(b"a=1") + token_post(b"a=2") + token_post(b"a=3"), 3)

    assert [a[2]["echo"] for a in asyncio.run(run())] == ["a=1", "a=2", "a=3"]


def test_a_request_pipelined_behind_connection_close_is_never_processed() -> None:
    """Also when the first is answered inside the parser callback: the parser refuses what follows a
    `Connection: close` message, so the second request never reaches the token service."""
    service = AnswersAtOnce()

    async def run() -> list[tuple[int, dict[bytes, bytes], Any]]:
        async with serving(service) as port:
            return await exchange(port, token_post(b"a=1", b"Connection: close\r\n") + token_post(b"a=2"), 1)

    answers = asyncio.run(run())
    assert [a[2]["echo"] for a in answers] == ["a=1"]
    assert [http.body for _, http in service.seen] == [b"a=1"]


class EndsIdleConnectionsNext(AnswersAtOnce):
    """Answers at once and asks the loop to end every idle connection before anything else it had not
    yet started: what a graceful shutdown, or a new connection over `max_connections`, does to a
    connection that has just been answered."""

    def __init__(self, guard: Guard) -> None:
        super().__init__()
        self.guard = guard

    async def handle(self, tenant: str, http: TokenHttpRequest) -> TokenResult:
        asyncio.get_running_loop().call_soon(lambda: [conn.end() for conn in list(self.guard.idle)])
        return await super().handle(tenant, http)


def test_an_answer_made_before_its_connection_is_ended_is_still_sent() -> None:
    """Answers leave at the loop's next turn (`HeadWithBody.write_soon`); a connection ended before then
    (it was idle, with its answer made) sends that answer before it closes, as when answers were sent
    at once."""
    guard = Guard(ListenerLimits())

    async def run() -> bytes:
        async with serving(EndsIdleConnectionsNext(guard), guard=guard) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(token_post(b"a=1"))
            received = await asyncio.wait_for(reader.read(), 5)  # to the end: the connection is ended
            writer.close()
            return received

    received = asyncio.run(run())
    assert received.startswith(b"HTTP/1.1 200") and received.endswith(b'{"echo":"a=1","too_large":false}')


class _Transport:
    """A connection's transport, recording what was written before it was closed."""

    def __init__(self) -> None:
        self.sent = b""
        self.closed_after = b""
        self.closing = False

    def write(self, data: bytes) -> None:
        assert not self.closing, "written after close"
        self.sent += data

    def close(self) -> None:
        self.closing = True
        self.closed_after = self.sent

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 40000) if name in ("peername", "sockname") else None

    def pause_reading(self) -> None:
        return None

    def resume_reading(self) -> None:
        return None


def test_an_answer_held_for_the_next_turn_is_sent_when_the_client_ends_its_side_in_this_turn() -> None:
    """The request and the end of the stream read in one turn: the answer made in between must reach
    the transport before it closes itself (`GuardedProtocol.eof_received`)."""

    async def run() -> _Transport:
        settings = SimpleNamespace(vault_enabled=False, vault_port=0)
        ctx: Any = SimpleNamespace(tokens=AnswersAtOnce(), trusted_proxies=(), settings=settings, turn=Turn())
        limits = ListenerLimits()
        config = uvicorn.Config(_asgi, lifespan="off", access_log=False, log_level="warning",
                                **limits.uvicorn_options())
        config.load()
        protocol_class = token_protocol(ctx, Guard(limits), RouteObserver("main", access_log=False))
        protocol = protocol_class(config=config, server_state=uvicorn.server.ServerState(), app_state={})
        transport = _Transport()
        protocol.connection_made(transport)  # type: ignore[arg-type]
        protocol.data_received(token_post(b"a=1"))
        protocol.eof_received()  # what the transport calls next, before closing itself
        transport.close()
        protocol.connection_lost(None)
        await asyncio.sleep(0)  # the turn at which the answer would otherwise have left
        return transport

    transport = asyncio.run(run())
    assert transport.closed_after.startswith(b"HTTP/1.1 200")
    assert transport.closed_after.endswith(b'{"echo":"a=1","too_large":false}')
