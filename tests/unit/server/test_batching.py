"""BatchWriter: a reader that flushes first sees every record recorded before it asked, even while a
background write of those records is still in flight (the race that made sign-in log reads flaky)."""

from __future__ import annotations

import asyncio

from keyless.server.batching import BatchWriter


async def test_flush_waits_for_the_write_in_flight() -> None:
    written: list[int] = []
    gate = asyncio.Event()

    async def slow_write(batch: list[int]) -> None:
        await gate.wait()
        written.extend(batch)

    writer: BatchWriter[int] = BatchWriter(slow_write, interval=60)
    writer.record(1)
    background = asyncio.create_task(writer.flush())  # takes the batch, then waits on the store
    await asyncio.sleep(0)
    reader = asyncio.create_task(writer.flush())  # nothing pending now, but the write is not done
    await asyncio.sleep(0.01)
    assert not reader.done()
    gate.set()
    await asyncio.gather(background, reader)
    assert written == [1]


async def test_close_writes_what_is_left() -> None:
    written: list[str] = []

    async def write(batch: list[str]) -> None:
        written.extend(batch)

    writer: BatchWriter[str] = BatchWriter(write, interval=60)
    writer.start()
    writer.record("a")
    writer.record("b")
    await writer.close()
    assert written == ["a", "b"]


async def test_close_lets_a_background_write_in_flight_finish() -> None:
    """Closing while the timer's write waits on the store: the batch is written (once), not cancelled
    half-way and lost."""
    written: list[int] = []
    gate = asyncio.Event()

    async def slow_write(batch: list[int]) -> None:
        await gate.wait()
        written.extend(batch)

    writer: BatchWriter[int] = BatchWriter(slow_write, interval=0.01)
    writer.start()
    writer.record(1)
    await asyncio.sleep(0.05)  # the background write has the batch and waits on the store
    closing = asyncio.create_task(writer.close())
    await asyncio.sleep(0.01)
    writer.record(2)
    gate.set()
    await closing
    assert written == [1, 2]
