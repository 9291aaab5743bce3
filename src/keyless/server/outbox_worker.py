"""The outbox worker: every replica runs one (docs/notifications.md, "Delivery").

Each round fans new events out to their endpoints (`SqlOutbox.dispatch`), claims the deliveries that
are due (`SqlOutbox.claim`: SKIP LOCKED on PostgreSQL, so replicas share the work and never send one
delivery twice at once), starts sending each with bounded time (`WebhookSender`), and records each
outcome with its next attempt (`keyless.domain.webhooks.retry_delay`). A change in this replica
wakes the worker at once, and so does a send that ends; otherwise it polls every
`outbox_poll_interval` seconds. A delivery whose worker died mid-send is claimed again when its hold
ends, so every event is delivered at least once; the event id stays the same on every attempt, so
receivers deduplicate.

Bounds (docs/notifications.md, "Rate limits"): at most `CONCURRENCY` sends at once per replica, and
per endpoint at most `EndpointLimits.concurrency` at once and a token bucket (`keyless.ratelimit`):
a slow or flooded receiver holds only its own slots, so it cannot starve the other endpoints, and a
receiver back from an outage gets its backlog at the bucket's rate, not all at once. A claim never
takes more of an endpoint's deliveries than it may send now, so nothing claimed waits in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable

from keyless.clock import Clock
from keyless.crypto import aead
from keyless.directory.webhooks import sealing_aad
from keyless.domain.webhooks import DueDelivery, retry_delay
from keyless.ratelimit import TokenBuckets
from keyless.server.webhook_sender import TOTAL_TIMEOUT, WebhookSender
from keyless.store.outbox import DeliveryOutcome, SqlOutbox

log = logging.getLogger("keyless.webhooks")
CONCURRENCY = 8  # sends at once per replica, every endpoint together
HOLD = 6 * TOTAL_TIMEOUT  # a claim outlives any one send with a wide margin


class EndpointLimits:
    """This replica's bounds per webhook endpoint: at most `concurrency` sends at once, and one token
    per send from a bucket of `burst` that refills at `per_second` (on the injected clock)."""

    def __init__(self, clock: Clock, *, concurrency: int = 2, per_second: float = 5.0, burst: float = 20.0) -> None:
        if concurrency < 1:
            raise ValueError("an endpoint needs at least one concurrent send")
        self.concurrency = concurrency
        self._buckets = TokenBuckets(clock, capacity=burst, refill_per_second=per_second, max_keys=10_000)
        self._busy: dict[str, int] = {}

    def allowance(self, endpoint_id: str) -> int:
        """How many sends to `endpoint_id` may start now."""
        free = self.concurrency - self._busy.get(endpoint_id, 0)
        return max(0, min(free, int(self._buckets.tokens((endpoint_id,)))))

    def start(self, endpoint_id: str) -> None:
        self._buckets.take((endpoint_id,))
        self._busy[endpoint_id] = self._busy.get(endpoint_id, 0) + 1

    def done(self, endpoint_id: str) -> None:
        left = self._busy.get(endpoint_id, 1) - 1
        if left > 0:
            self._busy[endpoint_id] = left
        else:
            self._busy.pop(endpoint_id, None)

    def busy(self, endpoint_id: str) -> int:
        return self._busy.get(endpoint_id, 0)


class OutboxWorker:
    def __init__(self, outbox: SqlOutbox, sender: WebhookSender, kek: bytes, clock: Clock, *,
                 poll_interval: float = 2.0, hold: float = HOLD, limits: EndpointLimits | None = None,
                 jitter: Callable[[], float] = lambda: random.uniform(-1, 1)) -> None:  # noqa: S311 - not a secret
        self._outbox = outbox
        self._sender = sender
        self._kek = kek
        self._clock = clock
        self._poll = poll_interval
        self._hold = hold
        self._jitter = jitter
        self._wake = asyncio.Event()
        self.limits = limits or EndpointLimits(clock)
        self._sending: set[asyncio.Task[None]] = set()
        self.sent = 0
        self.failed = 0

    def wake(self) -> None:
        """Something may have been emitted: look now rather than at the next poll."""
        self._wake.set()

    async def run_once(self) -> int:
        """One round: fan out, claim what the free slots and each endpoint's bounds allow, and start
        sending each (a task of its own); returns how many sends started."""
        await self._outbox.dispatch()
        free = CONCURRENCY - len(self._sending)
        if free <= 0:
            return 0
        due = await self._outbox.claim(free, self._hold, per_endpoint=self.limits.allowance)
        for d in due:
            self.limits.start(d.endpoint_id)
            task = asyncio.create_task(self._deliver(d), name=f"webhook-{d.delivery_id}")
            self._sending.add(task)
            task.add_done_callback(self._ended)
        return len(due)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._sending.discard(task)
        self._wake.set()  # a slot is free: look for more

    async def drain(self) -> None:
        """Wait until no send is in flight."""
        while self._sending:
            await asyncio.gather(*list(self._sending), return_exceptions=True)

    async def _deliver(self, due: DueDelivery) -> None:
        try:
            try:
                key = aead.open_sealed(self._kek, due.secret_sealed, sealing_aad(due.endpoint_id))
            except aead.DecryptionFailed:
                outcome = DeliveryOutcome(False, None, "key_unavailable", 0, None)
            else:
                sent = await self._sender.send(due.url, key, due.event_id, int(self._clock.now()),
                                               due.payload.encode())
                delay = None if sent.ok else retry_delay(due.attempts, self._jitter())
                outcome = DeliveryOutcome(sent.ok, sent.status, sent.error, sent.duration_ms,
                                  None if delay is None else self._clock.now() + delay)
            if outcome.delivered:
                self.sent += 1
            else:
                self.failed += 1
                log.warning("webhook delivery failed", extra={
                    "event": "webhook_failed", "delivery_id": due.delivery_id, "endpoint_id": due.endpoint_id,
                    "error": outcome.error, "status": outcome.status, "attempt": due.attempts,
                    "gave_up": outcome.retry_at is None})
            await self._outbox.finish(due, outcome)
        except Exception:  # the claim's hold ends and the delivery is due again: at least once
            log.exception("webhook delivery could not be recorded", extra={
                "event": "webhook_record_failed", "delivery_id": due.delivery_id})
        finally:
            self.limits.done(due.endpoint_id)

    async def run(self) -> None:
        try:
            while True:
                self._wake.clear()
                started = 0
                try:
                    started = await self.run_once()
                except Exception:
                    log.exception("outbox round failed", extra={"event": "outbox_failed"})
                if started and len(self._sending) < CONCURRENCY:
                    continue  # more may be due for other endpoints: no pause while there is a backlog
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll)
        finally:
            sending = list(self._sending)
            for task in sending:
                task.cancel()  # their claims' holds end and the deliveries are due again
            await asyncio.gather(*sending, return_exceptions=True)
