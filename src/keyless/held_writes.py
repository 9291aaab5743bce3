"""What a listener's connection writes, as uvicorn sees its transport: a response's head sent with its
body, and the answers of one turn of the event loop sent together at the start of the next (issue 18).

`keyless.listen.GuardedProtocol` puts a `HeadWithBody` between uvicorn's protocol and the transport of
every connection it guards (server, vault port, agent TCP and Unix socket).
"""

from __future__ import annotations

import asyncio
from typing import Any

SOON_MAX = 64 * 1024  # bytes `HeadWithBody.write_soon` holds for the loop's next turn, at most


class HeadWithBody:
    """The connection's transport as uvicorn sees it, sending a response's head with its body.

    uvicorn writes a response's status line and headers, then its body, as two `transport.write`s: over
    TLS two records and two `send` system calls for one small response (a vault read's head and body are
    about 200 bytes each). Here the head is held, with what is written after it, until the event loop's
    next turn (`call_soon`), and sent as one write, so nothing waits longer than that: a `100 Continue`,
    a head whose body is slow to come. The answers of one turn so leave together at the start of the
    next, as the listener's own answers do (`write_soon`, which explains why; for the agent's cached
    tokens over TCP, 53-60 → 46-57 µs a request, docs/benchmarks.md "Session 19"). Past `SOON_MAX`
    held bytes a write goes at once; closing sends what is held first; aborting drops it."""

    __slots__ = ("_held", "_loop", "_transport", "hold_next")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self.hold_next = False  # set when a request's head has been read: its response's head is next

    def write(self, data: bytes) -> None:
        if self._held is not None:  # after what is held, at the next turn (at once past the bound)
            self.write_soon(data)
        elif self.hold_next and data.endswith(b"\r\n\r\n"):  # a head (the token path writes its answer whole)
            self.hold_next = False
            self._held = data
            self._loop.call_soon(self.flush)
        else:
            self.hold_next = False
            self._transport.write(data)

    def write_soon(self, data: bytes) -> None:
        """`data`, after whatever is held, sent at the event loop's next turn (`call_soon`) together with
        what else is written to this connection until then; at once when that would hold over
        `SOON_MAX` bytes (so flow control sees a pipelined flood's answers as they are made).

        Answering a token POST or a vault read inside the parser callback (`server.token_protocol`)
        and sending each answer there woke the client's side once per answer: a `send()` on a TCP
        connection runs the receiving socket's wake-up in the sender's system call, and a reader asleep
        in `epoll_wait` on another CPU costs an inter-processor interrupt. Answers made in one turn of
        the loop now leave one after the other at the start of the next, while a reader woken by
        the first is still awake (docs/benchmarks.md, "Session 8": a fifth of a client-secret token's
        CPU on the benchmark machine). An answer waits at most for the requests that arrived with
        it: the held writes go out before the loop next waits for I/O."""
        self.hold_next = False
        held = self._held
        if held is not None:
            data = held + data
        if len(data) > SOON_MAX:
            self._held = None
            self._transport.write(data)
            return
        if held is None:
            self._loop.call_soon(self.flush)
        self._held = data

    def writelines(self, data: Any) -> None:
        self.write(b"".join(data))

    def flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():  # lost meanwhile: nobody to send it to (uvloop's TCP raises)
                self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def is_closing(self) -> bool:  # asked several times a request: not through __getattr__
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
