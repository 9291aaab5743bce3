"""Credential-policy use cases (`keyless.domain.policies`): show, set and clear the tenant's default
and per-application overrides; check a credential about to be written (`check_write`, called only by
`CredentialService.record` in `directory.credentials`, the funnel every new secret, certificate,
host certificate and federated credential is written through); and the dry run that lists
what a candidate policy would refuse among existing credentials and recent sign-ins (docs/policies.md).

Changing any policy, an override that loosens the tenant's rules included, needs Keyless.Admin (the
management API's access declaration; catalog O06): there is no narrower role that may write one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from keyless.clock import Clock
from keyless.directory.base import UseCases, _nothing, notifying
from keyless.directory.errors import Conflict, Invalid
from keyless.domain.events import POLICY_VIOLATION, Event
from keyless.domain.model import AuditEvent, SignInEvent, Tenant
from keyless.domain.policies import (
    CredentialFacts,
    Policy,
    PolicyError,
    PolicyStore,
    Violation,
    check_credential,
    check_new,
    check_sign_in,
    effective,
    enforced,
)
from keyless.domain.policy_document import policy_from_json, policy_to_json
from keyless.domain.ports import UniqueViolation
from keyless.domain.posture import IssuerCheck

# DER certificate -> issued by this installation's CA, with the CA's x5t#S256 (`ca_thumbprint`), which a
# verdict kept with a certificate row names (migration 0017).
InternalCa = IssuerCheck


class NoPolicies:
    """A `PolicyStore` with no policy in it and none to be written: for wiring that enforces none."""

    async def get_policy(self, tenant_id: str, client_id: str | None) -> Policy | None:
        return None

    async def policies(self, tenant_id: str) -> Mapping[str | None, Policy]:
        return {}

    async def put_policy(self, tenant_id: str, client_id: str | None, policy: Policy, audit: AuditEvent) -> None:
        raise Conflict("policies_unavailable", "this process keeps no credential policies")

    async def delete_policy(self, tenant_id: str, client_id: str | None, audit: AuditEvent) -> bool:
        return False


class PolicyRefused(Invalid):
    """A write an enforced rule forbids: the problem `code` is the rule's stable reason."""

    title = "Refused by policy"


@dataclass(frozen=True)
class PolicyFinding:
    """One thing a dry run found: a credential (by owner) or a sign-in that breaks a rule."""

    owner: str  # the owner's client id or host id
    violation: Violation
    time: float | None = None  # a sign-in's time
    source: str | None = None  # a sign-in's source address


@dataclass(frozen=True)
class OwnedCredential:
    owner: str  # client id (application or identity) or host id; the key of a per-application override
    facts: CredentialFacts


