"""The token POST and the vault read answered inside the listener's HTTP protocol, below ASGI (issue 18).

Under uvicorn a request costs a scope dict, a `RequestResponseCycle` with its `asyncio.Event`, ASGI
receive/send message dicts, the request-timing and error-shield wrappers with their closures, and two
`transport.write` calls (two TLS records, two `send()`s): about a third of a client-secret ES256
token's CPU in the profile (docs/benchmarks.md). `TokenProtocol` is the server's `GuardedProtocol`
(same deadlines and counts) that recognises `POST /{tenant}/oauth2[/v2.0]/token` once its head is
parsed, collects the body itself under `MAX_BODY`, reads the headers in one pass (`routes.token.TokenHead`,
as the ASGI handler does), awaits the token service, and writes the answer as one piece whose
status line and fixed headers are encoded once per status and Date (`_head`), sent with the other
answers of the loop's turn (`held_writes.HeadWithBody.write_soon`). Nor does it build uvicorn's ASGI scope
for such a request (`on_message_begin`).

What the ASGI path gave is kept here, each in the same place in the request's life:
- the route match is `routes.token.token_tenant` on the percent-decoded path, as uvicorn decodes it;
- the body cap: a declared Content-Length over `MAX_BODY` or a body passing it is not buffered, and
  the service refuses it (sign-in record included), as soon as it is known;
- a client that leaves before its body is complete gets nothing processed;
- keep-alive, `Connection: close`, HTTP/1.0 and pipelining: a token request parsed while an earlier
  request is in flight waits in uvicorn's own pipeline queue and starts when that one completes;
  reading pauses meanwhile, and a response waits for a paused transport to drain (flow control);
- the concurrency limit (503), `Expect: 100-continue` and upgrades: such requests take uvicorn's path;
- the request-timing histogram and the access log (`keyless.server.observe.record`);
- an unexpected exception: the log, and a JSON 500 with a correlation id (catalog M04), never a
  dropped connection;
- graceful shutdown: the work is a task in uvicorn's task set, and a shutdown during a request ends
  the connection after its answer.

On the vault's port a `GET` without a body (a secret read, a listing) is answered the same way by the
vault API's own `answer` (`keyless.server.vault.request`: the same checks and the same bytes as its
ASGI path, which a vault read paid ~a quarter of its CPU for). Every other request goes through
uvicorn and the ASGI app.
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.parse
import uuid
from collections.abc import Mapping
from typing import ClassVar, cast

import httptools
import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE

from keyless.listen import Guard, GuardedProtocol
from keyless.oauth.request import MAX_BODY
from keyless.oauth.service import NO_STORE
from keyless.server.context import ServerContext
from keyless.server.observe import RouteObserver
from keyless.server.routes import token
from keyless.server.vault.app import VaultApi
from keyless.server.vault.request import VaultRequest, VaultResponse

log = logging.getLogger("keyless.server")


class _Unused:
    """uvicorn's `connection_lost` wakes the cycle's event; a token cycle has no waiter to wake."""

    @staticmethod
    def set() -> None:
        return None


class OwnCycle:
    """A request this protocol answers itself, on its way through (what uvicorn's protocol reads of a
    cycle: `response_complete`, `keep_alive`, `disconnected`, `message_event`)."""

    __slots__ = ("complete", "disconnected", "keep_alive", "ready", "response_complete", "running", "started_at",
                 "too_large")
    message_event: ClassVar[_Unused] = _Unused()

    def __init__(self, keep_alive: bool) -> None:
        self.keep_alive = keep_alive
        self.started_at = time.perf_counter()
        self.too_large = False
        self.ready = False  # no earlier request on the connection is still in flight
        self.complete = False  # the whole body is here
        self.running = False
        self.response_complete = False
        self.disconnected = False


class TokenCycle(OwnCycle):
    """A token POST."""

    __slots__ = ("body", "head", "query", "template", "tenant")

    def __init__(self, tenant: str, template: str, query: bytes, head: token.TokenHead, keep_alive: bool) -> None:
        # every field set here, not through OwnCycle.__init__: one Python frame less on every token
        self.tenant = tenant
        self.template = template
        self.head = head
        self.query = query
        self.body = b""
        self.too_large = head.too_large
        self.keep_alive = keep_alive
        self.started_at = time.perf_counter()
        self.ready = self.complete = self.running = self.response_complete = self.disconnected = False


class VaultRead(OwnCycle):
    """A `GET` without a body on the vault's port."""

    __slots__ = ("request",)

    def __init__(self, request: VaultRequest, keep_alive: bool) -> None:
        super().__init__(keep_alive)
        self.request = request


