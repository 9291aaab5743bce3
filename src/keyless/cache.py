"""A small async TTL cache for hot reads: one load per key at a time, stale values served briefly
while a refresh runs.

Why not a library: the common async caches either stampede (every concurrent miss loads) or block
every caller on refresh; the benchmark showed 64 concurrent requests all missing at the same expiry
and queueing 64 identical queries on SQLite (p99 of 300+ ms). Here concurrent misses share one
load, and an expired entry is served for at most one more `ttl` while a single background refresh
replaces it. `clear()` drops everything, including loads already in flight, so a write in this
process is visible to the next read.

`get_fresh(key, load, since)` answers from a load that *began* at or after `since`: the cached value
if it is that recent, else a load already in flight that is, else a new one. It is how a replica
re-reads a record it may hold from before another replica's change, once, without a stampede
(docs/deployment.md, "A new credential works at once on every replica").
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from enum import Enum
from typing import Any, Generic, TypeVar

from keyless.clock import Clock

V = TypeVar("V")


class Miss(Enum):
    """What `TtlCache.fresh` answers when it holds no fresh value (None can be a cached answer)."""

    MISS = 0


class TtlCache(Generic[V]):
    def __init__(self, clock: Clock, ttl: float, max_entries: int = 50_000) -> None:
        self._clock = clock
        self._ttl = ttl
        self._max = max_entries
        self._data: OrderedDict[Hashable, tuple[float, V, float]] = OrderedDict()  # expires, value, load began
        self._inflight: dict[Hashable, tuple[asyncio.Future[V], float]] = {}
        self._generation = 0
        self.fresh_loads = 0  # loads `get_fresh` had to start (a metric: keyless_client_rereads)

    def clear(self) -> None:
        self._data.clear()
        self._inflight.clear()
        self._generation += 1

    def __len__(self) -> int:
        return len(self._data)

    def fresh(self, key: Hashable) -> V | Miss:
        """The cached value if it has not expired, else `Miss.MISS`; no load, no await. Readers on the
        token path try this first and build the loader (a closure) and the `get` coroutine only on a
        miss: six cache reads a token were ~3 % of its instructions that way (issue 18)."""
        hit = self._data.get(key)
        if hit is not None and self._clock.now() < hit[0]:
            return hit[1]
        return Miss.MISS

    async def get(self, key: Hashable, load: Callable[[], Awaitable[V]]) -> V:
        now = self._clock.now()
        hit = self._data.get(key)
        if hit is not None:
            expires, value, _ = hit
            if now < expires:
                return value
            if now < expires + self._ttl:
                self._start(key, load)  # refresh in the background; this caller need not wait
                return value
        return await asyncio.shield(self._start(key, load))

    async def get_fresh(self, key: Hashable, load: Callable[[], Awaitable[V]], since: float) -> V:
        hit = self._data.get(key)
        if hit is not None and hit[2] >= since:
            return hit[1]
        pending = self._inflight.get(key)
        if pending is None or pending[1] < since:
            self.fresh_loads += 1
        return await asyncio.shield(self._start(key, load, since))

    def _start(self, key: Hashable, load: Callable[[], Awaitable[V]],
               since: float | None = None) -> asyncio.Future[V]:
        pending = self._inflight.get(key)
        if pending is not None and (since is None or pending[1] >= since):
            return pending[0]
        began = self._clock.now()
        future = asyncio.ensure_future(self._load(key, load, self._generation, began))
        future.add_done_callback(_consume_error)
        self._inflight[key] = (future, began)
        return future

    async def _load(self, key: Hashable, load: Callable[[], Awaitable[V]], generation: int, began: float) -> V:
        try:
            value = await load()
        finally:
            pending = self._inflight.get(key)
            if generation == self._generation and pending is not None and pending[1] == began:
                self._inflight.pop(key, None)
        current = self._data.get(key)
        # A clear() since the load began makes its answer stale, and so does a newer load's answer.
        if generation == self._generation and (current is None or current[2] <= began):
            self._data[key] = (self._clock.now() + self._ttl, value, began)
            self._data.move_to_end(key)
            if len(self._data) > self._max:
                self._data.popitem(last=False)
        return value


def _consume_error(future: asyncio.Future[Any]) -> None:
    # A background refresh that fails is retried by the next caller; mark the error as seen.
    with contextlib.suppress(asyncio.CancelledError):
        future.exception()
