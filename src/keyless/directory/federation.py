"""Federated identity credential use cases: add, list, remove (validated, limited, audited) and lint.
The writes go through the credential service (`directory.credentials`: `record` and `retire`), like
those of every other credential kind.

Credentials hang off an `Owner`: an application, or a managed identity (owner kind "identity", its
client id). Federated credentials attach to applications and user-assigned identities; identity-token
audiences to applications and both kinds of managed identity.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from keyless.clock import Clock
from keyless.directory import validation as v
from keyless.directory.credentials import CredentialService
from keyless.directory.errors import Conflict, Invalid, NotFound
from keyless.domain.credentials import Owner
from keyless.domain.federation import (
    DEFAULT_ALGORITHMS,
    DEFAULT_MAX_TOKEN_LIFETIME,
    KEYLESS_EXCHANGE_AUDIENCE,
    MAX_TOKEN_LIFETIME_LIMIT,
    REPLAY_MODES,
    FederatedCredential,
    FederationStore,
    OwnerType,
    ReplayMode,
)
from keyless.domain.identities import ManagedIdentity
from keyless.domain.model import AuditEvent, Tenant
from keyless.domain.policies import CredentialFacts
from keyless.domain.ports import DirectoryReader, UniqueViolation
from keyless.ids import new_guid
from keyless.jose.jws import ASYMMETRIC_ALGS
from keyless.oauth.federation import rules

MAX_PER_OWNER = 20
MAX_AUDIENCES_PER_OWNER = 10
MIN_TOKEN_LIFETIME = 60
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def _owner_type(owner: Owner) -> OwnerType:
    """Federated credentials belong to applications and identities (a host authenticates with its
    certificate only)."""
    kind = owner.kind
    if kind == "application" or kind == "identity":
        return kind
    raise Invalid("invalid_owner", "only applications and managed identities have federated credentials")


class IdentityLookup(Protocol):
    async def get_identity(self, tenant_id: str, ref: str) -> ManagedIdentity | None: ...


class FederationService:
    def __init__(
        self, store: FederationStore, directory: DirectoryReader, clock: Clock,
        on_change: Callable[[], None] = lambda: None, identities: IdentityLookup | None = None, *,
        credentials: CredentialService,
    ) -> None:
        self._credentials = credentials
        self._store = store
        self._directory = directory
        self._clock = clock
        self._on_change = on_change
        self._identities = identities

    async def application(self, tenant: Tenant, client_id: str) -> Owner:
        """An application (not a managed identity: those have their own owner kind, `identity`)."""
        app = await self._directory.get_application(tenant.id, client_id)
        if app is None:
            raise NotFound("application_not_found", "no such application in this tenant")
        if app.managed_resource_id is not None:
            raise Conflict("managed_identity", "that is a managed identity: name it with --identity "
                                               "(the /identities/{ref}/... routes)")
        return Owner("application", app.client_id)

    async def identity(self, tenant: Tenant, ref: str, *, user_assigned: bool = True) -> Owner:
        """A managed identity by name, client id, object id or resource id. Federated credentials
        (`user_assigned`) only attach to user-assigned identities, which outlive any one host; both
        kinds may have identity-token audiences."""
        found = await self._identities.get_identity(tenant.id, ref) if self._identities else None
        if found is None:
            raise NotFound("identity_not_found", "no such managed identity in this tenant")
        if user_assigned and found.kind != "user":
            raise Invalid("system_assigned", "federated credentials attach to user-assigned identities only")
        return Owner("identity", found.client_id)

    async def credentials(self, tenant: Tenant, owner: Owner) -> Sequence[FederatedCredential]:
        return await self._store.federated_credentials(tenant.id, _owner_type(owner), owner.id)

    async def list_all(self, tenant: Tenant) -> Sequence[FederatedCredential]:
        return await self._store.list_federated_credentials(tenant.id)

    async def add(
        self, tenant: Tenant, owner: Owner, *, actor: str, name: str, issuer: str, subject: str,
        audiences: Sequence[str] = (KEYLESS_EXCHANGE_AUDIENCE,), subject_is_pattern: bool = False,
        claims: Mapping[str, str] | None = None, algorithms: Sequence[str] = DEFAULT_ALGORITHMS,
        replay: str = "reuse", max_token_lifetime: int = DEFAULT_MAX_TOKEN_LIFETIME, description: str = "",
    ) -> FederatedCredential:
        if not name or len(name) > 120 or not set(name) <= _NAME_CHARS:
            raise Invalid("invalid_name", "name must be 1-120 letters, digits, '.', '_' or '-'")
        try:
            rules.check_issuer(issuer)
            rules.check_subject(subject, pattern=subject_is_pattern)
            conditions = rules.check_claims(dict(claims or {}))
        except rules.RuleError as exc:
            raise Invalid(exc.code, exc.message) from None
        if len(audiences) != 1:
            raise Invalid("invalid_audience", "a federated credential has exactly one audience")
        try:
            audience = v.identifier_uri(audiences[0])
        except Invalid:
            raise Invalid("invalid_audience",
                          "audience must be an absolute URI such as api://KeylessTokenExchange") from None
        algs = tuple(dict.fromkeys(algorithms))
        if not algs or not set(algs) <= ASYMMETRIC_ALGS:
            raise Invalid("invalid_algorithms", "algorithms must be asymmetric JWS algorithms, e.g. RS256, ES256")
        if replay not in REPLAY_MODES:
            raise Invalid("invalid_replay", "replay must be reuse, jti or token")
        if not MIN_TOKEN_LIFETIME <= max_token_lifetime <= MAX_TOKEN_LIFETIME_LIMIT:
            raise Invalid("invalid_token_lifetime", "accepted token lifetime must be 1 minute to 24 hours")
        if len(description) > 512 or not description.isprintable():
            raise Invalid("invalid_description", "description must be at most 512 printable characters")
        existing = await self.credentials(tenant, owner)
        if len(existing) >= MAX_PER_OWNER:
            raise Conflict("too_many_federated_credentials",
                           f"at most {MAX_PER_OWNER} federated credentials per {owner.kind}; remove one first")
        if any(c.name == name for c in existing):
            raise Conflict("federated_credential_exists", f"the {owner.kind} has a federated credential of that name")
        if any(c.issuer == issuer and c.subject == subject and c.audience == audience for c in existing):
            raise Conflict("federated_credential_exists",
                           f"the {owner.kind} already trusts this issuer, subject and audience")
        credential = FederatedCredential(
            id=new_guid(), tenant_id=tenant.id, owner_type=_owner_type(owner), owner_id=owner.id, name=name,
            issuer=issuer, subject=subject, audience=audience, subject_is_pattern=subject_is_pattern,
            claims=conditions, algorithms=algs, replay=_replay(replay), max_token_lifetime=max_token_lifetime,
            description=description, created_at=self._clock.now(),
        )
        audit = self._audit(tenant, actor, "federated_credential.add", owner, credential_id=credential.id,
                            name=name, issuer=issuer, subject=subject, audience=audience,
                            subject_is_pattern=subject_is_pattern, claims=conditions, replay=replay)
        facts = CredentialFacts("federated", issuer=issuer, max_token_lifetime=max_token_lifetime)
        try:  # through the one credential funnel: policy, audit and notice as for every other kind
            await self._credentials.add_federated(tenant, credential, facts, audit)
        except UniqueViolation:
            raise Conflict("federated_credential_exists",
                           f"the {owner.kind} has a federated credential of that name") from None
        return credential

    async def remove(self, tenant: Tenant, owner: Owner, ref: str, *, actor: str) -> None:
        """`ref` is the credential's id or its name."""
        found = next((c for c in await self.credentials(tenant, owner) if ref in (c.id, c.name)), None)
        missing = NotFound("federated_credential_not_found", f"no such federated credential on this {owner.kind}")
        if found is None:
            raise missing
        audit = self._audit(tenant, actor, "federated_credential.remove", owner, credential_id=found.id,
                            name=found.name)
        if not await self._credentials.remove_federated(tenant, found, audit):
            raise missing

    # -- outbound identity tokens ---------------------------------------------------------------------
    async def identity_token_audiences(self, tenant: Tenant, owner: Owner) -> frozenset[str]:
        return await self._store.identity_token_audiences(tenant.id, _owner_type(owner), owner.id)

    async def allow_identity_token_audience(self, tenant: Tenant, owner: Owner, audience: str, *,
                                            actor: str) -> None:
        try:
            v.identifier_uri(audience)
        except Invalid:
            raise Invalid("invalid_audience",
                          "audience must be an absolute URI such as api://KeylessTokenExchange") from None
        existing = await self.identity_token_audiences(tenant, owner)
        if audience in existing:
            return
        if len(existing) >= MAX_AUDIENCES_PER_OWNER:
            raise Conflict("too_many_audiences", f"at most {MAX_AUDIENCES_PER_OWNER} audiences per {owner.kind}")
        if await self._directory.find_resource(tenant.id, audience) is not None:
            raise Conflict("audience_is_a_resource",
                           "that audience is a resource of this tenant: access tokens are issued for it")
        audit = self._audit(tenant, actor, "identity_token_audience.add", owner, audience=audience)
        if await self._store.add_identity_token_audience(tenant.id, _owner_type(owner), owner.id, audience, audit):
            self._on_change()

    async def disallow_identity_token_audience(self, tenant: Tenant, owner: Owner, audience: str, *,
                                               actor: str) -> None:
        audit = self._audit(tenant, actor, "identity_token_audience.remove", owner, audience=audience)
        kind = _owner_type(owner)
        if not await self._store.remove_identity_token_audience(tenant.id, kind, owner.id, audience, audit):
            raise NotFound("audience_not_found", f"that audience is not allowed for this {owner.kind}")
        self._on_change()

    def _audit(self, tenant: Tenant, actor: str, action: str, owner: Owner, **details: object) -> AuditEvent:
        return AuditEvent(time=self._clock.now(), tenant_id=tenant.id, actor=actor, action=action,
                          target_type=owner.kind, target_id=owner.id, details=dict(details))


def _replay(value: str) -> ReplayMode:
    for mode in REPLAY_MODES:
        if mode == value:
            return mode
    raise Invalid("invalid_replay", "replay must be reuse, jti or token")
