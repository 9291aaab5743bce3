"""`keyless.gc_pause.gc_paused`: the collector is off inside, back on after the last of overlapping
bursts (concurrent requests), back on after an exception, and never switched on when someone else
had switched it off."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from keyless.gc_pause import gc_paused


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    (gc.enable if was else gc.disable)()


def test_paused_inside_and_restored_after_even_on_error() -> None:
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(ZeroDivisionError), gc_paused():
        1 / 0  # noqa: B018
    assert gc.isenabled()


async def test_overlapping_bursts_restore_it_when_the_last_ends() -> None:
    first_done, second_may_end = asyncio.Event(), asyncio.Event()
    seen: list[bool] = []

    async def first() -> None:
        with gc_paused():
            await asyncio.sleep(0)
        first_done.set()
        seen.append(gc.isenabled())  # the second burst is still running
        second_may_end.set()

    async def second() -> None:
        with gc_paused():
            await first_done.wait()
            await second_may_end.wait()

    await asyncio.gather(first(), second())
    assert seen == [False] and gc.isenabled()


def test_a_collector_someone_else_disabled_stays_disabled() -> None:
    gc.disable()
    with gc_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()
