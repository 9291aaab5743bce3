"""Webhook endpoints and the delivery log on SQLAlchemy Core (`keyless.domain.webhooks.WebhookStore`):
the management side; the worker's side is `keyless.store.outbox`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, update

from keyless.domain.events import Event
from keyless.domain.model import AuditEvent
from keyless.domain.webhooks import Attempt, Delivery, WebhookEndpoint
from keyless.store.base import SqlRepository, insert_events
from keyless.store.outbox import delivery_row, endpoint_of
from keyless.store.outbox_tables import outbox_events, webhook_attempts, webhook_deliveries, webhook_endpoints


def _delivery(row: Any) -> Delivery:
    return Delivery(id=row.id, tenant_id=row.tenant_id, event_id=row.event_id, event_type=row.type,
                    endpoint_id=row.endpoint_id, state=row.state, attempts=row.attempts,
                    next_attempt_at=row.next_attempt_at, created_at=row.created_at,
                    last_attempt_at=row.last_attempt_at, last_status=row.last_status, last_error=row.last_error,
                    delivered_at=row.delivered_at)


class SqlWebhookStore(SqlRepository):
    async def add_endpoint(self, endpoint: WebhookEndpoint, secret_sealed: bytes, audit: AuditEvent) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(insert(webhook_endpoints).values(
                id=endpoint.id, tenant_id=endpoint.tenant_id, url=endpoint.url, description=endpoint.description,
                event_types=json.dumps(list(endpoint.event_types)), secret_sealed=secret_sealed,
                created_at=endpoint.created_at))
            await self._audit(conn, audit)

    async def list_endpoints(self, tenant_id: str) -> Sequence[WebhookEndpoint]:
        w = webhook_endpoints
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(w).where(w.c.tenant_id == tenant_id).order_by(w.c.created_at, w.c.id))
            return [endpoint_of(r) for r in rows]

    async def get_endpoint(self, tenant_id: str, endpoint_id: str) -> WebhookEndpoint | None:
        w = webhook_endpoints
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(w).where(w.c.tenant_id == tenant_id, w.c.id == endpoint_id))).first()
            return endpoint_of(row) if row is not None else None

    async def remove_endpoint(self, tenant_id: str, endpoint_id: str, audit: AuditEvent) -> bool:
        """The endpoint and its deliveries (their log goes with them)."""
        w = webhook_endpoints
        async with self.engine.begin() as conn:
            ids = [r.id for r in await conn.execute(
                select(webhook_deliveries.c.id).where(webhook_deliveries.c.endpoint_id == endpoint_id))]
            if ids:  # explicit, not only ON DELETE CASCADE: SQLite enforces it only with foreign_keys=ON
                await conn.execute(delete(webhook_attempts).where(webhook_attempts.c.delivery_id.in_(ids)))
                await conn.execute(delete(webhook_deliveries).where(webhook_deliveries.c.id.in_(ids)))
            gone = await conn.execute(delete(w).where(w.c.tenant_id == tenant_id, w.c.id == endpoint_id))
            if gone.rowcount != 1:
                await conn.rollback()
                return False
            await self._audit(conn, audit)
            return True

    def _deliveries(self) -> Any:
        d, e = webhook_deliveries, outbox_events
        return select(d, e.c.type).join(e, e.c.id == d.c.event_id)

    async def list_deliveries(self, tenant_id: str, *, endpoint_id: str | None = None,
                              state: str | None = None, limit: int = 100,
                              after: tuple[float, str] | None = None) -> Sequence[Delivery]:
        d = webhook_deliveries
        q = self._deliveries().where(d.c.tenant_id == tenant_id)
        if after is not None:
            q = q.where(or_(d.c.created_at < after[0], and_(d.c.created_at == after[0], d.c.id > after[1])))
        if endpoint_id is not None:
            q = q.where(d.c.endpoint_id == endpoint_id)
        if state is not None:
            q = q.where(d.c.state == state)
        async with self.engine.connect() as conn:
            rows = await conn.execute(q.order_by(d.c.created_at.desc(), d.c.id).limit(limit))
            return [_delivery(r) for r in rows]

    async def get_delivery(self, tenant_id: str, delivery_id: str) -> Delivery | None:
        d = webhook_deliveries
        async with self.engine.connect() as conn:
            row = (await conn.execute(self._deliveries().where(d.c.tenant_id == tenant_id,
                                                                d.c.id == delivery_id))).first()
            return _delivery(row) if row is not None else None

    async def attempts(self, tenant_id: str, delivery_id: str) -> Sequence[Attempt]:
        a, d = webhook_attempts, webhook_deliveries
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(a).join(d, d.c.id == a.c.delivery_id)
                .where(d.c.tenant_id == tenant_id, a.c.delivery_id == delivery_id).order_by(a.c.time, a.c.id))
            return [Attempt(delivery_id=r.delivery_id, time=r.time, status=r.status, error=r.error,
                            duration_ms=r.duration_ms) for r in rows]

    async def ping(self, endpoint: WebhookEndpoint, event: Event, audit: AuditEvent) -> str:
        """A `webhook.ping` event delivered to this endpoint only (dispatched at once, so the fan-out
        sends it nowhere else); returns the delivery's id."""
        row = delivery_row(endpoint.tenant_id, event.id, endpoint.id, event.time)
        async with self.engine.begin() as conn:
            await insert_events(conn, [event])
            await conn.execute(update(outbox_events).where(outbox_events.c.id == event.id)
                               .values(dispatched_at=event.time))
            await conn.execute(insert(webhook_deliveries).values(**row))
            await self._audit(conn, audit)
        return str(row["id"])

    async def redeliver(self, tenant_id: str, delivery_id: str, at: float, audit: AuditEvent) -> bool:
        d = webhook_deliveries
        async with self.engine.begin() as conn:
            done = await conn.execute(update(d).where(d.c.tenant_id == tenant_id, d.c.id == delivery_id)
                                      .values(state="pending", next_attempt_at=at, claim=None))
            if done.rowcount != 1:
                await conn.rollback()
                return False
            await self._audit(conn, audit)
            return True
