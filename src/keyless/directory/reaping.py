"""Reaping (issue 13 item 4; docs/policies.md, "Reaping"): the credential policy's `reaping` rule,
per tenant with per-application overrides like every rule, judged by the scheduled scan. It disables
the applications' and managed identities' secrets and certificates nobody has used for N days — after
a `credential.unused` warning at N-7 days — and deletes disabled (revoked) ones M days later.

`enforce` does it: every action is one audit record by the actor `keyless:reaper`, with its event in
the same transaction. `audit` does nothing to the credential: the same warning, then one
`policy.violation` notice (`during: reaping`) per credential that would be disabled or deleted; the
dry run (`keyless policy test`) lists both. The installation settings `KEYLESS_REAP_*` (deprecated)
stand in, in enforce mode, where no policy of the owner sets the rule.

Host certificates (the agent renews them) and federated credentials (nothing secret to lose) are never
reaped. A credential used between the scan and the disabling is spared: the store disables it only if
it is still unused (`disable_unused`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from keyless.clock import Clock
from keyless.directory.base import UseCases, notifying
from keyless.directory.notices import DAY, credential_data
from keyless.directory.policies import PolicyFinding
from keyless.domain.credentials import Credential, CredentialKind
from keyless.domain.events import CREDENTIAL_DELETED, CREDENTIAL_DISABLED, CREDENTIAL_UNUSED, POLICY_VIOLATION, Event
from keyless.domain.model import AuditEvent
from keyless.domain.policies import Policy, Reaping, Violation, effective

REAPER = "keyless:reaper"
WARN_AHEAD = 7 * DAY
REAPED_OWNERS = frozenset({"application", "identity"})
REAPED_KINDS = frozenset({"secret", "certificate"})
WOULD_DISABLE = "policy_reap_unused"
WOULD_DELETE = "policy_reap_delete"
RevokedCredential = tuple[CredentialKind, str, str, float]  # kind, id, owner client id, revoked at
RuleFor = Callable[[str], Reaping | None]  # an owner's client id -> the reaping rule in force for it


def installation_rule(unused_days: float, delete_after_days: float) -> Reaping | None:
    """The deprecated `KEYLESS_REAP_UNUSED_DAYS` / `KEYLESS_REAP_DELETE_AFTER_DAYS` (0: off) as an
    enforce-mode rule that applies where no policy sets `reaping`."""
    if unused_days <= 0 and delete_after_days <= 0:
        return None
    return Reaping("enforce", unused_days or None, delete_after_days or None)


def rule_for(policies: Mapping[str | None, Policy], default: Reaping | None = None) -> RuleFor:
    """The reaping rule in force for each owner: its override's, else the tenant's, else `default`;
    None when it is `off` (an override exempts the application) or set nowhere."""
    memo: dict[str, Reaping | None] = {}

    def rule(owner_id: str) -> Reaping | None:
        if owner_id not in memo:
            found = effective(policies, owner_id).reaping or default
            memo[owner_id] = found if found is not None and found.mode != "off" else None
        return memo[owner_id]

    return rule


def shortest_deletion(policies: Mapping[str | None, Policy], default: Reaping | None = None) -> float | None:
    """The smallest `delete_after_days` of any rule in force anywhere in the tenant (None: no rule
    deletes): how far back the scan must look for revoked credentials."""
    days = [r.delete_after_days for r in [*(p.reaping for p in policies.values()), default]
            if r is not None and r.mode != "off" and r.delete_after_days]
    return min(days) if days else None


def idle_since(c: Credential) -> float:
    return c.last_used_at if c.last_used_at is not None else c.created_at


@dataclass
class ReapPlan:
    """What reaping finds at one moment, each with the rule that finds it."""

    warn: list[tuple[Credential, Reaping]] = field(default_factory=list)
    disable: list[tuple[Credential, Reaping]] = field(default_factory=list)
    delete: list[tuple[RevokedCredential, Reaping]] = field(default_factory=list)


def plan(credentials: Sequence[Credential], revoked: Sequence[RevokedCredential], now: float,
         rule: RuleFor) -> ReapPlan:
    """Active reapable credentials idle for N-7 days (warn) and for N days (disable), and revoked
    ones whose revocation is M days old (delete), each by its owner's rule."""
    found = ReapPlan()
    for c in credentials:
        if c.kind not in REAPED_KINDS or c.owner.kind not in REAPED_OWNERS or c.state(now) != "active":
            continue
        r = rule(c.owner.id)
        if r is None or not r.unused_days:
            continue
        idle = now - idle_since(c)
        if idle >= r.unused_days * DAY:
            found.disable.append((c, r))
        elif idle >= r.unused_days * DAY - WARN_AHEAD:
            found.warn.append((c, r))
    for gone in revoked:
        r = rule(gone[2])
        if r is not None and r.delete_after_days and now - gone[3] >= r.delete_after_days * DAY:
            found.delete.append((gone, r))
    return found


