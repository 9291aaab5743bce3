"""A small async TTL cache for hot reads: one load per key at a time, stale values served briefly
while a refresh runs.

Why not a library: the common async caches either stampede (every concurrent miss loads) or block
every caller on refresh; the benchmark showed 64 concurrent requests all missing at the same expiry
and queueing 64 identical queries on SQLite (p99 of 300+ ms). Here concurrent misses share one
load, and an expired entry is served for at most one more `ttl` while a single background refresh
replaces it. `clear()` drops everything, including loads already in flight, so a write in this
process is visible to the next read.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

from keyless.clock import Clock

V = TypeVar("V")


class TtlCache(Generic[V]):
    def __init__(self, clock: Clock, ttl: float, max_entries: int = 50_000) -> None:
        self._clock = clock
        self._ttl = ttl
        self._max = max_entries
        self._data: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()
        self._inflight: dict[Hashable, asyncio.Future[V]] = {}
        self._generation = 0

    def clear(self) -> None:
        self._data.clear()
        self._inflight.clear()
        self._generation += 1

    def __len__(self) -> int:
        return len(self._data)

    async def get(self, key: Hashable, load: Callable[[], Awaitable[V]]) -> V:
        now = self._clock.now()
        hit = self._data.get(key)
        if hit is not None:
            expires, value = hit
            if now < expires:
                return value
            if now < expires + self._ttl:
                self._start(key, load)  # refresh in the background; this caller need not wait
                return value
        return await asyncio.shield(self._start(key, load))

    def _start(self, key: Hashable, load: Callable[[], Awaitable[V]]) -> asyncio.Future[V]:
        pending = self._inflight.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._load(key, load, self._generation))
            pending.add_done_callback(_consume_error)
            self._inflight[key] = pending
        return pending

    async def _load(self, key: Hashable, load: Callable[[], Awaitable[V]], generation: int) -> V:
        try:
            value = await load()
        finally:
            if generation == self._generation:
                self._inflight.pop(key, None)
        if generation == self._generation:  # a clear() since the load began makes its answer stale
            self._data[key] = (self._clock.now() + self._ttl, value)
            self._data.move_to_end(key)
            if len(self._data) > self._max:
                self._data.popitem(last=False)
        return value


def _consume_error(future: asyncio.Future[Any]) -> None:
    # A background refresh that fails is retried by the next caller; mark the error as seen.
    with contextlib.suppress(asyncio.CancelledError):
        future.exception()
