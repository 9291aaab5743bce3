"""Token buckets for failed client authentication (RFC 6749 §2.3.1, RFC 6819 §5.1.4.2; catalog K01/K02).

Only failures take tokens, and a request is checked *before* any credential work, so a flood costs a
dictionary lookup. Buckets refill on their own: nobody can lock a client out for good by guessing.

These buckets are per process. With N replicas an attacker gets at most N times the budget, which
still bounds guessing of 256-bit secrets to nothing; a shared limiter is part of the scale-out work.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

from keyless.clock import Clock


@dataclass
class _Bucket:
    tokens: float
    updated: float


class FailureLimiter:
    def __init__(self, clock: Clock, *, capacity: float, refill_per_second: float, max_keys: int = 100_000) -> None:
        self._clock = clock
        self.capacity = capacity
        self.rate = refill_per_second
        self._buckets: OrderedDict[tuple[str, ...], _Bucket] = OrderedDict()
        self._max_keys = max_keys

    def _bucket(self, key: tuple[str, ...]) -> _Bucket | None:
        bucket = self._buckets.get(key)
        if bucket is None:
            return None
        now = self._clock.now()
        elapsed = max(0.0, now - bucket.updated)  # a clock stepped back refills nothing and punishes no one
        bucket.tokens = min(self.capacity, bucket.tokens + elapsed * self.rate)
        bucket.updated = now
        if bucket.tokens >= self.capacity:
            del self._buckets[key]  # full again: forget it, so the map only holds recent offenders
            return None
        return bucket

    def retry_after(self, key: tuple[str, ...]) -> int:
        """0 when the key may try now; otherwise whole seconds until its next token."""
        bucket = self._bucket(key)
        if bucket is None or bucket.tokens >= 1:
            return 0
        return max(1, math.ceil((1 - bucket.tokens) / self.rate))

    def failed(self, key: tuple[str, ...]) -> None:
        bucket = self._bucket(key)
        if bucket is None:
            bucket = _Bucket(tokens=self.capacity, updated=self._clock.now())
            self._buckets[key] = bucket
            if len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        self._buckets.move_to_end(key)
        bucket.tokens = max(0.0, bucket.tokens - 1)
