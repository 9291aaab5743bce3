"""`keyless.directory.answers.RecentAnswers`: a kept answer is served until its time is up or any
write is announced, never kept when a write came during its build, and the bytes kept stay bounded
(oldest dropped first)."""

from __future__ import annotations

from keyless.clock import FrozenClock
from keyless.directory.answers import RecentAnswers


def test_kept_until_its_time_is_up() -> None:
    clock = FrozenClock(1000.0)
    answers = RecentAnswers(clock, ttl=60)
    answers.put("p1", (b"body", "</next>"), answers.generation)
    clock.advance(59.9)
    assert answers.get("p1") == (b"body", "</next>")
    clock.advance(0.1)
    assert answers.get("p1") is None


def test_a_write_drops_every_answer_and_one_built_across_it_is_not_kept() -> None:
    answers = RecentAnswers(FrozenClock(1000.0), ttl=60)
    answers.put("p1", (b"a", None), answers.generation)
    before = answers.generation  # a build begins …
    answers.invalidate()  # … a write is announced meanwhile …
    answers.put("p2", (b"b", None), before)  # … so what it built is not kept
    assert answers.get("p1") is None and answers.get("p2") is None
    answers.put("p2", (b"b", None), answers.generation)
    assert answers.get("p2") == (b"b", None)


def test_the_bytes_kept_are_bounded_oldest_first() -> None:
    answers = RecentAnswers(FrozenClock(1000.0), ttl=60, max_bytes=10)
    for key in ("a", "b", "c"):
        answers.put(key, (b"xxxx", None), answers.generation)
    assert answers.get("a") is None and answers.get("b") == answers.get("c") == (b"xxxx", None)
    answers.put("huge", (b"x" * 11, None), answers.generation)  # larger than the bound: never kept
    assert answers.get("huge") is None and answers.get("c") is not None
