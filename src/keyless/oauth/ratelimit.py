"""Failure throttling at the token endpoint (RFC 6749 §2.3.1, RFC 6819 §5.1.4.2.3; catalog K01/K02).

The model (docs/security.md, "Failure throttling"): failures are what is throttled, and nobody who
knows a client id can stop that client from signing in.

- Only *failed* client authentication takes tokens, from three buckets: per source address, per
  (source, claimed client id), per claimed client id.
- Before any credential work (K02), a request is refused only by its own source's buckets: the
  per-source bucket (spraying many clients) and the per-(source, client) bucket (guessing one).
- The per-client bucket never refuses a source that has no outstanding failure against that client:
  when it is empty (the client is under attack from many sources), a source with a recent failure
  against it is refused until its (source, client) bucket is full again, so every attacking source
  gets at most one guess per refill, while the client's own workloads, which do not fail, are
  verified and get their tokens as usual.

TCP source addresses cannot be forged on an established connection, so an attacker cannot spend
another address's budget. Buckets are per process behind the `Buckets` interface; sharing them
across replicas plugs in there.
"""

from __future__ import annotations

from dataclasses import dataclass

from keyless.clock import Clock
from keyless.ratelimit import Buckets, TokenBuckets

CLIENT_KEY_LIMIT = 64  # a claimed client id longer than any real one still costs one bucket, not more


@dataclass(frozen=True)
class Budget:
    burst: float
    per_second: float


class FailureThrottle:
    def __init__(self, *, by_source: Buckets, by_source_client: Buckets, by_client: Buckets) -> None:
        self._source = by_source
        self._source_client = by_source_client
        self._client = by_client

    @classmethod
    def in_process(cls, clock: Clock, *, source: Budget, source_client: Budget, client: Budget) -> FailureThrottle:
        def buckets(b: Budget) -> TokenBuckets:
            return TokenBuckets(clock, capacity=b.burst, refill_per_second=b.per_second)

        return cls(by_source=buckets(source), by_source_client=buckets(source_client), by_client=buckets(client))

    @staticmethod
    def _keys(source: str | None, tenant_id: str, client_id: str | None) -> tuple[tuple[str, ...], ...]:
        src = source or "?"
        client = (client_id or "")[:CLIENT_KEY_LIMIT]
        return ("src", src), ("src-client", src, tenant_id, client), ("client", tenant_id, client)

    def retry_after(self, source: str | None, tenant_id: str, client_id: str | None) -> int:
        """0 when the request may be verified now; otherwise whole seconds the source should wait."""
        by_source, by_pair, by_client = self._keys(source, tenant_id, client_id)
        under_attack = 0
        client_wait = self._client.retry_after(by_client)
        if client_wait:
            # The client is under attack: only sources with an outstanding failure against it wait,
            # until their pair bucket is full again or the client's bucket has a token.
            under_attack = min(self._source_client.full_after(by_pair), client_wait)
        # Each condition only clears with time, so waiting the longest of them always suffices.
        return max(self._source.retry_after(by_source), self._source_client.retry_after(by_pair), under_attack)

    def failed(self, source: str | None, tenant_id: str, client_id: str | None) -> None:
        """Record one failed client authentication against all three budgets."""
        by_source, by_pair, by_client = self._keys(source, tenant_id, client_id)
        self._source.take(by_source)
        self._source_client.take(by_pair)
        self._client.take(by_client)
