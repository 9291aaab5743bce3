"""Host and managed-identity use cases: hosts with their system-assigned identity, join tokens and
enrollment, host certificate renewal, user-assigned identities, assignments and workload bindings.

A managed identity is stored as an application (so grants, the token endpoint and the sign-in log
treat it like any client) plus its identity record; it never has a secret or a certificate of its
own. Hosts act for identities with their CA-issued host certificate (`keyless.domain.identities`),
issued and written through the credential service (`directory.credentials`), like every credential.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from keyless.clock import Clock
from keyless.crypto.ca import IssuedCert
from keyless.crypto.secrets import SecretHasher
from keyless.directory.credentials import CredentialService
from keyless.directory.errors import Conflict, Invalid, NotFound
from keyless.domain.identities import (
    Host,
    HostStore,
    ManagedIdentity,
    WorkloadBinding,
    system_resource_id,
    user_resource_id,
)
from keyless.domain.model import Application, AuditEvent, Certificate, Tenant
from keyless.domain.ports import OneTimeUses, UniqueViolation
from keyless.errors import KeylessError
from keyless.ids import is_guid, new_guid

JOIN_TOKEN_PREFIX = "kjt"  # noqa: S105 - the recognisable prefix of join tokens, not a secret
JOIN_TOKEN_KIND = "join_token"  # noqa: S105 - namespace in the single-use store
DEFAULT_JOIN_TTL = 15 * 60
MAX_JOIN_TTL = 24 * 3600
DEFAULT_HOST_CERT_DAYS = 7
MAX_BINDINGS_PER_HOST = 1000
_HOST_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{0,62}")
_IDENTITY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_UNIT = re.compile(r"[A-Za-z0-9:_.@\\-]{1,256}")


class HostDirectory(HostStore, OneTimeUses, Protocol):
    """What the host use cases need from storage."""


class JoinRefused(KeylessError):
    """Every failed enrollment looks the same to the caller: unknown host, wrong, expired or spent token."""


@dataclass(frozen=True)
class Enrollment:
    host: Host
    certificate: Certificate
    certificate_pem: bytes = field(repr=False)


def host_name(value: str) -> str:
    if not _HOST_NAME.fullmatch(value):
        raise Invalid("invalid_host_name", "host name must be lower-case letters, digits, '.' or '-' (at most 63)")
    return value


def identity_name(value: str) -> str:
    if not _IDENTITY_NAME.fullmatch(value) or is_guid(value):
        raise Invalid("invalid_identity_name",
                      "identity name must be letters, digits, '.', '_' or '-' (at most 128), and not a GUID")
    return value


def split_join_token(token: str) -> tuple[str, str] | None:
    """(tenant id, host id) of a well-formed join token `kjt.TENANT.HOST.SECRET`: the agent learns
    its tenant from the token alone; the server finds the host record by id."""
    parts = token.split(".")
    if (len(parts) != 4 or parts[0] != JOIN_TOKEN_PREFIX or not is_guid(parts[1]) or not is_guid(parts[2])
            or not 20 <= len(parts[3]) <= 128):
        return None
    return parts[1], parts[2]


class HostService:
    def __init__(self, store: HostDirectory, clock: Clock, hasher: SecretHasher,
                 on_change: Callable[[], None] = lambda: None, *, credentials: CredentialService) -> None:
        self._store = store
        self._credentials = credentials
        self._clock = clock
        self._hasher = hasher
        self._on_change = on_change

    def _audit(self, tenant_id: str, actor: str, action: str, target_type: str, target_id: str,
               **details: object) -> AuditEvent:
        return AuditEvent(time=self._clock.now(), tenant_id=tenant_id, actor=actor, action=action,
                          target_type=target_type, target_id=target_id, details=dict(details))

    def _identity_app(self, tenant: Tenant, display_name: str, resource_id: str) -> Application:
        return Application(client_id=new_guid(), tenant_id=tenant.id, display_name=display_name,
                           object_id=new_guid(), created_at=self._clock.now(), managed_resource_id=resource_id)

    # -- hosts -------------------------------------------------------------------------------------
    def _join_token(self, tenant: Tenant, host_id: str, ttl: int) -> tuple[str, bytes, float]:
        if not 60 <= ttl <= MAX_JOIN_TTL:
            raise Invalid("invalid_join_ttl", "a join token lives between 1 minute and 24 hours")
        token = f"{JOIN_TOKEN_PREFIX}.{tenant.id}.{host_id}.{secrets.token_urlsafe(32)}"
        return token, self._hasher.digest(token), self._clock.now() + ttl

    async def add_host(self, tenant: Tenant, name: str, *, actor: str,
                       join_ttl: int = DEFAULT_JOIN_TTL) -> tuple[Host, ManagedIdentity, str]:
        """A host record with its system-assigned identity, and a join token (returned only here)."""
        name = host_name(name)
        if await self._store.get_host(tenant.id, name) is not None:
            raise Conflict("host_exists", "a host with that name exists")
        host_id = new_guid()
        token, digest, expires_at = self._join_token(tenant, host_id, join_ttl)
        resource_id = system_resource_id(tenant.id, name)
        app = self._identity_app(tenant, f"host:{name}", resource_id)
        identity = ManagedIdentity(client_id=app.client_id, object_id=app.object_id, tenant_id=tenant.id, name=name,
                                   kind="system", resource_id=resource_id, host_id=host_id, created_at=app.created_at)
        host = Host(id=host_id, tenant_id=tenant.id, name=name, system_client_id=app.client_id,
                    created_at=app.created_at, join_expires_at=expires_at, join_digest=digest)
        try:
            await self._store.create_host(host, app, identity, self._audit(
                tenant.id, actor, "host.add", "host", host_id, name=name, system_client_id=app.client_id,
                join_expires_at=expires_at))
        except UniqueViolation:
            raise Conflict("host_exists", "a host with that name exists") from None
        self._on_change()
        return host, identity, token

    async def host(self, tenant: Tenant, ref: str) -> Host:
        host = await self._store.get_host(tenant.id, ref)
        if host is None:
            raise NotFound("host_not_found", "no such host in this tenant")
        return host

    async def list_hosts(self, tenant: Tenant) -> Sequence[Host]:
        return await self._store.list_hosts(tenant.id)

    async def new_join_token(self, tenant: Tenant, ref: str, *, actor: str,
                             join_ttl: int = DEFAULT_JOIN_TTL) -> tuple[Host, str]:
        """A fresh join token for a host that has not enrolled yet (the previous one stops working)."""
        host = await self.host(tenant, ref)
        if host.enrolled_at is not None:
            raise Conflict("host_enrolled", "the host has enrolled; remove and add it again to re-enroll")
        token, digest, expires_at = self._join_token(tenant, host.id, join_ttl)
        await self._store.set_join_token(host.id, digest, expires_at, self._audit(
            tenant.id, actor, "host.join_token", "host", host.id, join_expires_at=expires_at))
        return replace(host, join_expires_at=expires_at, join_digest=digest), token

    async def remove_host(self, tenant: Tenant, ref: str, *, actor: str) -> Host:
        """The host stops getting tokens at once: its certificates no longer authenticate anything."""
        host = await self.host(tenant, ref)
        if not await self._store.remove_host(tenant.id, host.id, self._audit(
                tenant.id, actor, "host.remove", "host", host.id, name=host.name)):
            raise NotFound("host_not_found", "no such host in this tenant")
        self._on_change()
        return host

    # -- enrollment and renewal (called by agents, not admins) -------------------------------------
    async def enroll(self, tenant: Tenant, join_token: str, csr: bytes, *, ca: IssuedCert,
                     days: int = DEFAULT_HOST_CERT_DAYS) -> Enrollment:
        """Spend a join token on a certificate for the key in `csr` (made on the host; the server
        never sees the private key). Raises `JoinRefused` for any token problem."""
        parsed = split_join_token(join_token)
        if parsed is None or parsed[0] != tenant.id:
            raise JoinRefused
        host = await self._store.get_host(tenant.id, parsed[1])
        now = self._clock.now()
        if (host is None or host.join_digest is None or host.join_expires_at is None
                or host.enrolled_at is not None or now >= host.join_expires_at):
            raise JoinRefused
        digest = self._hasher.digest(join_token)
        if not SecretHasher.matches(digest, host.join_digest):
            raise JoinRefused
        cert, pem = self._credentials.issue_host_certificate(ca, csr, host, days)  # a bad CSR does not spend the token
        host_id, join_expires_at = host.id, host.join_expires_at
        enrolled = await self._credentials.record_host_certificate(
            tenant, host, cert, "host.enroll",
            # nor does a refusal by policy: that comes first
            first=lambda: self._store.consume(JOIN_TOKEN_KIND, host_id, digest.hex(), join_expires_at),
            within=self._store.enrolling(host_id, cert.created_at))
        if not enrolled:
            raise JoinRefused
        return Enrollment(host=host, certificate=cert, certificate_pem=pem)

    async def renew(self, tenant: Tenant, host: Host, used_certificate_id: str, csr: bytes, *, ca: IssuedCert,
                    days: int = DEFAULT_HOST_CERT_DAYS) -> Enrollment:
        """A new certificate for a new host key. The certificate that signed this request stays valid
        (requests already signed with it still succeed); any older one is dropped."""
        cert, pem = self._credentials.issue_host_certificate(ca, csr, host, days)
        await self._credentials.record_host_certificate(tenant, host, cert, "host.renew", keep=used_certificate_id)
        return Enrollment(host=host, certificate=cert, certificate_pem=pem)

    async def host_for_identity(self, tenant: Tenant, system_client_id: str) -> Host | None:
        return await self._store.host_for_identity(tenant.id, system_client_id)

    async def host_certificates(self, host: Host) -> Sequence[Certificate]:
        return await self._credentials.host_certificates(host)

    # -- identities --------------------------------------------------------------------------------
    async def create_identity(self, tenant: Tenant, name: str, *, actor: str) -> ManagedIdentity:
        name = identity_name(name)
        if await self._store.get_identity(tenant.id, name) is not None:
            raise Conflict("identity_exists", "a user-assigned identity with that name exists")
        resource_id = user_resource_id(tenant.id, name)
        app = self._identity_app(tenant, name, resource_id)
        identity = ManagedIdentity(client_id=app.client_id, object_id=app.object_id, tenant_id=tenant.id, name=name,
                                   kind="user", resource_id=resource_id, host_id=None, created_at=app.created_at)
        try:
            await self._store.create_identity(app, identity, self._audit(
                tenant.id, actor, "identity.create", "identity", app.client_id, name=name, resource_id=resource_id))
        except UniqueViolation:
            raise Conflict("identity_exists", "a user-assigned identity with that name exists") from None
        self._on_change()
        return identity

    async def identity(self, tenant: Tenant, ref: str) -> ManagedIdentity:
        found = await self._store.get_identity(tenant.id, ref)
        if found is None:
            raise NotFound("identity_not_found", "no such managed identity in this tenant")
        return found

    async def list_identities(self, tenant: Tenant) -> Sequence[ManagedIdentity]:
        return await self._store.list_identities(tenant.id)

    async def delete_identity(self, tenant: Tenant, ref: str, *, actor: str) -> ManagedIdentity:
        identity = await self.identity(tenant, ref)
        if identity.kind == "system":
            raise Conflict("system_assigned", "a system-assigned identity goes away with its host: remove the host")
        await self._store.delete_identity(tenant.id, identity.client_id, self._audit(
            tenant.id, actor, "identity.delete", "identity", identity.client_id, name=identity.name))
        self._on_change()
        return identity

    async def _user_identity(self, tenant: Tenant, ref: str) -> ManagedIdentity:
        identity = await self.identity(tenant, ref)
        if identity.kind != "user":
            raise Invalid("system_assigned", "only user-assigned identities can be assigned or bound")
        return identity

    async def assign(self, tenant: Tenant, identity_ref: str, host_ref: str, *, actor: str) -> ManagedIdentity:
        """Let a host act for a user-assigned identity. Assigning twice is not an error."""
        identity = await self._user_identity(tenant, identity_ref)
        host = await self.host(tenant, host_ref)
        if await self._store.assign(host.id, identity.client_id, self._clock.now(), self._audit(
                tenant.id, actor, "identity.assign", "identity", identity.client_id, host_id=host.id)):
            self._on_change()
        return identity

    async def unassign(self, tenant: Tenant, identity_ref: str, host_ref: str, *, actor: str) -> None:
        identity = await self._user_identity(tenant, identity_ref)
        host = await self.host(tenant, host_ref)
        if not await self._store.unassign(host.id, identity.client_id, self._audit(
                tenant.id, actor, "identity.unassign", "identity", identity.client_id, host_id=host.id)):
            raise NotFound("assignment_not_found", "the identity is not assigned to that host")
        self._on_change()

    async def host_identities(self, host: Host) -> Sequence[ManagedIdentity]:
        return await self._store.host_identities(host.id)

    # -- bindings ----------------------------------------------------------------------------------
    async def bind(self, tenant: Tenant, identity_ref: str, host_ref: str, *, actor: str, uid: int | None = None,
                   gid: int | None = None, exe: str | None = None, unit: str | None = None) -> WorkloadBinding:
        """Let local callers that match every given selector use the identity on that host."""
        identity = await self._user_identity(tenant, identity_ref)
        host = await self.host(tenant, host_ref)
        if uid is None and gid is None and exe is None and unit is None:
            raise Invalid("no_selector", "give at least one of uid, gid, exe, unit")
        for number, what in ((uid, "uid"), (gid, "gid")):
            if number is not None and not 0 <= number < 2**31:
                raise Invalid("invalid_selector", f"{what} must be a non-negative integer")
        if exe is not None and (not exe.startswith("/") or len(exe) > 1024 or not exe.isprintable()):
            raise Invalid("invalid_selector", "exe must be an absolute path")
        if unit is not None and not _UNIT.fullmatch(unit):
            raise Invalid("invalid_selector", "unit must be a systemd unit name")
        if identity.client_id not in {i.client_id for i in await self._store.host_identities(host.id)}:
            raise Conflict("not_assigned", "assign the identity to the host first (keyless identity assign)")
        if len(await self._store.list_bindings(tenant.id, host_id=host.id)) >= MAX_BINDINGS_PER_HOST:
            raise Conflict("too_many_bindings", f"at most {MAX_BINDINGS_PER_HOST} bindings per host")
        binding = WorkloadBinding(id=new_guid(), tenant_id=tenant.id, host_id=host.id,
                                  identity_client_id=identity.client_id, uid=uid, gid=gid, exe=exe, unit=unit,
                                  created_at=self._clock.now())
        await self._store.add_binding(binding, self._audit(
            tenant.id, actor, "identity.bind", "identity", identity.client_id, host_id=host.id, binding_id=binding.id,
            uid=uid, gid=gid, exe=exe, unit=unit))
        return binding

    async def list_bindings(self, tenant: Tenant, *, host: Host | None = None,
                            identity: ManagedIdentity | None = None) -> Sequence[WorkloadBinding]:
        return await self._store.list_bindings(tenant.id, host_id=host.id if host else None,
                                               identity_client_id=identity.client_id if identity else None)

    async def unbind(self, tenant: Tenant, binding_id: str, *, actor: str) -> None:
        if not await self._store.remove_binding(tenant.id, binding_id, self._audit(
                tenant.id, actor, "identity.unbind", "binding", binding_id)):
            raise NotFound("binding_not_found", "no such binding")
