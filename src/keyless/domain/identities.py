"""Managed identities and the hosts that hold them (issue 4).

A managed identity is a service principal with no credential of its own: it is an `Application`
whose `managed_resource_id` is set, so role assignments, token claims and the token endpoint treat
it exactly as any application. What authenticates for it is a *host*: the host's agent signs client
assertions with a key generated on the host, certified by the local CA. A host may act for its
system-assigned identity (created and removed with the host) and for every user-assigned identity
assigned to it; the credential store answers that question (`store.credentials.entitled_certificates`)
on every token request, so removing a host or an assignment stops new tokens at once.

Workload bindings tell a host's agent which local callers (uid, gid, executable, systemd unit) may
use a user-assigned identity; the server stores them and the agent enforces them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from keyless.domain.credentials import TransactionStep
from keyless.domain.model import Application, AuditEvent

IdentityKind = Literal["system", "user"]
RESOURCE_PREFIX = "/tenants/{tenant}/providers/Keyless.ManagedIdentity"


def system_resource_id(tenant_id: str, host_name: str) -> str:
    return f"{RESOURCE_PREFIX.format(tenant=tenant_id)}/hosts/{host_name}"


def user_resource_id(tenant_id: str, name: str) -> str:
    return f"{RESOURCE_PREFIX.format(tenant=tenant_id)}/userAssignedIdentities/{name}"


@dataclass(frozen=True)
class Host:
    id: str
    tenant_id: str
    name: str
    system_client_id: str  # the host's system-assigned identity (an application)
    created_at: float
    enrolled_at: float | None = None
    join_expires_at: float | None = None  # a join token is pending until then
    join_digest: bytes | None = field(default=None, repr=False)  # keyed hash of the join token


@dataclass(frozen=True)
class ManagedIdentity:
    client_id: str
    object_id: str
    tenant_id: str
    name: str
    kind: IdentityKind
    resource_id: str  # `xms_mirid` of its tokens
    host_id: str | None  # the owning host, for system-assigned identities
    created_at: float


@dataclass(frozen=True)
class WorkloadBinding:
    """Local callers on one host that may use one user-assigned identity. Every selector that is set
    must match the caller; at least one is set."""

    id: str
    tenant_id: str
    host_id: str
    identity_client_id: str
    uid: int | None = None
    gid: int | None = None
    exe: str | None = None
    unit: str | None = None
    created_at: float = 0.0


class HostStore(Protocol):
    async def create_host(self, host: Host, identity_app: Application, identity: ManagedIdentity,
                          audit: AuditEvent) -> None: ...
    async def get_host(self, tenant_id: str, ref: str) -> Host | None:
        """By id or name."""
        ...

    async def host_for_identity(self, tenant_id: str, system_client_id: str) -> Host | None: ...
    async def list_hosts(self, tenant_id: str) -> Sequence[Host]: ...
    async def remove_host(self, tenant_id: str, host_id: str, audit: AuditEvent) -> bool:
        """The host, its certificates, assignments, bindings and its system-assigned identity."""
        ...

    async def set_join_token(self, host_id: str, digest: bytes, expires_at: float, audit: AuditEvent) -> None: ...
    def enrolling(self, host_id: str, at: float) -> TransactionStep:
        """The host row's part of an enrollment (enrolled at `at`, join token spent), to run inside
        the credential store's write of the host's first certificate; the step answers False when the
        host enrolled meanwhile (a race the caller lost)."""
        ...

    async def create_identity(self, identity_app: Application, identity: ManagedIdentity,
                              audit: AuditEvent) -> None: ...
    async def list_identities(self, tenant_id: str) -> Sequence[ManagedIdentity]: ...
    async def get_identity(self, tenant_id: str, ref: str) -> ManagedIdentity | None:
        """By client id, object id, resource id or name."""
        ...

    async def delete_identity(self, tenant_id: str, client_id: str, audit: AuditEvent) -> bool: ...
    async def assign(self, host_id: str, identity_client_id: str, created_at: float, audit: AuditEvent) -> bool:
        """False when already assigned."""
        ...

    async def unassign(self, host_id: str, identity_client_id: str, audit: AuditEvent) -> bool: ...
    async def host_identities(self, host_id: str) -> Sequence[ManagedIdentity]:
        """The system-assigned identity first, then the assigned user-assigned ones."""
        ...

    async def add_binding(self, binding: WorkloadBinding, audit: AuditEvent) -> None: ...
    async def list_bindings(self, tenant_id: str, *, host_id: str | None = None,
                            identity_client_id: str | None = None) -> Sequence[WorkloadBinding]: ...
    async def remove_binding(self, tenant_id: str, binding_id: str, audit: AuditEvent) -> bool: ...
