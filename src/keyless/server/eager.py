"""Running a coroutine's first step at once, and a task only if it has to wait (issue 18).

Python 3.12 has this built in (`asyncio.eager_task_factory`); the server supports 3.11, so the token
path does it itself: `run_eagerly` steps the coroutine in the caller's callback, and when the
coroutine suspends on a future it hands the rest to a task that starts by waiting on that same future.
What the coroutine observes is what it would in a task, with two exceptions that its code must respect
(docs/architecture.md, "A token request"):

- until its first suspension there is no current task, so nothing on that stretch may need one:
  `asyncio.timeout` (and libraries built on task cancellation, such as anyio) must run in a task of
  their own, as the federated issuer-key fetch does (`keyless.oauth.federation.issuers`);
- that stretch runs in the caller's context, not a copy: it must not set context variables (nothing
  in Keyless does).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any, TypeVar

T = TypeVar("T")


class _Rest:
    """The coroutine after its first suspension, as an awaitable a task can drive: it yields what
    the coroutine yielded (the future it waits on) and passes every value or exception back in."""

    __slots__ = ("_coro", "_yielded")

    def __init__(self, coro: Coroutine[Any, Any, T], yielded: Any) -> None:
        self._coro = coro
        self._yielded = yielded

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, yielded = self._coro, self._yielded
        self._coro = self._yielded = None  # type: ignore[assignment]
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


def run_eagerly(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None]) -> asyncio.Task[Any] | None:
    """Run `coro` until it first waits; None when it finished without waiting, else the task that
    finishes it. An exception it raises before waiting propagates to the caller, as a task's would
    reach its done callbacks (the token path's `_serve` catches its own)."""
    # `next` over the coroutine's awaitable, not `coro.send(None)`: a coroutine that returns None ends
    # the iteration without an exception, where `send` raises a StopIteration to catch (an object
    # allocated, raised and unwound for every token that never waits).
    yielded = next(coro.__await__(), _DONE)
    if yielded is _DONE:
        return None
    return loop.create_task(_finish(_Rest(coro, yielded)))


_DONE = object()  # the coroutine finished: never a value a coroutine yields to its task
