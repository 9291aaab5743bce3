"""Credential policies at sign-in (catalog O05): the token endpoint's one policy step, run once client
authentication has succeeded.

A credential written before a rule existed is still judged by it when it is used: an `enforce`
violation turns the sign-in into the same `401 invalid_client` as any failed authentication
(requirements §1.1: the wire never says which check failed), its stable reason (e.g.
`policy_source_network`) kept in the sign-in log's `detail`; an `audit` violation lets the sign-in
succeed and records `policy_audit:<reasons>` there instead (docs/policies.md).

An audit-mode violation also becomes a `policy.violation` notification (docs/notifications.md): queued
without I/O to the outbox's batch writer, at most once a day per credential and set of reasons (the
outbox's dedupe key; this process remembers recent keys so a busy client does not queue one per
request).

On the hot path this costs one per-process cache lookup when no policy applies to the client: the
effective policy comes from a cache cleared by every policy write and by the change feed
(`keyless.store.cache.CachedPolicies`), and the credential's facts from the directory caches the
authentication step just filled. No database query per request.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Protocol

from keyless.clock import Clock, SystemClock
from keyless.domain.events import POLICY_VIOLATION, Event
from keyless.domain.federation import FederationReader, owner_type_of
from keyless.domain.model import Certificate, ClientSecret, Tenant
from keyless.domain.policies import CredentialFacts, Policy, Violation, check_sign_in, facts_of
from keyless.domain.ports import DirectoryReader
from keyless.oauth.client_auth.result import AuthenticatedClient
from keyless.oauth.context import TokenContext, TokenEnv
from keyless.oauth.errors import InvalidClient

AUDIT_PREFIX = "policy_audit:"
MAX_REMEMBERED = 10_000  # verdicts, and dedupe keys of notifications this process queued recently


class EffectivePolicies(Protocol):
    async def policy(self, tenant_id: str, client_id: str) -> Policy:
        """The tenant's default with the application's override on top (cached)."""
        ...


class SignInPolicy:
    def __init__(self, policies: EffectivePolicies, directory: DirectoryReader,
                 federation: FederationReader | None = None,
                 internal_ca: Callable[[bytes], bool] | None = None,
                 events: Callable[[Event], None] | None = None, clock: Clock | None = None) -> None:
        self._policies = policies
        self._directory = directory
        self._federation = federation
        self._internal_ca = internal_ca
        self._events = events
        self._clock = clock or SystemClock()
        self._notified: set[str] = set()
        self._verdicts: dict[tuple[str, str, str | None, str], tuple[Policy, list[Violation]]] = {}

    async def step(self, ctx: TokenContext, env: TokenEnv) -> None:
        """The token endpoint's `policy` step (`keyless.oauth.service`), right after client authentication."""
        if ctx.client is None:
            raise InvalidClient(detail="client_not_authenticated")
        ctx.note = await self.check(ctx.tenant, ctx.client, ctx.http.source,
                                    basic=ctx.request is not None and ctx.request.basic is not None)

    async def check(self, tenant: Tenant, client: AuthenticatedClient, source: str | None, *,
                    basic: bool = False) -> str | None:
        """None when the sign-in breaks no rule; the sign-in log's note when it breaks audit-mode
        rules only; raises `InvalidClient` when it breaks an enforced one."""
        policy = await self._policies.policy(tenant.id, client.app.client_id)
        if policy.empty:
            return None
        # The verdict depends on nothing else (a credential's lifetime, key and issuer never change), so
        # it is remembered for as long as this policy object is the cached one (a few seconds).
        key = (client.credential_id, client.credential_type, source, tenant.assertion_audience)
        memo = self._verdicts.get(key)
        if memo is not None and memo[0] is policy:
            found = memo[1]
        else:
            facts = await self._facts(tenant, client) if policy.judges_credentials else None
            found = check_sign_in(policy, facts, source=source, tenant_audience_mode=tenant.assertion_audience,
                                  assertion=client.credential_type == "certificate")
            if len(self._verdicts) >= MAX_REMEMBERED:
                self._verdicts.clear()
            self._verdicts[key] = (policy, found)
        if not found:
            return None
        refused = next((v for v in found if v.enforced), None)
        if refused is not None:
            raise InvalidClient(detail=refused.reason, basic=basic, auth_method=client.method)
        reasons = list(dict.fromkeys(v.reason for v in found))
        self._notify(tenant, client, reasons, source)
        return AUDIT_PREFIX + ",".join(reasons)

    def _notify(self, tenant: Tenant, client: AuthenticatedClient, reasons: list[str], source: str | None) -> None:
        if self._events is None:
            return
        now = self._clock.now()
        which = hashlib.sha256(",".join(reasons).encode()).hexdigest()[:16]
        key = f"{POLICY_VIOLATION}:sign_in:{client.credential_id[:64]}:{which}:{int(now // 86400)}"
        if key in self._notified:
            return
        if len(self._notified) >= MAX_REMEMBERED:
            self._notified.clear()
        self._notified.add(key)
        self._events(Event(
            type=POLICY_VIOLATION, tenant_id=tenant.id, time=now, subject=client.credential_id, dedupe=key,
            data={"during": "sign_in", "client_id": client.app.client_id, "credential_id": client.credential_id,
                  "credential_type": client.credential_type, "reasons": reasons, "source": source},
        ))

    async def _facts(self, tenant: Tenant, client: AuthenticatedClient) -> CredentialFacts | None:
        """The used credential as the rules see it, from the caches authentication just read."""
        cid = client.credential_id
        if client.credential_type == "federated":
            if self._federation is None:
                return None
            creds = await self._federation.federated_credentials(tenant.id, owner_type_of(client.app),
                                                                 client.app.client_id)
            fed = next((c for c in creds if c.id == cid), None)
            return None if fed is None else facts_of(fed)
        record = await self._directory.get_client(tenant.id, client.app.client_id)
        if record is None:
            return None
        used: list[ClientSecret | Certificate] = [*record.secrets, *record.certificates]
        found = next((c for c in used if c.id == cid), None)
        return None if found is None else facts_of(found, self._internal_ca)
