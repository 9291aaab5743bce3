"""The outbox worker's side of the event tables (docs/notifications.md, "Delivery").

- `emit`: events with no audited change of their own (scans), in their own transaction.
- `dispatch`: fan undispatched events out into one delivery per subscribed endpoint of the tenant.
- `claim`: take due deliveries for this worker (endpoint by endpoint, within each endpoint's
  allowance, when the worker bounds endpoints): on PostgreSQL `SELECT … FOR UPDATE SKIP LOCKED`, so
  replicas polling at once take disjoint rows without waiting; on both engines the claim itself is a
  conditional `UPDATE` that pushes `next_attempt_at` past the send (the hold), so a delivery is never
  sent by two workers at once, and one whose worker died is due again when the hold ends: at least
  once, across restarts and SIGKILL.
- `finish`: record the attempt (the delivery log) and the outcome, only while the claim is still ours.
- `remembered`, `forget` and `purge`: bounded retention of the notices' dedupe keys, the delivery log
  and the events (run by the scan, on one replica under its lease).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, exists, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from keyless.clock import Clock
from keyless.domain.events import Event
from keyless.domain.webhooks import DueDelivery, WebhookEndpoint
from keyless.store.base import insert_events
from keyless.store.outbox_tables import outbox_events, webhook_attempts, webhook_deliveries, webhook_endpoints


@dataclass(frozen=True)
class DeliveryOutcome:
    """What one attempt came to: delivered, or an error and the time of the next attempt (None: give up)."""

    delivered: bool
    status: int | None
    error: str | None
    duration_ms: int
    retry_at: float | None = None


def endpoint_of(row: Any) -> WebhookEndpoint:
    return WebhookEndpoint(id=row.id, tenant_id=row.tenant_id, url=row.url, description=row.description,
                           event_types=tuple(json.loads(row.event_types)), created_at=row.created_at)


def delivery_row(tenant_id: str, event_id: str, endpoint_id: str, now: float) -> dict[str, Any]:
    """A new delivery of one event to one endpoint, due now."""
    return {"id": f"dlv_{uuid.uuid4().hex}", "tenant_id": tenant_id, "event_id": event_id, "endpoint_id": endpoint_id,
            "state": "pending", "attempts": 0, "next_attempt_at": now, "claim": None, "created_at": now}


class SqlOutbox:
    def __init__(self, engine: AsyncEngine, clock: Clock) -> None:
        self.engine = engine
        self._clock = clock
        self._locking = engine.dialect.name == "postgresql"

    async def emit(self, events: Sequence[Event]) -> int:
        if not events:
            return 0
        async with self.engine.begin() as conn:
            return await insert_events(conn, events)

    async def dispatch(self, limit: int = 200) -> int:
        """Fan out up to `limit` undispatched events; returns how many deliveries were queued."""
        e, d, w = outbox_events, webhook_deliveries, webhook_endpoints
        now = self._clock.now()
        async with self.engine.begin() as conn:
            q = select(e.c.id, e.c.tenant_id, e.c.type, e.c.time).where(e.c.dispatched_at.is_(None))
            q = q.order_by(e.c.time).limit(limit)
            rows = (await conn.execute(q.with_for_update(skip_locked=True) if self._locking else q)).all()
            if not rows:
                return 0
            tenants = {r.tenant_id for r in rows}
            endpoints = [endpoint_of(r) for r in await conn.execute(select(w).where(w.c.tenant_id.in_(tenants)))]
            queued = [
                delivery_row(r.tenant_id, r.id, ep.id, now) for r in rows for ep in endpoints
                if ep.tenant_id == r.tenant_id and ep.wants(r.type) and ep.created_at <= r.time  # no older news
            ]
            if queued:
                await conn.execute(insert(d), queued)
            await conn.execute(update(e).where(e.c.id.in_([r.id for r in rows]), e.c.dispatched_at.is_(None))
                               .values(dispatched_at=now))
        return len(queued)

    async def _due_ids(self, conn: AsyncConnection, due: Any, limit: int, endpoint: Any = None) -> list[str]:
        d = webhook_deliveries
        q = select(d.c.id).where(due if endpoint is None else and_(due, d.c.endpoint_id == endpoint))
        q = q.order_by(d.c.next_attempt_at).limit(limit)
        return [r.id for r in await conn.execute(q.with_for_update(skip_locked=True) if self._locking else q)]

    async def _fair_ids(self, conn: AsyncConnection, due: Any, limit: int,
                        allowance: Callable[[str], int]) -> list[str]:
        """Up to `limit` due deliveries, endpoint by endpoint (the one waiting longest first), each
        taking at most `allowance(endpoint id)`: a flooded endpoint cannot fill the batch."""
        d = webhook_deliveries
        oldest = func.min(d.c.next_attempt_at)
        ids: list[str] = []
        waiting = await conn.execute(select(d.c.endpoint_id).where(due).group_by(d.c.endpoint_id).order_by(oldest))
        for endpoint_id in waiting.scalars().all():
            room = min(allowance(endpoint_id), limit - len(ids))
            if room > 0:
                ids += await self._due_ids(conn, due, room, endpoint_id)
            if len(ids) >= limit:
                break
        return ids

    async def claim(self, limit: int, hold: float, *,
                    per_endpoint: Callable[[str], int] | None = None) -> list[DueDelivery]:
        """Take up to `limit` due deliveries for `hold` seconds (longer than one send can take); with
        `per_endpoint`, at most that many of each endpoint's (the worker's per-endpoint bounds)."""
        d, e, w = webhook_deliveries, outbox_events, webhook_endpoints
        now, token = self._clock.now(), uuid.uuid4().hex
        async with self.engine.begin() as conn:
            due = and_(d.c.state == "pending", d.c.next_attempt_at <= now)
            ids = (await self._due_ids(conn, due, limit) if per_endpoint is None
                   else await self._fair_ids(conn, due, limit, per_endpoint))
            if not ids:
                return []
            await conn.execute(
                update(d).where(d.c.id.in_(ids), d.c.state == "pending", d.c.next_attempt_at <= now)
                .values(claim=token, next_attempt_at=now + hold, attempts=d.c.attempts + 1)
            )
            rows = await conn.execute(
                select(d.c.id, d.c.attempts, e.c.id.label("event_id"), e.c.time, e.c.payload,
                       w.c.id.label("endpoint_id"), w.c.url, w.c.secret_sealed)
                .join(e, e.c.id == d.c.event_id).join(w, w.c.id == d.c.endpoint_id).where(d.c.claim == token)
            )
            return [DueDelivery(delivery_id=r.id, claim=token, attempts=r.attempts, event_id=r.event_id,
                                event_time=r.time, payload=r.payload, endpoint_id=r.endpoint_id, url=r.url,
                                secret_sealed=r.secret_sealed) for r in rows]

    async def finish(self, due: DueDelivery, outcome: DeliveryOutcome) -> bool:
        """Record the attempt and its outcome; False (nothing written) when the claim is no longer ours
        (the hold ran out and another worker took the delivery, or it was redelivered meanwhile)."""
        d = webhook_deliveries
        now = self._clock.now()
        if outcome.delivered:
            values: dict[str, Any] = {"state": "delivered", "delivered_at": now}
        elif outcome.retry_at is not None:
            values = {"state": "pending", "next_attempt_at": outcome.retry_at}
        else:
            values = {"state": "failed"}
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(d).where(d.c.id == due.delivery_id, d.c.claim == due.claim)
                .values(claim=None, last_attempt_at=now, last_status=outcome.status,
                        last_error=outcome.error, **values)
            )
            if result.rowcount != 1:
                return False
            await conn.execute(insert(webhook_attempts).values(
                delivery_id=due.delivery_id, time=now, status=outcome.status, error=outcome.error,
                duration_ms=outcome.duration_ms))
        return True

    async def remembered(self, tenant_id: str, before: float) -> list[tuple[str, str, float]]:
        """(event id, dedupe key, time) of the tenant's events that carry a dedupe key and are older
        than `before`: what `keyless.directory.notices.forgettable` judges."""
        e = outbox_events
        q = select(e.c.id, e.c.dedupe, e.c.time).where(e.c.tenant_id == tenant_id, e.c.dedupe.is_not(None),
                                                       e.c.time < before)
        async with self.engine.connect() as conn:
            return [(r.id, r.dedupe, r.time) for r in await conn.execute(q)]

    async def forget(self, event_ids: Sequence[str]) -> int:
        """Drop these events' dedupe keys: the same notice may be emitted again, and `purge` removes the
        events once no delivery needs them."""
        e, forgotten = outbox_events, 0
        async with self.engine.begin() as conn:
            for start in range(0, len(event_ids), 500):
                chunk = list(event_ids[start:start + 500])
                result = await conn.execute(update(e).where(e.c.id.in_(chunk)).values(dedupe=None))
                forgotten += result.rowcount
        return forgotten

    async def purge(self, before: float) -> int:
        """Forget what is done and older than `before`: delivered and failed deliveries with their log,
        then dispatched events no delivery needs any more. An event with a dedupe key stays (it is the
        memory that a scan's notice was sent), as does everything still pending. Returns the number of
        deliveries removed."""
        d, a, e = webhook_deliveries, webhook_attempts, outbox_events
        done = select(d.c.id).where(d.c.state.in_(("delivered", "failed")), d.c.created_at < before)
        async with self.engine.begin() as conn:
            await conn.execute(delete(a).where(a.c.delivery_id.in_(done)))
            gone = await conn.execute(delete(d).where(d.c.state.in_(("delivered", "failed")), d.c.created_at < before))
            await conn.execute(delete(e).where(
                e.c.dispatched_at < before, e.c.dedupe.is_(None), ~exists().where(d.c.event_id == e.c.id)))
        return int(gone.rowcount)
