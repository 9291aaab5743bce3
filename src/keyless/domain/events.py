"""Notification events: every type in one place, and what an event may carry (docs/notifications.md).

An event is written to the **outbox** in the same transaction as the change that causes it, then
delivered at least once to every webhook endpoint of its tenant that subscribes to its type (issue 13
item 3). Two ways to emit one:

- with an audited change: attach it to the change's `AuditEvent` (`AuditEvent(..., notify=(event,))`);
  the store writes the audit row and the outbox row in one transaction, so an event is never sent for
  a change that rolled back, nor lost for one that committed;
- with no audited change (a scan's finding, a sign-in seen in audit mode): `EventSink.emit`, its own
  transaction; `dedupe` makes a notice that a scan finds again and again go out once.

An event carries ids and names, never a secret value, token or assertion (catalog O03): `Event`
refuses data keys that name one.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from keyless.errors import KeylessError

CREDENTIAL_EXPIRING = "credential.expiring"  # 30, 7 and 1 days before (configurable), once per threshold
CREDENTIAL_EXPIRED = "credential.expired"
CREDENTIAL_UNUSED = "credential.unused"  # no sign-in for N days (or never used, N days after creation)
CREDENTIAL_DISABLED = "credential.disabled"  # reaped: unused too long (docs/notifications.md, "Reaping")
CREDENTIAL_DELETED = "credential.deleted"  # reaped: disabled for M days
POLICY_VIOLATION = "policy.violation"  # a rule in audit mode would have refused a write or sign-in
LEAK_REPORTED = "leak.reported"
SIGNING_KEY_ROTATED = "signing_key.rotated"
AGENT_SILENT = "agent.silent"  # a host's agent has not renewed or called for N minutes
WEBHOOK_PING = "webhook.ping"  # `keyless webhook ping`: a receiver's end-to-end check

EVENT_TYPES: frozenset[str] = frozenset({
    CREDENTIAL_EXPIRING, CREDENTIAL_EXPIRED, CREDENTIAL_UNUSED, CREDENTIAL_DISABLED, CREDENTIAL_DELETED,
    POLICY_VIOLATION, LEAK_REPORTED, SIGNING_KEY_ROTATED, AGENT_SILENT, WEBHOOK_PING,
})

# Data keys an event may never carry (O03): a receiver's log is no place for secret material.
FORBIDDEN_KEYS = frozenset({
    "secret", "secret_value", "client_secret", "password", "token", "access_token", "refresh_token",
    "assertion", "client_assertion", "join_token", "private_key", "key_der", "value",
})


class EventRefused(KeylessError):
    """An event of an unknown type, or one whose data names a secret (a programming error)."""


def new_event_id() -> str:
    """`msg_…`: the Standard Webhooks `webhook-id`, stable across retries so receivers can deduplicate."""
    return f"msg_{uuid.uuid4().hex}"


def _check_data(data: Mapping[str, object], path: str = "data") -> None:
    for key, value in data.items():
        if key.lower() in FORBIDDEN_KEYS:
            raise EventRefused(f"{path}.{key}: an event never carries a secret value (catalog O03)")
        if isinstance(value, Mapping):
            _check_data(value, f"{path}.{key}")


@dataclass(frozen=True)
class Event:
    """One notification. `subject` names what it is about (a credential id, a kid, a host id);
    `data` holds ids, names and times only."""

    type: str
    tenant_id: str
    time: float
    subject: str
    data: Mapping[str, object] = field(default_factory=dict)
    dedupe: str | None = None  # at most one event per key, ever (a scan's notice)
    id: str = field(default_factory=new_event_id)

    def __post_init__(self) -> None:
        if self.type not in EVENT_TYPES:
            raise EventRefused(f"unknown event type {self.type!r} (keyless.domain.events.EVENT_TYPES)")
        _check_data(self.data)

    def payload(self) -> dict[str, object]:
        """The JSON body a receiver gets (Standard Webhooks' recommended `type`/`timestamp`/`data`)."""
        return {"id": self.id, "type": self.type, "timestamp": self.time, "tenant_id": self.tenant_id,
                "subject": self.subject, "data": dict(self.data)}


class EventSink(Protocol):
    """Emits events with no audited change of their own, in one transaction (the outbox)."""

    async def emit(self, events: Sequence[Event]) -> int:
        """Write `events`; returns how many were new (an event whose `dedupe` key was seen is dropped)."""
        ...
