"""Per-caller token buckets (catalog F15): a caller that floods the agent gets 429 with Retry-After;
the server is never amplified anyway (cache and single flight), this keeps one caller from
starving the others."""

from __future__ import annotations

import math
import time


class CallerLimiter:
    def __init__(self, rate: float, burst: float, max_callers: int = 10_000) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[object, list[float]] = {}
        self._max = max_callers

    def allow(self, caller: object) -> float:
        """0 when the request may go ahead, else the seconds to wait. A rate of 0 disables the limit."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        bucket = self._buckets.get(caller)
        if bucket is None:
            if len(self._buckets) >= self._max:
                self._buckets.clear()
            bucket = self._buckets[caller] = [self.burst, now]
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return 0.0
        bucket[0] = tokens
        return max(1.0, math.ceil((1.0 - tokens) / self.rate))
