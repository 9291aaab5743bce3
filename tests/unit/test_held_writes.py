"""`HeadWithBody`: a response's head goes out with its body, and the listener's own answers at the loop's
next turn, bounded, in order, and never lost to a connection that ends first."""

from __future__ import annotations

import asyncio

from keyless.held_writes import SOON_MAX, HeadWithBody


class _Recording:
    """What a transport was asked to send, in order (the socket below it is not the point here)."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closed = self.aborted = self.lost = False

    def is_closing(self) -> bool:
        return self.closed or self.aborted or self.lost

    def write(self, data: bytes) -> None:
        self.sent.append(data)

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


async def _wrapped() -> tuple[HeadWithBody, _Recording]:
    raw = _Recording()
    return HeadWithBody(raw, asyncio.get_running_loop()), raw  # type: ignore[arg-type]


async def test_a_head_and_its_body_are_one_write_at_the_next_turn() -> None:
    writes, raw = await _wrapped()
    writes.hold_next = True
    writes.write(HEAD)
    assert raw.sent == []
    writes.write(b"{}")
    assert raw.sent == []  # with the other answers of this turn, at the next
    await asyncio.sleep(0)
    assert raw.sent == [HEAD + b"{}"]
    writes.write(b"more")  # past the head and its turn: straight through
    assert raw.sent == [HEAD + b"{}", b"more"]


async def test_a_head_and_a_body_over_the_bound_go_at_once() -> None:
    writes, raw = await _wrapped()
    writes.hold_next = True
    writes.write(HEAD)
    body = b"x" * SOON_MAX
    writes.write(body)
    assert raw.sent == [HEAD + body]
    await asyncio.sleep(0)
    assert raw.sent == [HEAD + body]  # sent once


async def test_a_head_without_a_body_yet_goes_out_on_the_next_turn_of_the_loop() -> None:
    """`100 Continue`, or a handler slow to send its body: the head waits one loop turn, no longer."""
    writes, raw = await _wrapped()
    writes.hold_next = True
    writes.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert raw.sent == []
    await asyncio.sleep(0)
    assert raw.sent == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    writes.write(HEAD)  # the next head was not announced: not held
    assert raw.sent[-1] == HEAD


async def test_a_whole_answer_is_never_held_and_only_an_announced_head_is() -> None:
    writes, raw = await _wrapped()
    writes.hold_next = True
    writes.write(HEAD + b"{}")  # the token path's one write: status, headers and body
    assert raw.sent == [HEAD + b"{}"]
    writes.write(HEAD)  # hold_next was used up by the write before
    assert raw.sent == [HEAD + b"{}", HEAD]


async def test_close_sends_the_held_head_first_and_abort_drops_it() -> None:
    writes, raw = await _wrapped()
    writes.hold_next = True
    writes.write(HEAD)
    writes.close()
    assert raw.sent == [HEAD] and raw.closed
    writes, raw = await _wrapped()
    writes.hold_next = True
    writes.write(HEAD)
    writes.abort()
    await asyncio.sleep(0)
    assert raw.sent == [] and raw.aborted
    assert writes.get_extra_info("peername") == "info:peername"  # everything else is the transport's


async def test_an_answer_written_soon_leaves_whole_at_the_next_turn_with_the_others_of_its_turn() -> None:
    """The listener's answers (`write_soon`): held until the loop's next turn, in order, as one write."""
    writes, raw = await _wrapped()
    writes.write_soon(HEAD + b"{}")
    writes.write_soon(HEAD + b"[]")  # a pipelined request answered in the same turn
    assert raw.sent == []
    await asyncio.sleep(0)
    assert raw.sent == [HEAD + b"{}" + HEAD + b"[]"]
    await asyncio.sleep(0)
    assert raw.sent == [HEAD + b"{}" + HEAD + b"[]"]  # sent once


async def test_a_write_after_an_answer_held_for_the_next_turn_sends_it_first() -> None:
    writes, raw = await _wrapped()
    writes.write_soon(HEAD + b"{}")
    writes.hold_next = True  # uvicorn's path answers the next request: its head would be held
    writes.write(HEAD)
    writes.write(b"ok")
    assert raw.sent == []
    await asyncio.sleep(0)
    assert raw.sent == [HEAD + b"{}" + HEAD + b"ok"]  # in order, what was held first, as one write


async def test_answers_held_for_the_next_turn_are_bounded() -> None:
    """A client pipelining faster than it reads: past `SOON_MAX` bytes the answers go to the transport
    at once, where its flow control (pause_writing) sees them."""
    writes, raw = await _wrapped()
    answer = HEAD + b"x" * 1000
    count = SOON_MAX // len(answer) + 1
    for _ in range(count):
        writes.write_soon(answer)
    assert raw.sent == [answer * count]  # the one that passed the bound took the rest with it
    writes.write_soon(answer)
    assert len(raw.sent) == 1
    await asyncio.sleep(0)
    assert raw.sent == [answer * count, answer]


async def test_close_sends_an_answer_held_for_the_next_turn() -> None:
    writes, raw = await _wrapped()
    writes.write_soon(HEAD + b"{}")
    writes.close()
    assert raw.sent == [HEAD + b"{}"] and raw.closed


async def test_an_answer_held_for_a_connection_lost_meanwhile_is_dropped_quietly() -> None:
    """The client went away before the loop's next turn: nothing is written to the closed transport
    (uvloop's TCP transport raises there, an error in the loop's log for every such client)."""
    writes, raw = await _wrapped()
    writes.write_soon(HEAD + b"{}")
    raw.lost = True
    await asyncio.sleep(0)
    assert raw.sent == []
