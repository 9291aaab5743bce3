"""The outbox worker: every replica runs one (docs/notifications.md, "Delivery").

Each round fans new events out to their endpoints (`SqlOutbox.dispatch`), claims the deliveries that
are due (`SqlOutbox.claim`: SKIP LOCKED on PostgreSQL, so replicas share the work and never send one
delivery twice at once), sends them concurrently with bounded time each (`WebhookSender`), and records
each outcome with its next attempt (`keyless.domain.webhooks.retry_delay`). A change in this replica
wakes the worker at once; otherwise it polls every `outbox_poll_interval` seconds. A delivery whose
worker died mid-send is claimed again when its hold ends, so every event is delivered at least once;
the event id stays the same on every attempt, so receivers deduplicate.
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
from keyless.server.webhook_sender import TOTAL_TIMEOUT, WebhookSender
from keyless.store.outbox import Outcome, SqlOutbox

log = logging.getLogger("keyless.webhooks")
BATCH = 32
CONCURRENCY = 8
HOLD = 6 * TOTAL_TIMEOUT  # a claim outlives any one send with a wide margin


class OutboxWorker:
    def __init__(self, outbox: SqlOutbox, sender: WebhookSender, kek: bytes, clock: Clock, *,
                 poll_interval: float = 2.0, hold: float = HOLD,
                 jitter: Callable[[], float] = lambda: random.uniform(-1, 1)) -> None:  # noqa: S311 - not a secret
        self._outbox = outbox
        self._sender = sender
        self._kek = kek
        self._clock = clock
        self._poll = poll_interval
        self._hold = hold
        self._jitter = jitter
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(CONCURRENCY)
        self.sent = 0
        self.failed = 0

    def wake(self) -> None:
        """Something may have been emitted: look now rather than at the next poll."""
        self._wake.set()

    async def run_once(self) -> int:
        """One round; returns how many deliveries were attempted."""
        await self._outbox.dispatch()
        due = await self._outbox.claim(BATCH, self._hold)
        await asyncio.gather(*(self._deliver(d) for d in due))
        return len(due)

    async def _deliver(self, due: DueDelivery) -> None:
        async with self._slots:
            try:
                key = aead.open_sealed(self._kek, due.secret_sealed, sealing_aad(due.endpoint_id))
            except aead.DecryptionFailed:
                outcome = Outcome(False, None, "key_unavailable", 0, None)
            else:
                sent = await self._sender.send(due.url, key, due.event_id, int(self._clock.now()),
                                               due.payload.encode())
                delay = None if sent.ok else retry_delay(due.attempts, self._jitter())
                outcome = Outcome(sent.ok, sent.status, sent.error, sent.duration_ms,
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

    async def run(self) -> None:
        while True:
            busy = 0
            try:
                busy = await self.run_once()
            except Exception:
                log.exception("outbox round failed", extra={"event": "outbox_failed"})
            if busy >= BATCH:
                continue  # more may be due: no pause while there is a backlog
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll)
            self._wake.clear()
