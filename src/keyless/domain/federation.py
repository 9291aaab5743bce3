"""Federated identity credentials: which external issuer's tokens stand for which Keyless principal.

A credential belongs to an owner named by kind and id: `owner_type` "application" or "identity" (a
managed identity), `owner_id` the owner's client id. A managed identity is stored as an application,
but its credentials are kept under "identity": the kind says what was trusted, and the verifier
derives it from the client that signs in (`owner_type_of`), so a credential written for one kind is
never consulted for the other. The same table, rules and verifier serve both. Times are Unix epoch
seconds, as everywhere in the domain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from keyless.domain.model import Application, AuditEvent

OwnerType = Literal["application", "identity"]
# How often one external token may be exchanged. "reuse": any number of times within its capped
# lifetime (Kubernetes hands a pod one projected token for many exchanges, and unmodified clients
# re-send it). "jti": once per (issuer, jti); the token must carry a jti. "token": once per token,
# remembered by its SHA-256 until it expires.
ReplayMode = Literal["reuse", "jti", "token"]
REPLAY_MODES: tuple[ReplayMode, ...] = ("reuse", "jti", "token")
KEYLESS_EXCHANGE_AUDIENCE = "api://KeylessTokenExchange"
ENTRA_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"
DEFAULT_ALGORITHMS: tuple[str, ...] = ("RS256", "ES256")
# The longest `exp - iat` an external token may have: 1 hour unless a credential says otherwise
# (AKS workload identity and Kubernetes projected tokens use 1 hour, CI tokens minutes), and never
# over 24 hours; a credential above 1 hour gets a lint finding (docs/federation.md, issue 11).
DEFAULT_MAX_TOKEN_LIFETIME = 3600
MAX_TOKEN_LIFETIME_LIMIT = 86400


def owner_type_of(app: Application) -> OwnerType:
    """The owner kind whose federated credentials and identity-token audiences belong to this client."""
    return "identity" if app.managed_resource_id is not None else "application"


@dataclass(frozen=True)
class FederatedCredential:
    id: str
    tenant_id: str
    owner_type: OwnerType
    owner_id: str
    name: str
    issuer: str  # https, no query or fragment; compared as an exact string with the token's `iss`
    subject: str  # exact `sub`, or (subject_is_pattern) a pattern ending in `*` at a segment boundary
    audience: str  # exactly one; the token's `aud` must be exactly this
    subject_is_pattern: bool = False
    claims: Mapping[str, str] = field(default_factory=dict)  # extra exact-equality conditions
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    replay: ReplayMode = "reuse"
    max_token_lifetime: int = DEFAULT_MAX_TOKEN_LIFETIME
    description: str = ""
    created_at: float = 0.0


class FederationReader(Protocol):
    async def federated_credentials(
        self, tenant_id: str, owner_type: OwnerType, owner_id: str
    ) -> Sequence[FederatedCredential]: ...

    async def identity_token_audiences(self, tenant_id: str, owner_type: OwnerType, owner_id: str) -> frozenset[str]:
        """The audiences an owner may ask an outbound identity token for (deny by default)."""
        ...


class FederationStore(FederationReader, Protocol):
    async def list_federated_credentials(self, tenant_id: str) -> Sequence[FederatedCredential]: ...
    async def add_identity_token_audience(
        self, tenant_id: str, owner_type: OwnerType, owner_id: str, audience: str, audit: AuditEvent
    ) -> bool:
        """False when the audience is already allowed (idempotent)."""
        ...

    async def remove_identity_token_audience(
        self, tenant_id: str, owner_type: OwnerType, owner_id: str, audience: str, audit: AuditEvent
    ) -> bool: ...