class PolicyService(UseCases):
    def __init__(self, store: PolicyStore, clock: Clock, on_change: Callable[[], None] = _nothing,
                 internal_ca: InternalCa | None = None) -> None:
        super().__init__(clock, on_change)
        self._store = store
        self.internal_ca = internal_ca

    async def stored(self, tenant: Tenant, client_id: str | None) -> Policy | None:
        return await self._store.get_policy(tenant.id, client_id)

    async def all_stored(self, tenant: Tenant) -> Mapping[str | None, Policy]:
        return await self._store.policies(tenant.id)

    async def effective(self, tenant: Tenant, client_id: str | None) -> Policy:
        return effective(await self._store.policies(tenant.id), client_id)

    @staticmethod
    def parse(document: object) -> Policy:
        try:
            return policy_from_json(document)
        except PolicyError as exc:
            raise Invalid(exc.code, exc.message) from None

    async def set_policy(self, tenant: Tenant, client_id: str | None, document: object, *, actor: str) -> Policy:
        """Replace the tenant default (`client_id` None) or one application's override, whole."""
        policy = self.parse(document)
        target = ("application", client_id) if client_id else ("tenant", tenant.id)
        try:
            await self._store.put_policy(tenant.id, client_id, policy, self._audit(
                tenant.id, actor, "policy.set", *target, policy=policy_to_json(policy)))
        except UniqueViolation:
            raise Conflict("policy_changed", "the policy changed concurrently; try again") from None
        self._on_change()
        return policy

    async def clear_policy(self, tenant: Tenant, client_id: str | None, *, actor: str) -> bool:
        target = ("application", client_id) if client_id else ("tenant", tenant.id)
        done = await self._store.delete_policy(tenant.id, client_id,
                                               self._audit(tenant.id, actor, "policy.clear", *target))
        if done:
            self._on_change()
        return done

    async def check_write(self, tenant: Tenant, client_id: str | None, facts: CredentialFacts) -> list[Violation]:
        """Refuse (`PolicyRefused`) a new credential an enforced rule forbids; return the audit-mode
        violations, which the caller records with the write's audit event."""
        if facts.kind == "certificate" and facts.from_internal_ca is None:
            raise ValueError("a certificate's facts must say whether the internal CA issued it")
        found = check_new(await self.effective(tenant, client_id), client_id or "", facts)
        refused = enforced(found)
        if refused:
            raise PolicyRefused(refused[0].reason, refused[0].message)
        return found

    async def check_audience_mode(self, tenant: Tenant, mode: str) -> None:
        """A tenant's assertion audience mode may not move away from what an enforced tenant-default
        `audience_mode` rule requires (the rule also judges sign-ins, `keyless.oauth.policy_check`)."""
        rule = (await self.effective(tenant, None)).audience_mode
        if rule is not None and rule.mode == "enforce" and mode != rule.required:
            raise PolicyRefused("policy_audience_mode",
                                f"the tenant's policy requires the {rule.required} assertion audience mode")

    def test(self, candidate: Policy, target: str | None, stored: Mapping[str | None, Policy],
             credentials: Iterable[OwnedCredential], signins: Sequence[SignInEvent],
             tenant: Tenant) -> tuple[list[PolicyFinding], list[PolicyFinding]]:
        """What `candidate`, put at `target` (None: the tenant default; else an application's override),
        would find among existing credentials and recent successful sign-ins; the rest of the stored
        policies stay as they are. Every violation is listed, with its mode: enforce ones are refusals."""
        policies = {**stored, target: candidate}
        by_id: dict[str, CredentialFacts] = {}
        creds: list[PolicyFinding] = []
        for c in credentials:
            by_id[c.facts.id] = c.facts
            creds += [PolicyFinding(c.owner, v) for v in check_credential(effective(policies, c.owner), c.facts)]
        signs: list[PolicyFinding] = []
        for e in signins:
            if e.result != "success" or e.client_id is None:
                continue
            facts = by_id.get(e.credential_id or "")
            found = check_sign_in(effective(policies, e.client_id), facts, source=e.source,
                                  tenant_audience_mode=tenant.assertion_audience,
                                  assertion=e.credential_type == "certificate")
            signs += [PolicyFinding(e.client_id, v, time=e.time, source=e.source) for v in found]
        return creds, signs


def audit_details(violations: Sequence[Violation]) -> dict[str, object]:
    """What an audit record of a write says about the audit-mode rules it broke (nothing if none)."""
    return {"policy_violations": [v.reason for v in violations]} if violations else {}


def with_notice(audit: AuditEvent, credential_id: str, kind: str) -> AuditEvent:
    """`audit` carrying a `policy.violation` notification when the write broke audit-mode rules (its
    details name them, `audit_details`): written to the outbox in the write's own transaction."""
    reasons = audit.details.get("policy_violations")
    if not reasons:
        return audit
    return notifying(audit, Event(
        type=POLICY_VIOLATION, tenant_id=audit.tenant_id, time=audit.time, subject=credential_id,
        data={"during": "write", "action": audit.action, "owner": audit.target_id, "credential_id": credential_id,
              "credential_type": kind, "reasons": reasons},
    ))