_ROUTES: dict[tuple[str, bytes], tuple[str, str, bytes]] = {}  # (root path, URL) -> tenant, template, query


def _token_route(root_path: str, url: bytes) -> tuple[str, str, bytes] | None:
    """(tenant, route template, query) when `url` is a token endpoint's, as uvicorn would decode its
    path for the ASGI scope; else None. A client sends the same URL every time, so a match (a pure
    function of the URL) is remembered, 256 at most; a URL that does not match is never remembered."""
    key = (root_path, url)
    route = _ROUTES.get(key)
    if route is None:
        parsed = httptools.parse_url(url)
        path = parsed.path.decode("ascii")
        if "%" in path:
            path = urllib.parse.unquote(path)
        match = token.token_tenant(root_path + path)
        if match is None:
            return None
        if len(_ROUTES) >= 256:
            _ROUTES.clear()
        route = _ROUTES[key] = (match[0], match[1], parsed.query or b"")
    return route


class TokenProtocol(GuardedProtocol):
    """`GuardedProtocol` plus the token POST path above; `token_protocol()` binds it to one server."""

    ctx: ClassVar[ServerContext]
    vault_port: ClassVar[int | None]
    observer: ClassVar[RouteObserver]
    vault: ClassVar[tuple[VaultApi, RouteObserver] | None] = None  # the vault API and its surface's observer
    _express = False  # this connection may take the token path (it is not on the vault's port)
    _vault_reads = False  # this connection is on the vault's port and may take the vault read path

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        on_vault_port = self.vault_port is not None and self.server is not None and self.server[1] == self.vault_port
        self._express = not on_vault_port
        self._vault_reads = on_vault_port and self.vault is not None

    def on_message_begin(self) -> None:
        """uvicorn's, less the ASGI scope: a dict of ten entries and a copy of the app state built for
        every request, which a token POST never reads. It is built when the head is complete and the
        request takes uvicorn's path (`_scope`); nothing reads it before (an upgrade is handed over
        only after `on_headers_complete`)."""
        self.url = b""
        self.expect_100_continue = False
        self.headers = []
        self.scope = None  # type: ignore[assignment]  # never a stale one from the request before
        self._began()

    def _scope(self) -> None:
        """The scope uvicorn's `on_message_begin` builds (its `on_headers_complete` adds the rest)."""
        self.scope = {  # type: ignore[typeddict-item]
            "type": "http",
            "asgi": {"version": self.asgi_version, "spec_version": "2.3"},
            "http_version": "1.1",
            "server": self.server,
            "client": self.client,
            "scheme": self.scheme,  # type: ignore[typeddict-item]
            "root_path": self.root_path,
            "headers": self.headers,
            "state": self.app_state.copy(),
        }

    def on_headers_complete(self) -> None:
        cycle: OwnCycle | None = (self._token_cycle() if self._express
                                  else self._vault_read() if self._vault_reads else None)
        if cycle is None:
            self._scope()
            super().on_headers_complete()
            return
        self._arm(self.guard.limits.body_timeout)
        existing = self.cycle
        self.cycle = cycle  # type: ignore[assignment]
        if existing is None or existing.response_complete:
            cycle.ready = True
        else:  # pipelined behind a request still in flight: uvicorn's queue, uvicorn's order
            self.flow.pause_reading()
            self.pipeline.appendleft((cycle, self.app))  # type: ignore[arg-type]
        if cycle.too_large:
            self._maybe_run(cycle)

    def _token_cycle(self) -> TokenCycle | None:
        """A cycle for a token POST this protocol may answer itself, else None (uvicorn's path)."""
        parser = self.parser
        if parser.get_method() != b"POST" or self.expect_100_continue or parser.should_upgrade():
            return None
        limit = self.limit_concurrency
        if limit is not None and (len(self.connections) >= limit or len(self.tasks) >= limit):
            return None  # uvicorn answers 503
        route = _token_route(self.root_path, self.url)
        if route is None:
            return None
        keep_alive = parser.get_http_version() != "1.0" and parser.should_keep_alive()
        return TokenCycle(*route, token.TokenHead(self.headers), keep_alive)

    def _vault_read(self) -> VaultRead | None:
        """A cycle for a vault `GET` without a body, else None (uvicorn's path: every other method, a
        body, `Expect`, an upgrade, the concurrency limit, and a URL uvicorn would refuse with a 400)."""
        parser = self.parser
        if parser.get_method() != b"GET" or self.expect_100_continue or parser.should_upgrade():
            return None
        limit = self.limit_concurrency
        if limit is not None and (len(self.connections) >= limit or len(self.tasks) >= limit):
            return None
        for name, value in self.headers:
            if name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
                return None
        try:
            parsed = httptools.parse_url(self.url)
            raw_path = self.root_path.encode("ascii") + parsed.path
            raw_path.decode("ascii")  # uvicorn's 400 otherwise: its path
        except (httptools.HttpParserInvalidURLError, UnicodeError):
            return None
        keep_alive = parser.get_http_version() != "1.0" and parser.should_keep_alive()
        return VaultRead(VaultRequest("GET", raw_path, parsed.query or b"", self.headers), keep_alive)

    def on_body(self, body: bytes) -> None:
        cycle: object = self.cycle
        if type(cycle) is not TokenCycle:
            if type(cycle) is not VaultRead:  # a vault read has no body: httptools never calls this for one
                super().on_body(body)
            return
        if cycle.too_large or cycle.running:
            return
        if len(cycle.body) + len(body) > MAX_BODY:
            cycle.too_large, cycle.body = True, b""
            self._maybe_run(cycle)
            return
        cycle.body += body

    def on_message_complete(self) -> None:
        cycle: object = self.cycle
        if type(cycle) is not TokenCycle and type(cycle) is not VaultRead:
            super().on_message_complete()
            return
        self._disarm()
        cycle.complete = True
        if cycle.response_complete:  # answered before the body ended (over the cap): now idle
            self._rest()
        else:  # answered now (its `on_response_complete` rests the connection), or later
            self._maybe_run(cycle)

    def _start_asgi_task(self, cycle: object, app: object) -> None:
        if type(cycle) is TokenCycle or type(cycle) is VaultRead:  # its turn in the pipeline
            cycle.ready = True
            self._maybe_run(cycle)
            return
        super()._start_asgi_task(cycle, app)  # type: ignore[arg-type]

    def _maybe_run(self, cycle: OwnCycle) -> None:
        """Serve `cycle` now, in this parser callback: a token whose reads all hit the caches never
        waits for I/O, so it needs no task (a task per request was ~5 % of a token's CPU: its creation,
        the loop's turn to step it, its context); its public-key operations (a client assertion's
        verification, the token's signature) are made at the end of the loop's turn, back to back with
        the turn's others, and the request goes on from there (`eager.Turn`). Only a request that waits
        for I/O (a cache miss, a replay-store commit, a paused transport) continues in a task in
        uvicorn's set, from where it stopped, as Python 3.12's eager tasks do."""
        if cycle.ready and not cycle.running and (cycle.complete or cycle.too_large):
            cycle.running = True
            work = self._serve(cycle) if type(cycle) is TokenCycle else self._serve_vault(cast(VaultRead, cycle))
            self.ctx.turn.run(self.loop, work, self._adopt)

    def _adopt(self, task: asyncio.Task[None]) -> None:
        """A request that has to wait goes on in a task of uvicorn's set (graceful shutdown waits for it)."""
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    async def _serve(self, cycle: TokenCycle) -> None:
        client = self.client
        try:
            http = token.http_request(cycle.head, cycle.query, None if cycle.too_large else cycle.body,
                                      client[0] if client else None, self.ctx)
            result, payload = await token.answer(self.ctx, cycle.tenant, http)
            status = result.status
            head = _head(status, result.headers, self.server_state.default_headers)
        except Exception:
            status, head, payload = self._server_error()
        if self.flow.write_paused and not cycle.disconnected:  # flow control
            await self.flow.drain()
        if not cycle.disconnected:
            self._write(cycle, head, payload, json_body=True)
        self.observer.record("POST", cycle.template, status, time.perf_counter() - cycle.started_at)

    async def _serve_vault(self, cycle: VaultRead) -> None:
        api, observer = cast(tuple[VaultApi, RouteObserver], self.vault)
        try:
            response = await api.answer(cycle.request)
            status, payload, json_body = response.status, response.body, False
            head = _encode(status, self.server_state.default_headers, _checked(response))
        except Exception:
            (status, head, payload), json_body = self._server_error(), True
        if self.flow.write_paused and not cycle.disconnected:
            await self.flow.drain()
        if not cycle.disconnected:
            self._write(cycle, head, payload, json_body=json_body)
        observer.record("GET", "/", status, time.perf_counter() - cycle.started_at)

    def _server_error(self) -> tuple[int, bytes, bytes]:
        """An unexpected exception: the log, and a JSON 500 with a correlation id (catalog M04), as the
        ASGI path's error shield answers."""
        correlation = uuid.uuid4().hex
        log.exception("unhandled error", extra={"event": "server_error", "correlation_id": correlation})
        payload = orjson.dumps(
            {"error": "server_error", "error_description": "internal error", "correlation_id": correlation})
        return 500, _encode(500, self.server_state.default_headers, []), payload

    def _write(self, cycle: OwnCycle, head: bytes, payload: bytes, *, json_body: bool) -> None:
        """Status line, headers and body in one write (one TLS record, one send()), at the loop's next
        turn (`HeadWithBody.write_soon`). `json_body`: `head` lacks the body's length and type (a token
        answer, a 500), added here in the same formatting."""
        closing = b"" if cycle.keep_alive else b"connection: close\r\n"
        if json_body:
            data = b"%scontent-length: %d\r\ncontent-type: application/json\r\n%s\r\n%s" % (
                head, len(payload), closing, payload)
        else:
            data = b"%s%s\r\n%s" % (head, closing, payload)
        self._writes.write_soon(data)
        cycle.response_complete = True
        if not cycle.keep_alive:
            self.transport.close()
        self.on_response_complete()


