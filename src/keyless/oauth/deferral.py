"""Public-key work a token request may leave for later (issue 18).

The steps of the token endpoint await their public-key operations (an access token's signature, a
client assertion's verification) through `TokenEnv.defer` instead of calling them: `keyless serve`
does the operations of one turn of its event loop back to back at the turn's end
(`keyless.server.eager.Turn`, which says why that is cheaper); everyone else does them at once.
Nothing is reordered: the awaiting step goes on only with the operation's result, as after a call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

T = TypeVar("T")
__all__ = ["Deferral", "at_once"]


class Deferral(Protocol):
    """`work()`'s value (or its exception), now or later."""

    def __call__(self, work: Callable[[], T], /) -> Awaitable[T]: ...


async def at_once(work: Callable[[], T]) -> T:
    """The default `Deferral`: the work, done when awaited."""
    return work()
