"""Credential policies at sign-in (catalog O05): the token endpoint's one policy step, run once client
authentication has succeeded.

A credential written before a rule existed is still judged by it when it is used: an `enforce`
violation turns the sign-in into the same `401 invalid_client` as any failed authentication
(requirements §1.1: the wire never says which check failed), its stable reason (e.g.
`policy_source_network`) kept in the sign-in log's `detail`; an `audit` violation lets the sign-in
succeed and records `policy_audit:<reasons>` there instead (docs/policies.md).

On the hot path this costs one per-process cache lookup when no policy applies to the client: the
effective policy comes from a cache cleared by every policy write and by the change feed
(`keyless.store.cache.CachedPolicies`), and the credential's facts from the directory caches the
authentication step just filled. No database query per request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from keyless.domain.federation import FederationReader, owner_type_of
from keyless.domain.model import ClientCertificate, ClientSecret, Tenant
from keyless.domain.policies import CredentialFacts, Policy, check_sign_in, facts_of
from keyless.domain.ports import DirectoryReader
from keyless.oauth.client_auth.result import AuthenticatedClient
from keyless.oauth.errors import InvalidClient

AUDIT_PREFIX = "policy_audit:"


class EffectivePolicies(Protocol):
    async def policy(self, tenant_id: str, client_id: str) -> Policy:
        """The tenant's default with the application's override on top (cached)."""
        ...


class SignInPolicy:
    def __init__(self, policies: EffectivePolicies, directory: DirectoryReader,
                 federation: FederationReader | None = None,
                 internal_ca: Callable[[bytes], bool] | None = None) -> None:
        self._policies = policies
        self._directory = directory
        self._federation = federation
        self._internal_ca = internal_ca

    async def check(self, tenant: Tenant, client: AuthenticatedClient, source: str | None, *,
                    basic: bool = False) -> str | None:
        """None when the sign-in breaks no rule; the sign-in log's note when it breaks audit-mode
        rules only; raises `InvalidClient` when it breaks an enforced one."""
        policy = await self._policies.policy(tenant.id, client.app.client_id)
        if policy.empty:
            return None
        facts = await self._facts(tenant, client) if policy.judges_credentials else None
        found = check_sign_in(policy, facts, source=source, tenant_audience_mode=tenant.assertion_audience,
                              assertion=client.credential_type == "certificate")
        if not found:
            return None
        refused = next((v for v in found if v.enforced), None)
        if refused is not None:
            raise InvalidClient(detail=refused.reason, basic=basic, auth_method=client.method)
        return AUDIT_PREFIX + ",".join(dict.fromkeys(v.reason for v in found))

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
        used: list[ClientSecret | ClientCertificate] = [*record.secrets, *record.certificates]
        found = next((c for c in used if c.id == cid), None)
        return None if found is None else facts_of(found, self._internal_ca)
