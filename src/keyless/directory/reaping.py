"""Reaping (issue 13 item 4; docs/notifications.md, "Reaping"): an optional rule that disables the
applications' and managed identities' secrets and certificates nobody has used for N days — after a
`credential.unused` warning at N-7 days — and deletes disabled (revoked) ones M days later. Every
action is one audit record by the actor `keyless:reaper`, with its event in the same transaction.

Off unless configured. Host certificates (the agent renews them) and federated credentials (nothing
secret to lose) are never reaped. A credential used between the scan and the disabling is spared:
the store disables it only if it is still unused (`disable_unused`). The disabling and deleting go
through the credential service (`CredentialService`, which satisfies `ReapingStore`), the one path
that ends a credential of any kind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from keyless.clock import Clock
from keyless.directory.base import UseCases, notifying
from keyless.directory.notices import DAY, credential_data
from keyless.domain.credentials import Credential, CredentialKind
from keyless.domain.events import CREDENTIAL_DELETED, CREDENTIAL_DISABLED, CREDENTIAL_UNUSED, Event
from keyless.domain.model import AuditEvent

REAPER = "keyless:reaper"
WARN_AHEAD = 7 * DAY
REAPED_OWNERS = frozenset({"application", "identity"})
REAPED_KINDS = frozenset({"secret", "certificate"})


@dataclass(frozen=True)
class ReapRules:
    unused_days: float = 0  # 0: never disable
    delete_after_days: float = 0  # 0: never delete

    @property
    def enabled(self) -> bool:
        return self.unused_days > 0 or self.delete_after_days > 0


def idle_since(c: Credential) -> float:
    return c.last_used_at if c.last_used_at is not None else c.created_at


def plan(credentials: Sequence[Credential], now: float, rules: ReapRules) -> tuple[list[Credential], list[Credential]]:
    """(warn, disable): active reapable credentials idle for N-7 days, and for N days."""
    if rules.unused_days <= 0:
        return [], []
    warn, disable = [], []
    for c in credentials:
        if c.kind not in REAPED_KINDS or c.owner.kind not in REAPED_OWNERS or c.state(now) != "active":
            continue
        idle = now - idle_since(c)
        if idle >= rules.unused_days * DAY:
            disable.append(c)
        elif idle >= rules.unused_days * DAY - WARN_AHEAD:
            warn.append(c)
    return warn, disable


class ReapingStore(Protocol):
    async def disable_unused(self, tenant_id: str, credential: Credential, used_before: float,
                             audit: AuditEvent) -> bool: ...
    async def revoked_before(self, tenant_id: str, before: float) -> Sequence[tuple[CredentialKind, str, str]]: ...
    async def delete_revoked(self, tenant_id: str, kind: CredentialKind, credential_id: str, owner_id: str,
                             before: float, audit: AuditEvent) -> bool: ...


class Reaper(UseCases):
    def __init__(self, credentials: ReapingStore, clock: Clock) -> None:
        super().__init__(clock)
        self._credentials = credentials  # the credential service: its one path ends each credential

    async def run(self, tenant_id: str, credentials: Sequence[Credential], rules: ReapRules,
                  names: Mapping[str, str]) -> tuple[list[Event], int, int]:
        """Warnings to emit (deduplicated by the caller's outbox), and how many credentials were
        disabled and deleted (each with its audit record and event)."""
        now = self._clock.now()
        warn, disable = plan(credentials, now, rules)
        warnings = [Event(CREDENTIAL_UNUSED, tenant_id, now, c.id, {
            **credential_data(c, names.get(c.owner.id)), "days": rules.unused_days - WARN_AHEAD / DAY,
            "disable_at": idle_since(c) + rules.unused_days * DAY}, dedupe=f"reap-warning:{c.id}:{idle_since(c):.0f}")
            for c in warn]
        disabled = 0
        for c in disable:
            audit = notifying(
                self._audit(tenant_id, REAPER, "credential.disable", c.kind, c.id, reason="unused",
                            unused_days=rules.unused_days, last_used_at=c.last_used_at),
                Event(CREDENTIAL_DISABLED, tenant_id, now, c.id, {**credential_data(c, names.get(c.owner.id)),
                                                                  "reason": "unused", "days": rules.unused_days}))
            disabled += await self._credentials.disable_unused(tenant_id, c, now - rules.unused_days * DAY, audit)
        deleted = 0
        if rules.delete_after_days > 0:
            cutoff = now - rules.delete_after_days * DAY
            for kind, credential_id, owner_id in await self._credentials.revoked_before(tenant_id, cutoff):
                audit = notifying(
                    self._audit(tenant_id, REAPER, "credential.delete", kind, credential_id, owner_id=owner_id,
                                reason="disabled", delete_after_days=rules.delete_after_days),
                    Event(CREDENTIAL_DELETED, tenant_id, now, credential_id, {
                        "credential_id": credential_id, "kind": kind, "owner_id": owner_id,
                        "owner_name": names.get(owner_id), "days": rules.delete_after_days}))
                deleted += await self._credentials.delete_revoked(tenant_id, kind, credential_id, owner_id, cutoff,
                                                                  audit)
        return warnings, disabled, deleted
