"""Credential use cases (`keyless.domain.credentials`): the inventory of every credential of every
owner kind; an application's client secrets and certificates, within the tenant's lifetime limits
and the per-application counts (nobody may revoke their own last credential); and the certificates
the local CA issues, for applications and for hosts (agent enrollment and renewal go through
here too). Managed identities hold none of their own: their hosts authenticate for them
(`directory.hosts`).

Two funnels, one for each direction, so a rule added in one place applies to every kind and owner:
every new credential (an application's secret or certificate here, a federated credential from
`directory.federation`, a host certificate at enrollment and renewal from `directory.hosts`) is
written through `record`, where the credential policy (docs/policies.md) is asked, the audit record
is completed with the audit-mode rules the credential breaks and their `policy.violation` notice,
and the caches are told; every revocation and removal (by an admin, by federation's remove, by
the reaper, by a leak report) goes through `retire`, which has the store write the change with its
audit record and events in one transaction and tells the caches. Both write only through the one
credential store (`CredentialStore`); a host's enrollment runs its host-row change inside that
store's transaction (`within`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import TypeVar

from keyless.clock import Clock
from keyless.crypto import secrets as secret_format
from keyless.crypto.ca import IssuedCert, issue_client_certificate
from keyless.crypto.certificates import CertificateRejected, load_certificate
from keyless.crypto.secrets import SecretHasher
from keyless.directory.applications import ApplicationService
from keyless.directory.base import UseCases, _nothing
from keyless.directory.errors import Conflict, Invalid, NotFound
from keyless.directory.policies import PolicyService, audit_details, with_notice
from keyless.directory.tenants import HARD_MAX_SECRET_LIFETIME
from keyless.domain.credentials import Credential, CredentialKind, CredentialStore, Owner, TransactionStep
from keyless.domain.federation import FederatedCredential
from keyless.domain.identities import Host
from keyless.domain.model import Application, AuditEvent, Certificate, ClientSecret, Tenant
from keyless.domain.policies import CredentialFacts
from keyless.ids import new_guid

MAX_SECRETS_PER_APP = 10
MAX_CERTIFICATES_PER_APP = 10
T = TypeVar("T")


class CredentialService(UseCases):
    def __init__(self, store: CredentialStore, apps: ApplicationService, clock: Clock, hasher: SecretHasher,
                 on_change: Callable[[], None] = _nothing, policies: PolicyService | None = None) -> None:
        super().__init__(clock, on_change)
        self._store = store
        self._apps = apps
        self._hasher = hasher
        self.policies = policies

    async def _admit(self, tenant: Tenant, owner: str | None, facts: CredentialFacts) -> dict[str, object]:
        """The credential policy's word on a new credential (`PolicyRefused` when an enforced rule
        forbids it): the audit details naming the audit-mode rules it breaks."""
        if self.policies is None:
            return {}
        return audit_details(await self.policies.check_write(tenant, owner, facts))

    def _ca_verdict(self, der: bytes, issued_by_ca: bool) -> tuple[bool, str | None]:
        """Whether the installation's CA issued the certificate, and which CA that verdict is about (its
        x5t#S256; None without a CA to check against). Kept with the row (`ca_issued`, `ca_checked`,
        migration 0017), so the posture report does not check a new certificate's signature again."""
        check = self.policies.internal_ca if self.policies is not None else None
        if check is None:
            return issued_by_ca, None
        return issued_by_ca or check(der), check.ca_thumbprint

    async def record(self, tenant: Tenant, owner: str | None, facts: CredentialFacts, audit: AuditEvent,
                     credential_id: str, write: Callable[[AuditEvent], Awaitable[T]]) -> T:
        """Write one new credential of any kind and owner: `PolicyRefused` (before anything is written)
        when an enforced rule forbids it; else `write` gets `audit` completed with the audit-mode rules
        it breaks and their notice (written in the same transaction), and the caches hear of it.
        `owner` is the client id the policy is looked up for (None: the tenant's default policy)."""
        noted = await self._admit(tenant, owner, facts)
        completed = replace(audit, details={**audit.details, **noted}) if noted else audit
        result = await write(with_notice(completed, credential_id, facts.kind))
        self._on_change()
        return result

    async def retire(self, audit: AuditEvent, write: Callable[[AuditEvent], Awaitable[T]], *,
                     changed: Callable[[T], bool] = bool) -> T:
        """End one credential of any kind and owner (revoke, remove, disable, delete): `write` has the
        credential store make the change with `audit` (and the events it carries) in one transaction;
        the caches hear of it when `changed` says the write changed something."""
        result = await write(audit)
        if changed(result):
            self._on_change()
        return result

    async def record_host_certificate(
        self, tenant: Tenant, host: Host, cert: Certificate, action: str, *, within: TransactionStep | None = None,
        keep: str | None = None, first: Callable[[], Awaitable[bool]] | None = None,
    ) -> bool:
        """Agent enrollment and renewal (`action`): a host certificate answers to the tenant's default
        policy; the host is the actor and the target of the audit record. `first` runs once the policy
        has admitted the certificate and before it is written (spending a join token: neither a bad
        CSR nor a refusal spends it); `within` and `keep` as `CredentialStore.add_certificate`. False
        when `first` or `within` said no (nothing written)."""
        facts = CredentialFacts("certificate", cert.id, lifetime=cert.not_after - cert.not_before,
                                key_type=cert.key_type, key_size=cert.key_size, from_internal_ca=True)
        audit = self._audit(tenant.id, f"host:{host.name}", action, "host", host.id, certificate_id=cert.id,
                            x5t_s256=cert.x5t_s256, not_after=cert.not_after)

        async def write(completed: AuditEvent) -> bool:
            if first is not None and not await first():
                return False
            return await self._store.add_certificate(tenant.id, cert, completed, within=within, keep=keep)

        return await self.record(tenant, None, facts, audit, cert.id, write)

    async def host_certificates(self, host: Host) -> Sequence[Certificate]:
        return await self._store.host_certificates(host.id)

    # -- federated credentials (validated by `directory.federation`) ---------------------------------
    async def add_federated(self, tenant: Tenant, credential: FederatedCredential, facts: CredentialFacts,
                            audit: AuditEvent) -> None:
        """Raises `UniqueViolation` when the owner already has a credential of that name."""
        await self.record(tenant, credential.owner_id, facts, audit, credential.id,
                          lambda completed: self._store.add_federated_credential(credential, completed))

    async def remove_federated(self, tenant: Tenant, credential: FederatedCredential, audit: AuditEvent) -> bool:
        c = credential
        return await self.retire(audit, lambda a: self._store.remove_federated_credential(
            tenant.id, c.owner_type, c.owner_id, c.id, a))

    # -- reaping (`directory.reaping` decides; the store re-checks disuse in its transaction) --------
    async def disable_unused(self, tenant_id: str, credential: Credential, used_before: float,
                             audit: AuditEvent) -> bool:
        return await self.retire(audit, lambda a: self._store.disable_unused(tenant_id, credential, used_before, a))

    async def revoked_before(self, tenant_id: str,
                             before: float) -> Sequence[tuple[CredentialKind, str, str, float]]:
        return await self._store.revoked_before(tenant_id, before)

    async def delete_revoked(self, tenant_id: str, kind: CredentialKind, credential_id: str, owner_id: str,
                             before: float, audit: AuditEvent) -> bool:
        return await self.retire(audit, lambda a: self._store.delete_revoked(tenant_id, kind, credential_id,
                                                                            owner_id, before, a))

    async def inventory(self, tenant: Tenant, *, owner: Owner | None = None, expiring_within: float | None = None,
                        unused_for: float | None = None, kind: str | None = None, owner_kind: str | None = None,
                        state: str | None = None) -> Sequence[Credential]:
        """Every unrevoked credential of the tenant (or of one owner), of every kind and owner kind,
        oldest first; each filter narrows it: `expiring_within` (active and expiring within that many
        seconds), `unused_for` (no sign-in for that many seconds; never used: made that long ago),
        `kind`, `owner_kind`, `state` (active, not_yet_valid, expired)."""
        found = await self._store.credentials(tenant.id, owner)
        now = self._clock.now()
        return [c for c in found
                if (expiring_within is None or c.expires_within(now, expiring_within))
                and (unused_for is None or now - (c.last_used_at or c.created_at) >= unused_for)
                and (kind is None or c.kind == kind) and (owner_kind is None or c.owner.kind == owner_kind)
                and (state is None or c.state(now) == state)]

    def issue_host_certificate(self, ca: IssuedCert, csr: bytes, host: Host,
                               days: int) -> tuple[Certificate, bytes]:
        """A certificate from the local CA for the key in `csr`, made on the host (the server never
        sees the private key); the caller records it with the enrollment or renewal it belongs to."""
        now = self._clock.now()
        try:
            pem = issue_client_certificate(ca, csr, common_name=f"host:{host.name}", now=now, days=days,
                                           max_days=days)
            info = load_certificate(pem)
        except CertificateRejected as exc:
            raise Invalid(exc.code, exc.message) from None
        cert = Certificate(
            id=new_guid(), owner_id=host.id, owner_kind="host", x5t=info.x5t, x5t_s256=info.x5t_s256, der=info.der,
            subject=info.subject[:512], key_type=info.key_type, key_size=info.key_size,
            not_before=info.not_before, not_after=info.not_after, created_at=now,
        )
        return cert, pem

    @staticmethod
    def _credential_holder(app: Application) -> Application:
        """Managed identities hold no credential: their hosts authenticate for them."""
        if app.managed_resource_id is not None:
            raise Conflict("managed_identity", "a managed identity has no secrets or certificates of its own")
        return app

    async def add_secret(
        self, tenant: Tenant, client_id: str, *, actor: str, expires_in: int | None = None,
        display_name: str = "",
    ) -> tuple[ClientSecret, str]:
        """Returns the stored record and the plaintext, which exists only in this return value."""
        app = self._credential_holder(await self._apps.application(tenant, client_id))
        lifetime = tenant.default_secret_lifetime if expires_in is None else expires_in
        if not 60 <= lifetime <= min(tenant.max_secret_lifetime, HARD_MAX_SECRET_LIFETIME):
            raise Invalid("invalid_secret_lifetime",
                          f"secret lifetime must be between 1 minute and {tenant.max_secret_lifetime // 86400} days")
        live = [s for s in await self._store.list_secrets(tenant.id, client_id) if s.usable_at(self._clock.now())]
        if len(live) >= MAX_SECRETS_PER_APP:
            raise Conflict("too_many_secrets", f"at most {MAX_SECRETS_PER_APP} live secrets; revoke one first")
        plaintext = secret_format.new_client_secret()
        now = self._clock.now()
        record = ClientSecret(
            id=new_guid(), client_id=app.client_id, hint=secret_format.hint(plaintext),
            digest=self._hasher.digest(plaintext), pepper_id=self._hasher.pepper_id, created_at=now,
            expires_at=now + lifetime, display_name=display_name[:256],
        )
        await self.record(
            tenant, client_id, CredentialFacts("secret", lifetime=lifetime),
            self._audit(tenant.id, actor, "secret.add", "application", client_id, secret_id=record.id,
                        hint=record.hint, expires_at=record.expires_at), record.id,
            lambda audit: self._store.add_secret(tenant.id, record, audit),
        )
        return record, plaintext

    async def list_secrets(self, tenant: Tenant, client_id: str) -> Sequence[ClientSecret]:
        await self._apps.application(tenant, client_id)
        return await self._store.list_secrets(tenant.id, client_id)

    async def revoke_secret(self, tenant: Tenant, client_id: str, secret_id: str, *, actor: str) -> None:
        if client_id == actor:
            live: list[object] = [s for s in await self._store.list_secrets(tenant.id, client_id)
                                  if s.usable_at(self._clock.now()) and s.id != secret_id]
            live += [c for c in await self._store.list_certificates(tenant.id, client_id)
                     if c.valid_at(self._clock.now())]
            if not live:
                raise Conflict("would_lock_out", "this is the caller's last live secret: add another one first")
        audit = self._audit(tenant.id, actor, "secret.revoke", "application", client_id, secret_id=secret_id)
        if not await self.retire(audit, lambda a: self._store.revoke_secret(tenant.id, client_id, secret_id, a)):
            raise NotFound("secret_not_found", "no such live secret on this application")

    # -- certificates ------------------------------------------------------------------------------
    async def add_certificate(
        self, tenant: Tenant, client_id: str, data: bytes, *, actor: str, display_name: str = "",
        issued_by_ca: bool = False,
    ) -> Certificate:
        """Register a certificate (never a key: uploads holding one are refused, B27 key policy)."""
        app = self._credential_holder(await self._apps.application(tenant, client_id))
        now = self._clock.now()
        try:
            info = load_certificate(data, now=now)
        except CertificateRejected as exc:
            raise Invalid(exc.code, exc.message) from None
        if info.not_after - info.not_before > tenant.max_certificate_lifetime:
            raise Invalid("certificate_lifetime_too_long",
                          f"the tenant allows certificates valid for at most "
                          f"{tenant.max_certificate_lifetime // 86400} days")
        from_ca, checked_by = self._ca_verdict(info.der, issued_by_ca)
        facts = CredentialFacts(
            "certificate", lifetime=info.not_after - info.not_before, key_type=info.key_type, key_size=info.key_size,
            from_internal_ca=from_ca)
        live = await self._store.list_certificates(tenant.id, client_id)
        if any(c.x5t_s256 == info.x5t_s256 for c in live):
            raise Conflict("certificate_exists", "this certificate is already registered on the application")
        if len(live) >= MAX_CERTIFICATES_PER_APP:
            raise Conflict("too_many_certificates",
                           f"at most {MAX_CERTIFICATES_PER_APP} certificates per application; revoke one first")
        cert = Certificate(
            id=new_guid(), owner_id=app.client_id, x5t=info.x5t, x5t_s256=info.x5t_s256, der=info.der,
            subject=info.subject[:512], key_type=info.key_type, key_size=info.key_size,
            not_before=info.not_before, not_after=info.not_after, created_at=now, display_name=display_name[:256],
        )
        await self.record(
            tenant, client_id, facts,
            self._audit(tenant.id, actor, "certificate.add", "application", client_id, certificate_id=cert.id,
                        x5t_s256=cert.x5t_s256, not_after=cert.not_after, key_type=cert.key_type,
                        key_size=cert.key_size, issued_by_ca=issued_by_ca), cert.id,
            lambda audit: self._store.add_certificate(
                tenant.id, cert, audit, ca_verdict=None if checked_by is None else (from_ca, checked_by)),
        )
        return cert

    async def issue_certificate(
        self, tenant: Tenant, client_id: str, csr: bytes, *, actor: str, ca: IssuedCert, days: int = 90,
        display_name: str = "",
    ) -> tuple[Certificate, bytes]:
        """Sign a CSR with the local CA for this application and register the result. The requester
        made the key pair; the CA decides the subject, lifetime and extensions."""
        app = await self._apps.application(tenant, client_id)
        max_days = max(1, tenant.max_certificate_lifetime // 86400)
        if not 1 <= days <= max_days:
            raise Invalid("invalid_certificate_lifetime", f"days must be between 1 and {max_days}")
        try:
            pem = issue_client_certificate(ca, csr, common_name=app.display_name[:64] or app.client_id,
                                           now=self._clock.now(), days=days, max_days=max_days)
        except CertificateRejected as exc:
            raise Invalid(exc.code, exc.message) from None
        cert = await self.add_certificate(tenant, client_id, pem, actor=actor, display_name=display_name,
                                          issued_by_ca=True)
        return cert, pem

    async def list_certificates(self, tenant: Tenant, client_id: str) -> Sequence[Certificate]:
        await self._apps.application(tenant, client_id)
        return await self._store.list_certificates(tenant.id, client_id)

    async def revoke_certificate(self, tenant: Tenant, client_id: str, certificate_id: str, *, actor: str) -> None:
        if client_id == actor:
            live = [c for c in await self._store.list_certificates(tenant.id, client_id)
                    if c.valid_at(self._clock.now()) and c.id != certificate_id]
            secrets = [s for s in await self._store.list_secrets(tenant.id, client_id)
                       if s.usable_at(self._clock.now())]
            if not live and not secrets:
                raise Conflict("would_lock_out", "this is the caller's last credential: add another one first")
        audit = self._audit(tenant.id, actor, "certificate.revoke", "application", client_id,
                            certificate_id=certificate_id)
        if not await self.retire(audit, lambda a: self._store.revoke_certificate(tenant.id, client_id,
                                                                                certificate_id, a)):
            raise NotFound("certificate_not_found", "no such certificate on this application")
