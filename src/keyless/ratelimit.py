"""The one token-bucket limiter (RFC 6819 §5.1.4.2.3; docs/security.md, "Failure throttling").

Keys are tuples of strings; each key has a bucket of `capacity` tokens that refills at
`refill_per_second` on the injected Clock (tests move a FrozenClock instead of sleeping). Callers
decide what a token stands for: the token endpoint takes one per *failed* client authentication
(keyless.oauth.ratelimit), the host agent one per request (keyless.agent), the outbox worker one per
webhook send to an endpoint (keyless.server.outbox_worker). Buckets refill on their
own, so nobody is locked out for good.

`Buckets` is the small interface a shared backend (one budget across replicas) plugs in behind;
`TokenBuckets` is the in-process one, bounded in memory: a full bucket is forgotten and at most
`max_keys` are held (the least recently used goes first).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

from keyless.clock import Clock

Key = tuple[str, ...]


class Buckets(Protocol):
    capacity: float
    rate: float

    def retry_after(self, key: Key) -> int:
        """0 when `key` holds a token; otherwise whole seconds until it does (at least 1)."""
        ...

    def full_after(self, key: Key) -> int:
        """0 when `key`'s bucket is full (nothing taken recently); otherwise whole seconds until it is."""
        ...

    def take(self, key: Key) -> None:
        """Take one token (never below zero: hammering an empty bucket does not extend the wait)."""
        ...


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    def __init__(self, clock: Clock, *, capacity: float, refill_per_second: float, max_keys: int = 100_000) -> None:
        if capacity <= 0 or refill_per_second <= 0:
            raise ValueError("a token bucket needs a positive capacity and refill rate")
        self._clock = clock
        self.capacity = capacity
        self.rate = refill_per_second
        self._buckets: OrderedDict[Key, _Bucket] = OrderedDict()
        self._max_keys = max_keys

    def _bucket(self, key: Key) -> _Bucket | None:
        bucket = self._buckets.get(key)
        if bucket is None:
            return None
        now = self._clock.now()
        elapsed = max(0.0, now - bucket.updated)  # a clock stepped back refills nothing and punishes no one
        bucket.tokens = min(self.capacity, bucket.tokens + elapsed * self.rate)
        bucket.updated = now
        if bucket.tokens >= self.capacity:
            del self._buckets[key]  # full again: forget it, so the map only holds recent takers
            return None
        return bucket

    def _seconds_until(self, key: Key, tokens: float) -> int:
        bucket = self._bucket(key)
        if bucket is None or bucket.tokens >= tokens:
            return 0
        return max(1, math.ceil((tokens - bucket.tokens) / self.rate))

    def retry_after(self, key: Key) -> int:
        if key not in self._buckets:  # nobody failed under this key lately (every token request asks, issue 18)
            return 0
        return self._seconds_until(key, 1)

    def tokens(self, key: Key) -> float:
        """How many tokens `key`'s bucket holds now (a full bucket for a key nobody took from)."""
        bucket = self._bucket(key)
        return self.capacity if bucket is None else bucket.tokens

    def full_after(self, key: Key) -> int:
        return self._seconds_until(key, self.capacity)

    def _bucket_or_full(self, key: Key) -> _Bucket:
        """`key`'s bucket, made full (and the least recently used one forgotten past `max_keys`) if absent."""
        bucket = self._bucket(key)
        if bucket is None:
            bucket = _Bucket(tokens=self.capacity, updated=self._clock.now())
            self._buckets[key] = bucket
            if len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        return bucket

    def take(self, key: Key) -> None:
        bucket = self._bucket_or_full(key)
        self._buckets.move_to_end(key)
        bucket.tokens = max(0.0, bucket.tokens - 1)

    def cap(self, key: Key, tokens: float) -> None:
        """Hold at most `tokens` in `key`'s bucket: the budget left across every replica, as a shared
        ledger reports it (keyless.store.failures), so this process refuses as soon as any would."""
        if tokens >= self.capacity:
            return
        bucket = self._bucket_or_full(key)
        bucket.tokens = max(0.0, min(bucket.tokens, tokens))

    def acquire(self, key: Key) -> int:
        """Take a token if there is one and answer 0; else the seconds to wait (nothing taken)."""
        wait = self.retry_after(key)
        if not wait:
            self.take(key)
        return wait
