"""One credential model for every owner kind.

A credential is what a principal authenticates with: a client **secret**, a **certificate** (the
key stays with the owner), or a **federated** identity credential (another issuer's token stands
for the principal, docs/federation.md). Its owner is an application, a managed identity, or a
host (a host's certificate authenticates for every identity the host may act for,
`keyless.domain.identities`). Whatever the kind, a credential has the same lifetime (created, not
before, expires), last use and state, so an inventory, a policy or an expiry rule is written once
against `Credential` and applies to every kind and owner alike.

The kind-specific records (`ClientSecret`, `Certificate` of an application, identity or host, and
`FederatedCredential`) carry what authentication itself needs (a keyed hash, a DER certificate, a
subject rule); `Credential` is their common view, built by `credential_of`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from keyless.domain.federation import FederatedCredential, OwnerType
from keyless.domain.model import AuditEvent, Certificate, ClientSecret

OwnerKind = Literal["application", "identity", "host"]
CredentialKind = Literal["secret", "certificate", "federated"]
CredentialState = Literal["active", "not_yet_valid", "expired", "revoked"]
OWNER_KINDS: tuple[OwnerKind, ...] = ("application", "identity", "host")


@dataclass(frozen=True)
class Owner:
    """Who a credential belongs to: an application or a managed identity (by client id), or a host
    (by host id)."""

    kind: OwnerKind
    id: str


@dataclass(frozen=True)
class Credential:
    """The common view of any credential: never holds secret material (a secret's hint at most)."""

    id: str
    kind: CredentialKind
    owner: Owner
    display_name: str
    created_at: float
    expires_at: float | None = None  # None: no expiry of its own (a federated credential)
    not_before: float | None = None
    last_used_at: float | None = None
    revoked_at: float | None = None
    last_used_from: str | None = None  # the source address of that last sign-in
    # What an admin recognises it by: a secret's hint, a certificate's x5t#S256, a federated
    # credential's issuer and subject.
    label: str = ""

    def state(self, now: float) -> CredentialState:
        if self.revoked_at is not None and self.revoked_at <= now:
            return "revoked"
        if self.not_before is not None and now < self.not_before:
            return "not_yet_valid"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "active"

    def expires_within(self, now: float, seconds: float) -> bool:
        """Active now and expiring in the next `seconds` (what an expiry notice looks for)."""
        return self.state(now) == "active" and self.expires_at is not None and self.expires_at - now <= seconds


def credential_of(
    record: ClientSecret | Certificate | FederatedCredential, *,
    owner_kind: OwnerKind = "application", revoked_at: float | None = None,
) -> Credential:
    """The common view of a kind-specific record. `owner_kind` tells an identity's client id from an
    application's (a host certificate and a federated credential know their owner kind)."""
    if isinstance(record, ClientSecret):
        return Credential(
            id=record.id, kind="secret", owner=Owner(owner_kind, record.client_id), display_name=record.display_name,
            created_at=record.created_at, expires_at=record.expires_at, last_used_at=record.last_used_at,
            revoked_at=revoked_at, label=record.hint,
        )
    if isinstance(record, Certificate):
        host = record.owner_kind == "host"
        return Credential(
            id=record.id, kind="certificate", owner=Owner("host" if host else owner_kind, record.owner_id),
            display_name="host certificate" if host else record.display_name, created_at=record.created_at,
            expires_at=record.not_after, not_before=record.not_before,
            last_used_at=None if host else record.last_used_at, revoked_at=revoked_at, label=record.x5t_s256,
        )
    return Credential(
        id=record.id, kind="federated", owner=Owner(record.owner_type, record.owner_id), display_name=record.name,
        created_at=record.created_at, label=f"{record.issuer} {record.subject}",
    )


@dataclass(frozen=True)
class LastUse:
    """A credential's latest successful sign-in: when, and from which address (as the server saw it)."""

    at: float
    source: str | None = None


def latest_uses(
    uses: Sequence[tuple[CredentialKind, str, float, str | None]],
) -> dict[CredentialKind, dict[str, LastUse]]:
    """The latest use per credential, by kind, out of a batch of (kind, id, time, source)."""
    latest: dict[CredentialKind, dict[str, LastUse]] = {}
    for kind, credential_id, at, source in uses:
        seen = latest.setdefault(kind, {})
        if credential_id not in seen or seen[credential_id].at < at:
            seen[credential_id] = LastUse(at, source)
    return latest


class Transaction(Protocol):
    """The store's open transaction, opaque above the store. A credential write that belongs to
    another aggregate's change (a host's enrollment) takes that change as a `TransactionStep`."""


# Runs first inside the credential write's transaction; False rolls everything back (the write does
# not happen and no audit record is written).
TransactionStep = Callable[[Transaction], Awaitable[bool]]


class CredentialStore(Protocol):
    """The one writer of every credential kind (secret, certificate, federated) for every owner kind
    (application, identity, host): each add, revocation and removal is one transaction with its
    audit record (and the notification events the record carries). A change of another aggregate
    that must commit with a credential write runs inside it (`within`); an owner's deletion drops
    its credentials through this store's module too. Read back as one inventory (`credentials`)."""

    async def credentials(self, tenant_id: str, owner: Owner | None = None) -> Sequence[Credential]:
        """Every unrevoked credential of the tenant (or of one owner), of every kind, oldest first."""
        ...

    async def list_secrets(self, tenant_id: str, client_id: str) -> Sequence[ClientSecret]: ...
    async def add_secret(self, tenant_id: str, secret: ClientSecret, audit: AuditEvent) -> None: ...
    async def revoke_secret(self, tenant_id: str, client_id: str, secret_id: str, audit: AuditEvent) -> bool: ...

    async def list_certificates(self, tenant_id: str, client_id: str) -> Sequence[Certificate]: ...
    async def host_certificates(self, host_id: str) -> Sequence[Certificate]: ...
    async def add_certificate(self, tenant_id: str, certificate: Certificate, audit: AuditEvent, *,
                              within: TransactionStep | None = None, keep: str | None = None,
                              ca_verdict: tuple[bool, str] | None = None) -> bool:
        """Add a certificate of any owner kind. `within` runs first in the same transaction (False:
        nothing is written, False returned); `keep`, for a host's renewal, drops the owner's other
        certificates but that one (the certificate the renewal was signed with); `ca_verdict`, whether
        the installation's CA issued it and that CA's x5t#S256, is kept with it (migration 0017)."""
        ...

    async def revoke_certificate(
        self, tenant_id: str, client_id: str, certificate_id: str, audit: AuditEvent
    ) -> bool: ...

    async def add_federated_credential(self, credential: FederatedCredential, audit: AuditEvent) -> None:
        """Raises `UniqueViolation` when the owner already has a credential of that name."""
        ...

    async def remove_federated_credential(
        self, tenant_id: str, owner_type: OwnerType, owner_id: str, credential_id: str, audit: AuditEvent
    ) -> bool: ...

    async def disable_unused(self, tenant_id: str, credential: Credential, used_before: float,
                             audit: AuditEvent) -> bool:
        """Revoke an application's or identity's secret or certificate only if it is still active
        and unused since `used_before` (a sign-in between a scan and now saves it)."""
        ...

    async def revoked_before(self, tenant_id: str,
                             before: float) -> Sequence[tuple[CredentialKind, str, str, float]]:
        """(kind, id, owner client id, revoked at) of the secrets and certificates revoked before `before`."""
        ...

    async def delete_revoked(self, tenant_id: str, kind: CredentialKind, credential_id: str, owner_id: str,
                             before: float, audit: AuditEvent) -> bool: ...

    async def mark_used(self, kind: CredentialKind, uses: Mapping[str, LastUse]) -> None:
        """Move each credential's last use forward (batches may arrive out of order); written in
        batches off the token path (`keyless.server.signin_log`), for every kind."""
        ...
