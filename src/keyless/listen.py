"""Slow and idle clients on every listener (server, vault port, agent TCP and Unix socket).

uvicorn bounds only the idle time between requests (`timeout_keep_alive`): a client that sends one
header line every few seconds keeps its connection forever, one source may open as many connections
as the process allows (and past `limit_concurrency` every request, `/healthz` included, gets 503), and
its graceful shutdown waits for TLS close_notify from clients that never send it (30 s per connection).
`GuardedProtocol` is uvicorn's own httptools protocol plus what it lacks, in the layer that sees every
byte: a deadline for the request head, another for the body, a count per source and in total, a bound
on idle keep-alive connections (the oldest idle one makes room), and `abort()` (no TLS close
handshake) whenever the server is the one ending a connection. docs/security.md ("Slow and idle
clients") gives the numbers and why this guard was chosen over another server.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from keyless.errors import ConfigurationError
from keyless.held_writes import HeadWithBody


@dataclass(frozen=True)
class ListenerLimits:
    """What one listening process allows its clients (seconds and counts)."""

    header_timeout: float = 10.0  # from connect (or the first byte of a request) to the end of its head
    body_timeout: float = 30.0  # from the end of the head to the end of the body
    keep_alive_timeout: float = 5.0  # idle time between requests
    max_connections: int = 2000  # open connections, all sources together
    max_per_source: int = 64  # open connections from one address (one uid on a Unix socket)
    max_idle: int = 512  # idle keep-alive connections; past it the oldest idle one is closed
    shutdown_timeout: float = 5.0  # on SIGTERM: how long requests in flight may still finish

    def __post_init__(self) -> None:
        for name in ("header_timeout", "body_timeout", "keep_alive_timeout", "shutdown_timeout"):
            if not 0 < getattr(self, name) <= 3600:
                raise ConfigurationError(f"{name.replace('_', '-')} must be over 0 and at most 3600 seconds")
        for name in ("max_connections", "max_per_source", "max_idle"):
            if not 1 <= getattr(self, name) <= 1_000_000:
                raise ConfigurationError(f"{name.replace('_', '-')} must be 1-1000000")

    def uvicorn_options(self) -> dict[str, Any]:
        """The `uvicorn.Config` options these limits set (the rest is `GuardedProtocol`)."""
        return {"timeout_keep_alive": self.keep_alive_timeout, "timeout_graceful_shutdown": self.shutdown_timeout,
                "limit_concurrency": self.max_connections + 64}


class Guard:
    """The connection counts one listening process shares between its connections."""

    def __init__(self, limits: ListenerLimits) -> None:
        self.limits = limits
        self.per_source: dict[str, int] = {}
        self.open = 0
        self.idle: dict[GuardedProtocol, None] = {}  # insertion order: the oldest idle connection first
        self.refused = 0
        self.timed_out = 0

    def admit(self, conn: GuardedProtocol, source: str) -> bool:
        if self.per_source.get(source, 0) >= self.limits.max_per_source:
            self.refused += 1
            return False
        if self.open >= self.limits.max_connections:
            if not self.idle:
                self.refused += 1
                return False
            next(iter(self.idle)).end()  # an idle keep-alive connection makes room for a new one
        self.per_source[source] = self.per_source.get(source, 0) + 1
        self.open += 1
        return True

    def release(self, source: str) -> None:
        self.open -= 1
        left = self.per_source[source] - 1
        if left:
            self.per_source[source] = left
        else:
            del self.per_source[source]

    def now_idle(self, conn: GuardedProtocol) -> None:
        self.idle[conn] = None
        if len(self.idle) > self.limits.max_idle:
            next(iter(self.idle)).end()

    def busy(self, conn: GuardedProtocol) -> None:
        self.idle.pop(conn, None)


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol with deadlines and counts; `guarded()` binds it to one `Guard`."""

    guard: ClassVar[Guard]
    _source: str | None = None
    _deadline: asyncio.TimerHandle | None = None  # the connection's one timer, reused across requests
    _due: float | None = None  # loop time by which the current phase (head, body or idle) ends; None: none
    _idle = False  # the phase is the keep-alive wait between requests (its end closes without a count)
    # A request can be answered inside the parser callback that completed it (the token path,
    # keyless.server.eager), while the same read may still hold the next request: the keep-alive wait
    # then starts only once the whole read is parsed, so that request keeps its head and body deadlines.
    _parsing = False
    _rest_after_parse = False

    def source_key(self) -> str:
        """Whom the per-source cap counts: the peer address (a Unix socket's callers share one key
        unless a subclass knows better)."""
        return self.client[0] if self.client else "local"

    @property
    def admitted(self) -> bool:
        """False once the connection was refused (over a cap) or has ended."""
        return self._source is not None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._writes = HeadWithBody(transport, self.loop)
        super().connection_made(self._writes)  # type: ignore[arg-type]
        source = self.source_key()
        if not self.guard.admit(self, source):
            transport.abort()
            return
        self._source = source
        self._arm(self.guard.limits.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        if self._source is not None:
            self.guard.busy(self)
            self.guard.release(self._source)
            self._source = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """uvicorn's own, inlined rather than called (one layer less on every read; issue 18): a parse
        error gets its 400 and the connection closes, an upgrade goes to its websocket protocol or is
        refused with its warning (tests/unit/server/test_listener_fidelity.py holds the two to the
        same bytes). Its keep-alive timer is never set here (`on_response_complete`), so ending the
        keep-alive wait is ending this class's idle phase."""
        if self._source is None:
            return  # refused at connect: the abort is under way
        if self._idle:  # the keep-alive wait is over (`_unset_keepalive_if_required`)
            self._idle = False
            self._due = None
            self.guard.busy(self)
        self._parsing = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        finally:
            self._parsing = False
        if self._rest_after_parse:  # a request was answered while this read was parsed
            self._rest_after_parse = False
            self._rest()

    def eof_received(self) -> None:
        """The client ended its side (a TLS close_notify, or a FIN on plain TCP): the transport closes
        after this returns, so an answer held for the loop's next turn (`HeadWithBody.write_soon`) goes
        now. (On TLS a FIN without close_notify never gets here: uvloop treats it as a broken
        connection and closes at once, as it always did, also for an answer not yet made.)"""
        self._writes.flush()
        super().eof_received()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._began()

    def _began(self) -> None:
        if self._due is None:  # a new request on a kept-alive connection: its head has a deadline too
            self._arm(self.guard.limits.header_timeout)

    def on_headers_complete(self) -> None:
        self._arm(self.guard.limits.body_timeout)
        self._writes.hold_next = True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()
        self._rest()  # answered before the body ended (a refusal): now idle

    def on_response_complete(self) -> None:
        """uvicorn's own (count it, resume reading, start the next pipelined request), except that the
        keep-alive wait is a phase of the connection's one timer instead of a timer created and
        cancelled per response (issue 18: ~2-3 µs a request). A connection whose next request has
        already begun is not idle: that request's head deadline runs instead."""
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        else:
            self._rest()

    def _rest(self) -> None:
        """Start the keep-alive wait once the connection has nothing in hand: its request answered and
        read to the end (an answer sent before the body ended leaves the body deadline running until
        it does), nothing pipelined, still open."""
        if self._parsing:  # the rest of this read may hold the next request: decide once it is parsed
            self._rest_after_parse = True
            return
        cycle = self.cycle
        if (self._source is not None and self._due is None and not self.pipeline
                and (cycle is None or cycle.response_complete) and not self.transport.is_closing()):
            self._arm(self.timeout_keep_alive)
            self._idle = True
            self.guard.now_idle(self)

    def _unset_keepalive_if_required(self) -> None:
        """Data arrived (or the connection ended): the keep-alive wait is over."""
        if self._idle:
            self._idle = False
            self._due = None
        super()._unset_keepalive_if_required()

    def timeout_keep_alive_handler(self) -> None:
        self.end()

    def shutdown(self) -> None:
        """On SIGTERM an idle connection ends at once, without waiting for the client's close_notify."""
        if self.cycle is None or self.cycle.response_complete:
            self.end()
        else:
            super().shutdown()

    def end(self) -> None:
        """Close from the server's side now: no TLS close handshake a silent client could stall. An
        answer already made (`HeadWithBody.write_soon`) is sent first, as it was before it was held."""
        self._cancel()
        self.guard.busy(self)
        self._writes.flush()
        self.transport.abort()

    def _arm(self, seconds: float) -> None:
        """Give the current phase `seconds` from now. Setting and clearing a timer twice per request
        was 4 % of a vault read (docs/benchmarks.md), so the connection keeps one timer: it is moved
        only when the new deadline is earlier than the timer, and a timer that fires before the
        deadline re-schedules itself for the rest. A deadline is never later than asked for."""
        due = self.loop.time() + seconds
        self._due = due
        timer = self._deadline
        if timer is not None:
            if timer.when() <= due:
                return
            timer.cancel()
        self._deadline = self.loop.call_at(due, self._expired)

    def _disarm(self) -> None:
        """No deadline until the next `_arm`: the timer stays, and finds nothing due when it fires."""
        self._due = None

    def _cancel(self) -> None:
        """The connection is over: drop the timer too (it holds a reference to this connection)."""
        self._due = None
        self._idle = False
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        due = self._due
        if due is None:
            return  # the phase ended in time
        if due - self.loop.time() > 0.001:  # re-armed since: wait for what is left (timers fire to the ms)
            self._deadline = self.loop.call_at(due, self._expired)
            return
        if self._idle:  # the keep-alive wait ended: an idle connection closes, no timeout counted
            self.end()
            return
        self.guard.timed_out += 1
        self.end()


def guarded(limits: ListenerLimits, base: type[GuardedProtocol] = GuardedProtocol) -> type[GuardedProtocol]:
    """A protocol class for one `uvicorn.Config(http=...)`: every connection it accepts shares one `Guard`."""
    return type(base.__name__, (base,), {"guard": Guard(limits)})


def bound_tls_handshakes(loop: asyncio.AbstractEventLoop, seconds: float) -> None:
    """Give every TLS listener `loop` creates a handshake deadline of `seconds` (the header timeout):
    a client that connects and never finishes its TLS handshake is otherwise held for the event
    loop's default 60 s, and uvicorn has no setting for it. Plain listeners (the agent's) are left as
    they are: the handshake timeout is meaningless without TLS."""
    create_server = loop.create_server

    async def with_deadline(*args: Any, **kwargs: Any) -> asyncio.AbstractServer:
        if kwargs.get("ssl") is not None:
            kwargs.setdefault("ssl_handshake_timeout", seconds)
        return await create_server(*args, **kwargs)

    loop.create_server = with_deadline  # type: ignore[method-assign,assignment]
