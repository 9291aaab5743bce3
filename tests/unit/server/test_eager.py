"""`run_eagerly`: a coroutine that never waits is done before the call returns, with no task; one that
waits continues in a task exactly where it stopped (values, exceptions and cancellation pass through)."""

from __future__ import annotations

import asyncio

import pytest

from keyless.server.eager import run_eagerly


async def test_a_coroutine_that_never_waits_finishes_in_the_call_without_a_task() -> None:
    loop = asyncio.get_running_loop()
    done: list[str] = []
    tasks_before = len(asyncio.all_tasks())

    async def quick() -> None:
        done.append("answered")

    assert run_eagerly(loop, quick()) is None
    assert done == ["answered"]
    assert len(asyncio.all_tasks()) == tasks_before


async def test_a_coroutine_that_waits_continues_in_a_task_with_every_value_passed_back() -> None:
    loop = asyncio.get_running_loop()
    first: asyncio.Future[int] = loop.create_future()
    steps: list[object] = []

    async def waits() -> None:
        steps.append("before")
        steps.append(await first)
        await asyncio.sleep(0)  # a bare yield, too
        steps.append(await asyncio.sleep(0, result="slept"))

    task = run_eagerly(loop, waits())
    assert task is not None and steps == ["before"]
    loop.call_soon(first.set_result, 7)
    await task
    assert steps == ["before", 7, "slept"]


async def test_an_exception_after_the_first_wait_ends_the_task_with_it() -> None:
    loop = asyncio.get_running_loop()
    gate: asyncio.Future[None] = loop.create_future()

    async def fails() -> None:
        await gate
        raise ValueError("late")

    task = run_eagerly(loop, fails())
    assert task is not None
    gate.set_result(None)
    with pytest.raises(ValueError, match="late"):
        await task


async def test_cancelling_the_task_cancels_the_coroutine_where_it_waits() -> None:
    loop = asyncio.get_running_loop()
    never: asyncio.Future[None] = loop.create_future()
    cleaned: list[bool] = []

    async def waits_forever() -> None:
        try:
            await never
        finally:
            cleaned.append(True)

    task = run_eagerly(loop, waits_forever())
    assert task is not None
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == [True] and never.cancelled()


async def test_an_exception_before_any_wait_reaches_the_caller() -> None:
    async def broken() -> None:
        raise RuntimeError("at once")

    with pytest.raises(RuntimeError, match="at once"):
        run_eagerly(asyncio.get_running_loop(), broken())


async def test_a_coroutine_that_returns_a_value_without_waiting_is_done_too() -> None:
    async def valued() -> int:
        return 7

    assert run_eagerly(asyncio.get_running_loop(), valued()) is None  # type: ignore[arg-type]


async def test_a_bare_yield_to_the_loop_is_a_wait_not_the_end() -> None:
    """`asyncio.sleep(0)` suspends by yielding None: the rest runs in a task on the loop's next turn."""
    done: list[str] = []

    async def polite() -> None:
        await asyncio.sleep(0)
        done.append("after")

    task = run_eagerly(asyncio.get_running_loop(), polite())
    assert task is not None and done == []
    await task
    assert done == ["after"]
