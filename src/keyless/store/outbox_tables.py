"""Outbox and webhook tables (on the shared `metadata`; migration 0011; docs/notifications.md).

`outbox_events` holds each event once, written in the transaction of the change that caused it;
`webhook_deliveries` one row per (event, endpoint) once a dispatcher has fanned the event out, with
its state and next attempt; `webhook_attempts` the delivery log, one row per HTTP attempt.
"""

from __future__ import annotations

from sqlalchemy import Column, Double, ForeignKey, Index, Integer, LargeBinary, String, Table, Text, UniqueConstraint

from keyless.store.tables import GUID, metadata

outbox_events = Table(
    "outbox_events",
    metadata,
    Column("id", String(40), primary_key=True),  # msg_…: the Standard Webhooks webhook-id
    Column("tenant_id", GUID, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("type", String(64), nullable=False),
    Column("subject", String(128), nullable=False),
    Column("time", Double, nullable=False),
    Column("payload", Text, nullable=False),  # the JSON body receivers get
    Column("dedupe", String(200), nullable=True, unique=True),
    Column("dispatched_at", Double, nullable=True),  # fanned out to the endpoints of its tenant
    Index("ix_outbox_events_dispatched_at", "dispatched_at", "time"),
)

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", GUID, primary_key=True),
    Column("tenant_id", GUID, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("url", String(2048), nullable=False),
    Column("description", String(256), nullable=False),
    Column("event_types", Text, nullable=False),  # JSON list; empty: every type
    Column("secret_sealed", LargeBinary, nullable=False),  # whsec_ key, AES-GCM under the KEK
    Column("created_at", Double, nullable=False),
    Index("ix_webhook_endpoints_tenant", "tenant_id"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(40), primary_key=True),  # dlv_…
    Column("tenant_id", GUID, nullable=False),
    Column("event_id", String(40), ForeignKey("outbox_events.id", ondelete="CASCADE"), nullable=False),
    Column("endpoint_id", GUID, ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False),
    Column("state", String(16), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", Double, nullable=False),  # also the claim: a worker pushes it past its send
    Column("claim", String(32), nullable=True),
    Column("created_at", Double, nullable=False),
    Column("last_attempt_at", Double, nullable=True),
    Column("last_status", Integer, nullable=True),
    Column("last_error", String(64), nullable=True),
    Column("delivered_at", Double, nullable=True),
    UniqueConstraint("event_id", "endpoint_id", name="uq_webhook_deliveries_event_endpoint"),
    Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
    Index("ix_webhook_deliveries_endpoint", "endpoint_id", "created_at"),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("delivery_id", String(40), ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), nullable=False),
    Column("time", Double, nullable=False),
    Column("status", Integer, nullable=True),  # the receiver's HTTP status; None: no answer
    Column("error", String(64), nullable=True),  # stable reason: timeout, private_address, http_500, …
    Column("duration_ms", Integer, nullable=False),
    Index("ix_webhook_attempts_delivery", "delivery_id"),
)
