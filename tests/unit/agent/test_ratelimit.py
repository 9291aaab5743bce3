"""The agent's per-caller budget: the project's token-bucket limiter, one token per request, on a frozen clock."""

from __future__ import annotations

from keyless.agent.ratelimit import CallerLimiter
from keyless.clock import FrozenClock

A = ("uid", "1000")
B = ("uid", "1001")


def test_a_flooding_caller_waits_while_others_go_ahead() -> None:
    clock = FrozenClock(1_000.0)
    limiter = CallerLimiter(rate=1, burst=3, clock=clock)
    assert [limiter.allow(A) for _ in range(3)] == [0, 0, 0]
    assert limiter.allow(A) == 1
    assert limiter.allow(B) == 0  # another caller is not affected
    clock.advance(1)
    assert limiter.allow(A) == 0  # refilled: no lasting lockout
    assert limiter.allow(A) == 1


def test_refused_requests_do_not_extend_the_wait() -> None:
    clock = FrozenClock(1_000.0)
    limiter = CallerLimiter(rate=0.5, burst=1, clock=clock)
    assert limiter.allow(A) == 0
    assert all(limiter.allow(A) == 2 for _ in range(50))
    clock.advance(2)
    assert limiter.allow(A) == 0


def test_zero_rate_disables() -> None:
    limiter = CallerLimiter(rate=0, burst=0, clock=FrozenClock(0.0))
    assert all(limiter.allow(A) == 0 for _ in range(1000))
