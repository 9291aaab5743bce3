"""`TokenBuckets`: the one token-bucket limiter (failures at the token endpoint, requests at the agent)."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyless.clock import FrozenClock
from keyless.ratelimit import TokenBuckets

KEY = ("src", "10.0.0.1")


def limiter(capacity: float = 3, rate: float = 0.5, max_keys: int = 100_000) -> tuple[FrozenClock, TokenBuckets]:
    clock = FrozenClock(1_000.0)
    return clock, TokenBuckets(clock, capacity=capacity, refill_per_second=rate, max_keys=max_keys)


def test_unknown_key_may_try() -> None:
    _, lim = limiter()
    assert lim.retry_after(KEY) == 0


def test_bucket_drains_after_capacity_failures() -> None:
    _, lim = limiter(capacity=3)
    for _ in range(2):
        lim.take(KEY)
        assert lim.retry_after(KEY) == 0
    lim.take(KEY)
    assert lim.retry_after(KEY) == 2  # (1 - 0) / 0.5 per second


def test_retry_after_is_whole_seconds_until_the_next_token() -> None:
    clock, lim = limiter(capacity=1, rate=0.25)
    lim.take(KEY)
    assert lim.retry_after(KEY) == 4
    clock.advance(1)
    assert lim.retry_after(KEY) == 3
    clock.advance(2.5)
    assert lim.retry_after(KEY) == 1  # 0.125 token missing → rounds up, never 0 while throttled
    clock.advance(0.5)
    assert lim.retry_after(KEY) == 0


def test_refill_with_time_and_no_permanent_lockout() -> None:
    clock, lim = limiter(capacity=3, rate=0.5)
    for _ in range(50):  # hammering while throttled keeps the bucket at zero, not below
        lim.take(KEY)
    assert lim.retry_after(KEY) == 2
    clock.advance(2)
    assert lim.retry_after(KEY) == 0
    lim.take(KEY)
    assert lim.retry_after(KEY) == 2
    clock.advance(3600)
    for _ in range(2):
        lim.take(KEY)
    assert lim.retry_after(KEY) == 0  # fully refilled: the full burst is available again


def test_refill_capped_at_capacity() -> None:
    clock, lim = limiter(capacity=3, rate=10)
    lim.take(KEY)
    clock.advance(1_000_000)
    for _ in range(2):
        lim.take(KEY)
    assert lim.retry_after(KEY) == 0
    lim.take(KEY)
    assert lim.retry_after(KEY) == 1


def test_keys_are_independent() -> None:
    _, lim = limiter(capacity=1)
    lim.take(KEY)
    assert lim.retry_after(KEY) > 0
    assert lim.retry_after(("src", "10.0.0.2")) == 0
    assert lim.retry_after(("client", "t", "c")) == 0


def test_full_buckets_are_forgotten() -> None:
    clock, lim = limiter(capacity=2, rate=1)
    lim.take(KEY)
    assert len(lim._buckets) == 1
    clock.advance(1)
    assert lim.retry_after(KEY) == 0
    assert len(lim._buckets) == 0


def test_key_count_is_bounded() -> None:
    _, lim = limiter(capacity=1, max_keys=100)
    for i in range(1_000):
        lim.take(("client", "t", f"spray-{i}"))
    assert len(lim._buckets) == 100
    assert lim.retry_after(("client", "t", "spray-999")) > 0  # the newest are kept
    assert lim.retry_after(("client", "t", "spray-0")) == 0  # the oldest were dropped


def test_a_repeat_offender_is_kept_over_newer_keys() -> None:
    _, lim = limiter(capacity=100, max_keys=3)
    lim.take(KEY)
    lim.take(("a",))
    lim.take(("b",))
    lim.take(KEY)  # moves to the newest position
    lim.take(("c",))
    assert set(lim._buckets) == {("b",), KEY, ("c",)}


@given(st.lists(st.tuples(st.floats(min_value=0, max_value=10), st.booleans()), max_size=60),
       st.floats(min_value=1, max_value=20), st.floats(min_value=0.01, max_value=5))
def test_property_throttled_only_when_empty_and_bucket_bounded(
    steps: list[tuple[float, bool]], capacity: float, rate: float
) -> None:
    clock, lim = limiter(capacity=capacity, rate=rate)
    for advance, fail in steps:
        clock.advance(advance)
        if fail:
            lim.take(KEY)
        bucket = lim._buckets.get(KEY)
        wait = lim.retry_after(KEY)
        if bucket is not None:
            assert 0 <= bucket.tokens <= capacity
        assert wait >= 0
        if wait:
            later_clock, later = copy.deepcopy((clock, lim))
            later_clock.advance(wait + 1e-6)  # a hair more, for float rounding of the elapsed time
            assert later.retry_after(KEY) == 0  # waiting Retry-After seconds always suffices


@pytest.mark.parametrize(("capacity", "rate", "expected"), [(30, 0.5, 2), (100, 2, 1), (1, 0.1, 10)])
def test_first_wait_after_burst(capacity: float, rate: float, expected: int) -> None:
    _, lim = limiter(capacity=capacity, rate=rate)
    for _ in range(int(capacity)):
        lim.take(KEY)
    assert lim.retry_after(KEY) == expected


def test_wait_never_exceeds_a_full_refill() -> None:
    _, lim = limiter(capacity=30, rate=0.5)
    for _ in range(1000):
        lim.take(KEY)
        assert lim.retry_after(KEY) <= 2


def test_clock_stepping_back_does_not_lock_out() -> None:
    clock, lim = limiter(capacity=30, rate=0.5)
    lim.take(KEY)  # one failure: 29 tokens left
    clock.advance(-3600)  # NTP steps the wall clock back an hour
    assert lim.retry_after(KEY) <= 2  # never longer than a full refill


def test_full_after_is_the_time_until_nothing_is_owed() -> None:
    clock, lim = limiter(capacity=3, rate=0.5)
    assert lim.full_after(KEY) == 0
    lim.take(KEY)
    assert (lim.retry_after(KEY), lim.full_after(KEY)) == (0, 2)
    lim.take(KEY)
    lim.take(KEY)
    assert (lim.retry_after(KEY), lim.full_after(KEY)) == (2, 6)
    clock.advance(6)
    assert lim.full_after(KEY) == 0


def test_acquire_takes_only_when_a_token_is_there() -> None:
    clock, lim = limiter(capacity=2, rate=1)
    assert [lim.acquire(KEY) for _ in range(4)] == [0, 0, 1, 1]
    clock.advance(1)
    assert lim.acquire(KEY) == 0


@pytest.mark.parametrize(("capacity", "rate"), [(0, 1), (1, 0), (-1, 1)])
def test_a_bucket_that_could_never_refill_is_refused(capacity: float, rate: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        TokenBuckets(FrozenClock(0.0), capacity=capacity, refill_per_second=rate)


def test_tokens_count_what_a_bucket_holds_now() -> None:
    clock = FrozenClock(1000.0)
    buckets = TokenBuckets(clock, capacity=3, refill_per_second=0.5)
    assert buckets.tokens(("k",)) == 3  # nobody took from it: full
    buckets.take(("k",))
    buckets.take(("k",))
    assert buckets.tokens(("k",)) == 1
    clock.advance(1)
    assert buckets.tokens(("k",)) == 1.5
