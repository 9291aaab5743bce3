"""Webhook endpoints, deliveries and the delivery log: plain data and the store port
(docs/notifications.md). The endpoint's signing key is never part of these records: the store keeps
it sealed, and only the registration's answer (once) and the sender see it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from keyless.domain.events import Event
from keyless.domain.model import AuditEvent

DeliveryState = Literal["pending", "delivered", "failed"]


@dataclass(frozen=True)
class WebhookEndpoint:
    id: str
    tenant_id: str
    url: str
    description: str
    event_types: tuple[str, ...]  # empty: every type
    created_at: float

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


@dataclass(frozen=True)
class Delivery:
    """One event on its way to one endpoint: its state and the last attempt's outcome."""

    id: str
    tenant_id: str
    event_id: str
    event_type: str
    endpoint_id: str
    state: DeliveryState
    attempts: int
    next_attempt_at: float
    created_at: float
    last_attempt_at: float | None = None
    last_status: int | None = None
    last_error: str | None = None
    delivered_at: float | None = None


@dataclass(frozen=True)
class Attempt:
    """One HTTP attempt (the delivery log)."""

    delivery_id: str
    time: float
    status: int | None
    error: str | None
    duration_ms: int


@dataclass(frozen=True)
class DueDelivery:
    """What a sender needs for one claimed delivery: where, what, and the sealed key to sign with."""

    delivery_id: str
    claim: str
    attempts: int  # including this one
    event_id: str
    event_time: float
    payload: str
    endpoint_id: str
    url: str
    secret_sealed: bytes


class WebhookStore(Protocol):
    async def add_endpoint(self, endpoint: WebhookEndpoint, secret_sealed: bytes, audit: AuditEvent) -> None: ...
    async def list_endpoints(self, tenant_id: str) -> Sequence[WebhookEndpoint]: ...
    async def get_endpoint(self, tenant_id: str, endpoint_id: str) -> WebhookEndpoint | None: ...
    async def remove_endpoint(self, tenant_id: str, endpoint_id: str, audit: AuditEvent) -> bool: ...
    async def list_deliveries(self, tenant_id: str, *, endpoint_id: str | None = None,
                              state: str | None = None, limit: int = 100,
                              after: tuple[float, str] | None = None) -> Sequence[Delivery]:
        """Newest first (`created_at` descending, then id); `after`: only those past that
        (created_at, id) in this order (the next page, keyless.paging)."""
        ...
    async def get_delivery(self, tenant_id: str, delivery_id: str) -> Delivery | None: ...
    async def attempts(self, tenant_id: str, delivery_id: str) -> Sequence[Attempt]: ...
    async def ping(self, endpoint: WebhookEndpoint, event: Event, audit: AuditEvent) -> str:
        """Deliver `event` to `endpoint` only; the delivery's id."""
        ...

    async def redeliver(self, tenant_id: str, delivery_id: str, at: float, audit: AuditEvent) -> bool:
        """Queue the delivery again now (whatever its state), keeping its event id (receivers dedupe)."""
        ...


# Seconds to wait after the n-th failed attempt (Standard Webhooks suggests an exponential schedule):
# 5 s, 1 min, 5 min, 30 min, 2 h, 5 h, 10 h; after the eighth failure the delivery is `failed`
# (redeliver by id). Each wait varies by up to ±20 % so a receiver that comes back is not hit by every
# queued delivery at once.
RETRY_SCHEDULE: tuple[float, ...] = (5, 60, 300, 1800, 7200, 5 * 3600, 10 * 3600)
JITTER = 0.2


def retry_delay(failed_attempts: int, jitter: float, schedule: Sequence[float] = RETRY_SCHEDULE) -> float | None:
    """The wait before the next attempt after `failed_attempts` failures; None when they are spent.
    `jitter` in [-1, 1] (a random draw, injected so tests need no randomness)."""
    if failed_attempts < 1 or failed_attempts > len(schedule):
        return None
    return schedule[failed_attempts - 1] * (1 + JITTER * max(-1.0, min(1.0, jitter)))
