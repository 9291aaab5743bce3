"""What every directory use case shares: the clock, the audit event of a change, and the hook that
clears per-process caches (the token path's and the key ring's) after each write."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from keyless.clock import Clock
from keyless.domain.events import Event
from keyless.domain.model import AuditEvent


def _nothing() -> None:
    return None


class UseCases:
    """Base of the per-aggregate services. Every method that changes something takes the acting
    principal (`actor`, a client id), so each change is audited with who made it."""

    def __init__(self, clock: Clock, on_change: Callable[[], None] = _nothing) -> None:
        self._clock = clock
        self._on_change = on_change

    def _audit(self, tenant_id: str, actor: str, action: str, target_type: str, target_id: str,
               **details: object) -> AuditEvent:
        return AuditEvent(
            time=self._clock.now(), tenant_id=tenant_id, actor=actor, action=action, target_type=target_type,
            target_id=target_id, details=dict(details),
        )


def notifying(audit: AuditEvent, *events: Event) -> AuditEvent:
    """`audit` carrying notification `events`: the store writes them to the outbox in the change's own
    transaction (keyless.domain.events)."""
    return replace(audit, notify=audit.notify + events)
