"""What services need from storage, one port per aggregate. `keyless.store` implements these (one
module per aggregate); each service depends only on the ports it uses.

Each write method is one transaction that also records its audit event, so a failed request changes
nothing and no change goes unaudited.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from keyless.domain.credentials import CredentialStore
from keyless.domain.leaks import LeakStore
from keyless.domain.model import (
    Application,
    AppRole,
    AuditEvent,
    ClientRecord,
    RoleAssignment,
    SignInEvent,
    SigningKey,
    Tenant,
)
from keyless.domain.policies import PolicyStore
from keyless.errors import KeylessError

__all__ = [
    "ApplicationReader", "ApplicationStore", "AssignmentStore", "CredentialStore", "DirectoryReader",
    "DirectoryStore", "LogQuery", "LogStore", "OneTimeUses", "SigningKeyReader", "SigningKeyStore",
    "TenantReader", "TenantStore", "UniqueViolation",
]


class UniqueViolation(KeylessError):
    """The store refused a write that would break a uniqueness rule (a race the caller lost)."""


@dataclass(frozen=True)
class LogQuery:
    tenant_id: str
    client_id: str | None = None
    result: str | None = None
    action: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 100
    before_seq: int | None = None  # only rows numbered below this (the next page, newest first)


class TenantReader(Protocol):
    async def get_tenant(self, name_or_id: str) -> Tenant | None: ...


class ApplicationReader(Protocol):
    async def get_application(self, tenant_id: str, client_id: str) -> Application | None: ...
    async def find_resource(self, tenant_id: str, identifier: str) -> Application | None: ...


class SigningKeyReader(Protocol):
    async def signing_keys(self, tenant_id: str) -> Sequence[SigningKey]: ...


class DirectoryReader(TenantReader, ApplicationReader, SigningKeyReader, Protocol):
    """The token path's reads (cached per process by `keyless.store.cache.CachedDirectory`)."""

    async def get_client(self, tenant_id: str, client_id: str) -> ClientRecord | None: ...
    async def assigned_roles(
        self, tenant_id: str, principal_object_id: str, resource_client_id: str
    ) -> tuple[str, ...] | None:
        """Role values assigned to the principal on the resource; None when it has no assignment."""
        ...


@runtime_checkable
class FreshClientReads(Protocol):
    """Offered by a reader that caches (`CachedDirectory`): a client record read from the store no
    earlier than `since`. A credential check that fails against a cached record asks once more with
    `since` = the request's arrival, so a secret or certificate created on another replica a moment
    before works at once, before that replica's change notification arrives (issue 16 item 3)."""

    async def get_client_since(self, tenant_id: str, client_id: str, since: float) -> ClientRecord | None: ...


class OneTimeUses(Protocol):
    async def consume(self, kind: str, owner: str, value: str, expires_at: float) -> bool:
        """Record a single-use value (an assertion's jti, a join token). True the first time only,
        across every replica: enforced by a unique insert in the shared store, never by memory.
        `kind` namespaces the values (catalog B09)."""
        ...


class TenantStore(TenantReader, Protocol):
    async def list_tenants(self) -> Sequence[Tenant]: ...
    async def create_tenant(self, tenant: Tenant, audit: AuditEvent) -> None: ...
    async def update_tenant(self, tenant: Tenant, audit: AuditEvent) -> None: ...


class ApplicationStore(ApplicationReader, Protocol):
    async def list_applications(self, tenant_id: str, *, after: tuple[float, str] | None = None,
                                limit: int | None = None) -> Sequence[Application]:
        """In creation order (`created_at`, then client id); `after`: only those past that key, and at most
        `limit` (a page, keyless.paging)."""
        ...

    async def named(self, tenant_id: str, display_name: str, *, limit: int = 2) -> Sequence[Application]:
        """Applications with exactly this display name (at most `limit`: two tell "ambiguous")."""
        ...

    async def create_application(self, app: Application, audit: AuditEvent) -> None: ...
    async def update_application(self, app: Application, audit: AuditEvent) -> None: ...
    async def add_role(self, tenant_id: str, client_id: str, role: AppRole, audit: AuditEvent) -> None: ...
    async def delete_application(self, tenant_id: str, client_id: str, audit: AuditEvent) -> bool:
        """The application with its roles, credentials of every kind and grants either way."""
        ...

    async def identifier_in_use(self, tenant_id: str, identifier_uri: str) -> bool: ...


class AssignmentStore(Protocol):
    async def list_assignments(
        self, tenant_id: str, *, principal_client_id: str | None = None, resource_client_id: str | None = None
    ) -> Sequence[RoleAssignment]: ...
    async def add_assignment(self, assignment: RoleAssignment, audit: AuditEvent) -> bool:
        """False when the same grant already exists (idempotent)."""
        ...

    async def remove_assignment(self, tenant_id: str, assignment_id: str, audit: AuditEvent) -> bool: ...


class SigningKeyStore(SigningKeyReader, Protocol):
    async def add_signing_key(self, key: SigningKey, audit: AuditEvent) -> None: ...
    async def retire_signing_key(self, tenant_id: str, kid: str, at: float, audit: AuditEvent) -> bool: ...


class LogStore(Protocol):
    async def record_signins(self, events: Sequence[SignInEvent]) -> None: ...
    async def query_signins(self, query: LogQuery) -> Sequence[SignInEvent]: ...
    async def query_audit(self, query: LogQuery) -> Sequence[AuditEvent]: ...
    async def record_audit(self, event: AuditEvent) -> None: ...


class DirectoryStore(
    DirectoryReader, OneTimeUses, TenantStore, ApplicationStore, CredentialStore, AssignmentStore,
    SigningKeyStore, LogStore, LeakStore, PolicyStore, Protocol,
):
    """Every directory port at once: what `keyless.store.directory.SqlDirectoryStore` offers the
    server's wiring. Services take the narrow ports above, never this."""