_heads: dict[int, bytes] = {}  # status -> the head of an answer with `NO_STORE` headers, for `_heads_date`
_heads_date: list[tuple[bytes, bytes]] = []


def _head(status: int, headers: Mapping[str, str], default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """The status line, uvicorn's default headers (Date) and the result's headers, as sent before the
    content length. uvicorn replaces its default-headers list when the Date changes (once a second),
    so the head of an answer with the usual `NO_STORE` headers is encoded once per status and list
    (the list kept here, so its identity cannot be reused) instead of once per answer."""
    global _heads_date
    if headers is NO_STORE:
        if default_headers is not _heads_date:
            _heads.clear()
            _heads_date = default_headers
        head = _heads.get(status)
        if head is None:
            head = _heads[status] = _encode(status, default_headers, token.header_pairs(headers))
        return head
    return _encode(status, default_headers, token.header_pairs(headers))


def _checked(response: VaultResponse) -> list[tuple[bytes, bytes]]:
    """The response's headers, refused (a RuntimeError, so a 500) where uvicorn would frame the body
    otherwise: a body not framed by its exact `content-length` (the vault API always sets it, and
    checks the one header that carries configured text, the challenge: `vault.app._json`)."""
    length = None
    for name, value in response.headers:
        if name == b"content-length":
            length = value
    if response.status in (204, 304) and length is None and not response.body:
        return response.headers
    if length is None or length != b"%d" % len(response.body):
        raise RuntimeError("a vault answer without its exact content-length")
    return response.headers


def _encode(status: int, default_headers: list[tuple[bytes, bytes]], headers: list[tuple[bytes, bytes]]) -> bytes:
    parts = [STATUS_LINE[status]]
    for name, value in default_headers:  # Date, as uvicorn sends it
        parts += (name, b": ", value, b"\r\n")
    for name, value in headers:
        parts += (name, b": ", value, b"\r\n")
    return b"".join(parts)


def token_protocol(ctx: ServerContext, guard: Guard, observer: RouteObserver,
                   vault: tuple[VaultApi, RouteObserver] | None = None) -> type[TokenProtocol]:
    """The protocol class for the server's `uvicorn.Config(http=...)`: its connections share `guard`
    and answer token POSTs with `ctx`'s token service (except on the vault's port), and, given `vault`
    (the app's `VaultApi` and the vault surface's observer), vault reads on the vault's port."""
    vault_port = ctx.settings.vault_port if ctx.settings.vault_enabled else None
    return type("TokenProtocol", (TokenProtocol,), {"guard": guard, "ctx": ctx, "vault_port": vault_port,
                                                    "observer": observer, "vault": vault})
