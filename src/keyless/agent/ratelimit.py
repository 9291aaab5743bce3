"""Per-caller request budget (catalog F15): a caller that floods the agent gets 429 with Retry-After;
the server is never amplified anyway (cache and single flight), this keeps one caller from
starving the others. The buckets are the project's one token-bucket limiter (keyless.ratelimit),
here one token per request."""

from __future__ import annotations

from keyless.clock import Clock
from keyless.ratelimit import Key, TokenBuckets


class CallerLimiter:
    def __init__(self, rate: float, burst: float, clock: Clock, max_callers: int = 10_000) -> None:
        self.rate = rate
        self.burst = burst
        # A rate (or burst) of 0 disables the limit.
        self._buckets = (TokenBuckets(clock, capacity=burst, refill_per_second=rate, max_keys=max_callers)
                         if rate > 0 and burst > 0 else None)

    def allow(self, caller: Key) -> float:
        """0 when the request may go ahead, else the whole seconds to wait."""
        return 0.0 if self._buckets is None else float(self._buckets.acquire(caller))
