"""`Turn`: a coroutine that never waits is done before `run` returns, with no task; one that waits for a
future continues in a task exactly where it stopped (values, exceptions and cancellation pass through);
work left for the end of the turn is done for every coroutine that left some, back to back, before any
of them goes on, still with no task."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

import pytest

from keyless.server.eager import Turn


def run_eagerly(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None],
                turn: Turn | None = None) -> asyncio.Task[Any] | None:
    """`Turn.run`, answering the task it adopted (None when the coroutine needed none)."""
    adopted: list[asyncio.Task[Any]] = []
    (turn or Turn()).run(loop, coro, adopted.append)
    return adopted[0] if adopted else None


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


async def test_work_left_for_later_is_done_for_every_coroutine_back_to_back_before_any_goes_on() -> None:
    loop = asyncio.get_running_loop()
    turn, trace = Turn(), []
    tasks_before = len(asyncio.all_tasks())

    def work(name: str) -> str:
        trace.append(f"work {name}")
        return name.upper()

    async def request(name: str) -> None:
        trace.append(f"start {name}")
        trace.append(f"got {await turn.later(lambda: work(name))}")

    assert run_eagerly(loop, request("a"), turn) is None
    assert run_eagerly(loop, request("b"), turn) is None
    assert trace == ["start a", "start b"]  # parked until the end of the turn, with no task
    assert len(asyncio.all_tasks()) == tasks_before
    await asyncio.sleep(0)
    assert trace == ["start a", "start b", "work a", "work b", "got A", "got B"]


async def test_later_in_a_task_is_done_at_once() -> None:
    turn = Turn()
    trace: list[str] = []

    async def in_a_task() -> str:
        value = await turn.later(lambda: trace.append("work") or "done")
        trace.append("after")
        return value

    assert await asyncio.create_task(in_a_task()) == "done"
    assert trace == ["work", "after"]


async def test_an_exception_in_later_work_is_raised_in_the_coroutine_that_asked_only() -> None:
    loop = asyncio.get_running_loop()
    turn, outcome = Turn(), []

    def fails() -> str:
        raise ValueError("no key")

    async def asks(work: Any) -> None:
        try:
            outcome.append(await turn.later(work))
        except ValueError as exc:
            outcome.append(f"refused: {exc}")

    run_eagerly(loop, asks(fails), turn)
    run_eagerly(loop, asks(lambda: "token"), turn)
    await asyncio.sleep(0)
    assert outcome == ["refused: no key", "token"]


async def test_a_coroutine_that_waits_for_a_future_after_later_work_goes_on_in_an_adopted_task() -> None:
    loop = asyncio.get_running_loop()
    turn, adopted, steps = Turn(), [], []
    drained: asyncio.Future[str] = loop.create_future()

    async def answers() -> None:
        steps.append(await turn.later(lambda: "signed"))
        steps.append(await drained)  # a paused transport's drain

    turn.run(loop, answers(), adopted.append)
    await asyncio.sleep(0)
    assert steps == ["signed"] and len(adopted) == 1
    drained.set_result("drained")
    await adopted[0]
    assert steps == ["signed", "drained"]


async def test_a_coroutine_failing_after_later_work_is_logged_and_the_others_go_on(
        caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.get_running_loop()
    turn, done = Turn(), []

    async def breaks() -> None:
        await turn.later(lambda: None)
        raise RuntimeError("after the signature")

    async def fine() -> None:
        await turn.later(lambda: None)
        done.append("answered")

    run_eagerly(loop, breaks(), turn)
    run_eagerly(loop, fine(), turn)
    with caplog.at_level(logging.ERROR, logger="keyless.server"):
        await asyncio.sleep(0)
    assert done == ["answered"]
    assert [r.getMessage() for r in caplog.records] == ["a request resumed at the end of the loop's turn failed"]


async def test_a_coroutine_stepped_inside_another_ones_step_leaves_the_outer_one_parking_too() -> None:
    """Answering a request starts the next one pipelined on its connection from inside the first one's
    step (`on_response_complete`): the first one's later work still waits for the end of the turn."""
    loop = asyncio.get_running_loop()
    turn, trace = Turn(), []

    async def pipelined() -> None:
        trace.append(f"got {await turn.later(lambda: 'second')}")

    async def first() -> None:
        run_eagerly(loop, pipelined(), turn)
        trace.append(f"got {await turn.later(lambda: 'first')}")

    run_eagerly(loop, first(), turn)
    assert trace == []
    await asyncio.sleep(0)
    assert trace == ["got second", "got first"]