def findings(found: ReapPlan, now: float) -> list[PolicyFinding]:
    """The dry run's account of a plan: what would be disabled and deleted (`enforce` findings are
    what the scan would do; `audit` ones what it would only report)."""
    out = [PolicyFinding(c.owner.id, Violation(
        "reaping", r.mode, WOULD_DISABLE, f"unused for {(now - idle_since(c)) / DAY:.0f} days (the rule says "
        f"{r.unused_days:g}): would be disabled", c.id)) for c, r in found.disable]
    out += [PolicyFinding(owner, Violation(
        "reaping", r.mode, WOULD_DELETE, f"disabled {(now - at) / DAY:.0f} days ago (the rule says "
        f"{r.delete_after_days:g}): would be deleted", cid)) for (_, cid, owner, at), r in found.delete]
    return out


class ReapingStore(Protocol):
    async def disable_unused(self, tenant_id: str, credential: Credential, used_before: float,
                             audit: AuditEvent) -> bool: ...
    async def revoked_before(self, tenant_id: str, before: float) -> Sequence[RevokedCredential]: ...
    async def delete_revoked(self, tenant_id: str, kind: CredentialKind, credential_id: str, owner_id: str,
                             before: float, audit: AuditEvent) -> bool: ...


@dataclass
class Reaped:
    """What one run did: notices for the caller to emit through its (deduplicating) outbox, and how
    many credentials were disabled and deleted (each with its audit record and event)."""

    notices: list[Event] = field(default_factory=list)
    disabled: int = 0
    deleted: int = 0


class Reaper(UseCases):
    def __init__(self, credentials: ReapingStore, clock: Clock) -> None:
        super().__init__(clock)
        self._credentials = credentials  # the credential service: its one path ends each credential

    async def run(self, tenant_id: str, found: ReapPlan, names: Mapping[str, str]) -> Reaped:
        now = self._clock.now()
        done = Reaped()
        for c, r in found.warn:
            days = r.unused_days or 0.0
            done.notices.append(Event(CREDENTIAL_UNUSED, tenant_id, now, c.id, {
                **credential_data(c, names.get(c.owner.id)), "days": days - WARN_AHEAD / DAY,
                "disable_at": idle_since(c) + days * DAY, "reaping": r.mode},
                dedupe=f"reap-warning:{c.id}:{idle_since(c):.0f}"))
        for c, r in found.disable:
            days = r.unused_days or 0.0
            if r.mode == "audit":
                done.notices.append(self._would(tenant_id, now, c.id, c.kind, c.owner.id, WOULD_DISABLE,
                                                f"reap-audit:{c.id}:{idle_since(c):.0f}", days))
                continue
            audit = notifying(
                self._audit(tenant_id, REAPER, "credential.disable", c.kind, c.id, reason="unused",
                            unused_days=days, last_used_at=c.last_used_at),
                Event(CREDENTIAL_DISABLED, tenant_id, now, c.id, {
                    **credential_data(c, names.get(c.owner.id)), "reason": "unused", "days": days}))
            done.disabled += await self._credentials.disable_unused(tenant_id, c, now - days * DAY, audit)
        for (kind, credential_id, owner_id, _), r in found.delete:
            days = r.delete_after_days or 0.0
            if r.mode == "audit":
                done.notices.append(self._would(tenant_id, now, credential_id, kind, owner_id, WOULD_DELETE,
                                                f"reap-audit-delete:{credential_id}", days))
                continue
            audit = notifying(
                self._audit(tenant_id, REAPER, "credential.delete", kind, credential_id, owner_id=owner_id,
                            reason="disabled", delete_after_days=days),
                Event(CREDENTIAL_DELETED, tenant_id, now, credential_id, {
                    "credential_id": credential_id, "kind": kind, "owner_id": owner_id,
                    "owner_name": names.get(owner_id), "days": days}))
            done.deleted += await self._credentials.delete_revoked(tenant_id, kind, credential_id, owner_id,
                                                             now - days * DAY, audit)
        return done

    @staticmethod
    def _would(tenant_id: str, now: float, credential_id: str, kind: str, owner_id: str, reason: str,
               dedupe: str, days: float) -> Event:
        """An audit-mode rule's report: `policy.violation` during reaping, once per fact."""
        return Event(POLICY_VIOLATION, tenant_id, now, credential_id, {
            "during": "reaping", "credential_id": credential_id, "credential_type": kind, "owner": owner_id,
            "reasons": [reason], "days": days}, dedupe=dedupe)
