"""`keyless.cache.TtlCache`: single-flight loads, a bounded stale window, and clear() that wins."""

from __future__ import annotations

import asyncio

import pytest

from keyless.cache import TtlCache
from keyless.clock import FrozenClock


class Source:
    def __init__(self) -> None:
        self.value = 1
        self.loads = 0
        self.fail = False

    async def load(self) -> int:
        self.loads += 1
        if self.fail:
            raise OSError("store down")
        return self.value


async def test_clear_during_a_load_discards_its_answer() -> None:
    clock = FrozenClock(0)
    cache: TtlCache[int] = TtlCache(clock, ttl=5)
    old_gate, loads = asyncio.Event(), []

    async def old_read() -> int:
        loads.append("old")
        await old_gate.wait()
        return 1

    async def new_read() -> int:
        loads.append("new")
        return 2

    first = asyncio.ensure_future(cache.get("k", old_read))
    await asyncio.sleep(0)
    cache.clear()  # a write happened while the old value was being read
    assert await cache.get("k", new_read) == 2  # a fresh load, not the one in flight
    old_gate.set()
    assert await first == 1  # its own caller still gets what it read ...
    assert await cache.get("k", new_read) == 2  # ... but it never overwrites the newer answer
    assert loads == ["old", "new"]


async def test_failed_load_reaches_the_caller_and_is_retried() -> None:
    clock, src = FrozenClock(0), Source()
    cache: TtlCache[int] = TtlCache(clock, ttl=5)
    src.fail = True
    with pytest.raises(OSError):
        await cache.get("k", src.load)
    src.fail = False
    assert await cache.get("k", src.load) == 1


async def test_background_refresh_failure_keeps_serving_within_grace_then_raises() -> None:
    clock, src = FrozenClock(0), Source()
    cache: TtlCache[int] = TtlCache(clock, ttl=5)
    assert await cache.get("k", src.load) == 1
    src.fail = True
    clock.advance(6)
    assert await cache.get("k", src.load) == 1  # stale, refresh fails in the background
    await asyncio.sleep(0)
    clock.advance(5)
    with pytest.raises(OSError):
        await cache.get("k", src.load)


async def test_size_is_bounded() -> None:
    clock, src = FrozenClock(0), Source()
    cache: TtlCache[int] = TtlCache(clock, ttl=5, max_entries=3)
    for key in "abcde":
        await cache.get(key, src.load)
    assert len(cache) == 3


async def test_get_fresh_reads_again_only_when_the_entry_began_before_since() -> None:
    clock, source = FrozenClock(0), Source()
    cache: TtlCache[int] = TtlCache(clock, ttl=5)
    assert await cache.get("k", source.load) == 1
    source.value = 2
    assert await cache.get_fresh("k", source.load, since=0) == 1  # read at 0: recent enough
    assert source.loads == 1
    clock.advance(0.1)
    assert await cache.get_fresh("k", source.load, since=clock.now()) == 2  # older than since: one new read
    assert await cache.get("k", source.load) == 2  # and it replaced the cached answer
    assert source.loads == 2


async def test_concurrent_get_fresh_share_one_read_and_an_older_read_never_overwrites_a_newer() -> None:
    clock = FrozenClock(0)
    cache: TtlCache[int] = TtlCache(clock, ttl=5)
    slow_gate, reads = asyncio.Event(), []

    async def slow_old() -> int:
        reads.append("old")
        await slow_gate.wait()
        return 1

    async def new() -> int:
        reads.append("new")
        await asyncio.sleep(0)
        return 2

    old = asyncio.ensure_future(cache.get("k", slow_old))
    await asyncio.sleep(0)
    clock.advance(0.1)
    fresh = await asyncio.gather(*(cache.get_fresh("k", new, since=clock.now()) for _ in range(10)))
    assert fresh == [2] * 10 and reads == ["old", "new"]
    slow_gate.set()
    assert await old == 1  # its own caller gets its answer ...
    assert await cache.get("k", new) == 2  # ... but the cache keeps the newer one
