from __future__ import annotations

from keyless.agent.ratelimit import CallerLimiter


def test_per_caller_buckets() -> None:
    limiter = CallerLimiter(rate=1, burst=3)
    assert [limiter.allow("a") for _ in range(3)] == [0, 0, 0]
    assert limiter.allow("a") >= 1
    assert limiter.allow("b") == 0  # another caller is not affected


def test_zero_rate_disables() -> None:
    limiter = CallerLimiter(rate=0, burst=0)
    assert all(limiter.allow("a") == 0 for _ in range(1000))
