"""Running a coroutine's first step at once, a task only if it has to wait for I/O, and work left for
the end of the loop's turn done back to back (issue 18).

Python 3.12 has the first part built in (`asyncio.eager_task_factory`); the server supports 3.11, so
the token path does it itself: `Turn.run` steps the coroutine in the caller's callback, and when the
coroutine suspends on a future it hands the rest to a task that starts by waiting on that same future.
What the coroutine observes is what it would in a task, with two exceptions that its code must respect
(docs/architecture.md, "A token request"):

- until its first suspension there is no current task, so nothing on that stretch may need one:
  `asyncio.timeout` (and libraries built on task cancellation, such as anyio) must run in a task of
  their own, as the federated issuer-key fetch does (`keyless.oauth.federation.issuers`);
- that stretch runs in the caller's context, not a copy: it must not set context variables (nothing
  in Keyless does).

A coroutine stepped by `Turn.run` may also wait for work it leaves for the end of the loop's turn
(`Turn.later`): the turn does the work of every coroutine that left some, back to back, then steps
each of them on, still with no task. The token path makes its public-key operations that way (client
assertions' verifications, tokens' signatures: `keyless.oauth.deferral`, wired in
`keyless.server.context`); see `Turn` for why.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, Generic, TypeVar

T = TypeVar("T")
Adopt = Callable[[asyncio.Task[Any]], None]  # receives the task that finishes a coroutine which had to wait
log = logging.getLogger("keyless.server")


class _Rest:
    """The coroutine after its first suspension, as an awaitable a task can drive: it yields what
    the coroutine yielded (the future it waits on) and passes every value or exception back in."""

    __slots__ = ("_coro", "_yielded")

    def __init__(self, coro: Any, yielded: Any) -> None:
        self._coro = coro  # the coroutine's own iterator (`coro.__await__()`): send and throw
        self._yielded = yielded

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, yielded = self._coro, self._yielded
        self._coro = self._yielded = None
        while True:
            try:
                sent = yield yielded
            except BaseException as exc:  # a cancellation (or any throw) goes to the coroutine
                try:
                    yielded = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    yielded = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


async def _finish(rest: _Rest) -> Any:
    return await rest


_DONE = object()  # the coroutine finished: never a value a coroutine yields to its task


class _Later(Generic[T]):
    """What `Turn.later` hands a coroutine that `Turn.run` steps: awaiting it yields it to the turn,
    which stores the work's value (or exception) in it before stepping the coroutine on."""

    __slots__ = ("error", "value", "work")

    def __init__(self, work: Callable[[], T]) -> None:
        self.work = work
        self.value: T | None = None
        self.error: Exception | None = None

    def __await__(self) -> Generator[Any, None, T]:
        yield self
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


class _Ready(Generic[T]):
    """An awaitable that is already done: `Turn.later` awaited in a task."""

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def __await__(self) -> Generator[Any, None, T]:
        return self.value
        yield  # a generator that ends at once, never suspending its caller


class Turn:
    """The listener's driver of request coroutines (`Turn.run`), and the work they leave for the end
    of the loop's turn (`Turn.later`): one per server process, used on the event loop's thread only.

    Why the end of the turn: a P-256 signature through OpenSSL reads its whole table of precomputed
    points (~150 KB, a constant-time gather), and so evicts from the core's caches what the rest of a
    request's work uses (the interpreter's, TLS's, the kernel's). On the benchmark guest the listener
    answering a canned token cost 27 µs a request, 57 µs with 25 µs of compact CPU work added, but
    72 µs with a 25 µs P-256 signature instead, and 64 µs with the same signatures made back to back
    at the end of each turn (docs/benchmarks.md, "Session 17"). A P-256 verification gathers from the
    same table; leaving client assertions' verifications to the turn's end too gave private_key_jwt
    ES256 6-14 % more tokens a CPU-second (session 18). No answer leaves later for it: the
    answers of a turn already leave together at the start of the next
    (`keyless.held_writes.HeadWithBody.write_soon`).

    Only a coroutine that `run` is stepping leaves its work for later; code in a task (a request that
    waited for a cache miss or a `jti` commit, the ASGI path) has its work done at once."""

    __slots__ = ("_parked", "_stepping")

    def __init__(self) -> None:
        self._parked: list[tuple[asyncio.AbstractEventLoop, Any, _Later[Any], Adopt]] = []
        self._stepping = False

    def later(self, work: Callable[[], T]) -> Awaitable[T]:
        """`work()`'s value: at the end of the loop's turn when the awaiting coroutine is the one `run`
        is stepping, else at once."""
        if self._stepping:
            return _Later(work)
        return _Ready(work())

    def run(self, loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None], adopt: Adopt) -> None:
        """Step `coro` now, in the caller's callback. When it waits on a future, the rest goes on in a
        task, which `adopt` receives; when it waits on `later` work, it goes on at the end of the turn.
        An exception it raises before either propagates to the caller."""
        # `next` over the coroutine's iterator, here and when it is stepped on, not `send`: a coroutine
        # that returns ends the iteration without an exception, where `send` raises a StopIteration to
        # catch (an object allocated, raised and unwound for every token).
        self._step(loop, coro.__await__(), adopt)

    def _step(self, loop: asyncio.AbstractEventLoop, steps: Any, adopt: Adopt) -> None:
        # A step may start another inside it (an answer starts the request pipelined behind it on the
        # connection): the outer one is still being stepped when the inner one returns.
        outer, self._stepping = self._stepping, True
        try:
            yielded = next(steps, _DONE)
        finally:
            self._stepping = outer
        if yielded is _DONE:
            return
        if type(yielded) is _Later:
            if not self._parked:
                loop.call_soon(self._settle)
            self._parked.append((loop, steps, yielded, adopt))
            return
        adopt(loop.create_task(_finish(_Rest(steps, yielded))))

    def _settle(self) -> None:
        parked, self._parked = self._parked, []
        for _, _, later, _ in parked:  # the work back to back: what the turn is for
            try:
                later.value = later.work()
            except Exception as exc:  # raised in the coroutine that asked, as a direct call would be
                later.error = exc
        for loop, steps, _, adopt in parked:
            try:
                self._step(loop, steps, adopt)
            except Exception:  # the others go on; a task's exception would reach the loop's handler
                log.exception("a request resumed at the end of the loop's turn failed",
                              extra={"event": "server_error"})
