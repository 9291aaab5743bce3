"""Directory use cases: what the management API offers, with validation, limits and audit.

Every method takes the acting principal (`actor`, a client id) so each change is recorded with who
made it; the store writes the change and its audit event in one transaction. After every write the
`on_change` hook clears per-process caches (the token endpoint's and the key ring's).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from keyless.clock import Clock
from keyless.crypto import secrets as secret_format
from keyless.crypto.ca import IssuedCert, issue_client_certificate
from keyless.crypto.certificates import CertificateRejected, load_certificate
from keyless.crypto.secrets import SecretHasher
from keyless.directory import validation as v
from keyless.directory.errors import Conflict, Invalid, NotFound
from keyless.directory.management import MANAGEMENT_URI
from keyless.domain.model import (
    Application,
    AppRole,
    AuditEvent,
    ClientCertificate,
    ClientSecret,
    RoleAssignment,
    SignInEvent,
    SigningKey,
    Tenant,
)
from keyless.domain.ports import DirectoryStore, LogQuery, UniqueViolation
from keyless.ids import new_guid
from keyless.oauth.keyring import JWKS_MAX_AGE, MAX_TOKEN_LIFETIME, key_states, new_signing_key

MAX_SECRETS_PER_APP = 10
MAX_CERTIFICATES_PER_APP = 10
MAX_ROLES_PER_APP = 100
MIN_TOKEN_LIFETIME = 300
HARD_MAX_SECRET_LIFETIME = 730 * 86400
DEFAULT_ACTIVATION_DELAY = 2 * JWKS_MAX_AGE
# Every replica publishes a new key in its JWKS within 1 s of its creation (change notifications,
# docs/deployment.md); a key signs no sooner than twice that, so no replica ever signs a token whose
# `kid` another replica's JWKS does not list yet.
MIN_ACTIVATION_DELAY = 2


class DirectoryService:
    def __init__(
        self,
        store: DirectoryStore,
        clock: Clock,
        hasher: SecretHasher,
        kek: bytes,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._hasher = hasher
        self._kek = kek
        self._on_change = on_change

    def _audit(self, tenant_id: str, actor: str, action: str, target_type: str, target_id: str,
               **details: object) -> AuditEvent:
        return AuditEvent(
            time=self._clock.now(), tenant_id=tenant_id, actor=actor, action=action, target_type=target_type,
            target_id=target_id, details=dict(details),
        )

    # -- tenants -----------------------------------------------------------------------------------
    async def tenant(self, ref: str) -> Tenant:
        tenant = await self._store.get_tenant(ref)
        if tenant is None:
            raise NotFound("tenant_not_found", "no such tenant")
        return tenant

    async def create_tenant(self, name: str, *, actor: str, tenant_id: str | None = None,
                            signing_alg: str = "RS256") -> Tenant:
        name = v.tenant_name(name)
        if signing_alg not in {"RS256", "ES256"}:
            raise Invalid("invalid_signing_alg", "signing algorithm must be RS256 or ES256")
        if await self._store.get_tenant(name) is not None:
            raise Conflict("tenant_exists", "a tenant with that name exists")
        now = self._clock.now()
        tenant = Tenant(id=tenant_id or new_guid(), name=name, signing_alg=signing_alg, created_at=now)
        await self._store.create_tenant(tenant, self._audit(tenant.id, actor, "tenant.create", "tenant", tenant.id,
                                                            name=name, signing_alg=signing_alg))
        await self.rotate_key(tenant, actor=actor, activate_in=0)
        return tenant

    async def update_tenant(
        self, tenant: Tenant, *, actor: str, token_lifetime: int | None = None, signing_alg: str | None = None,
        default_secret_lifetime: int | None = None, max_secret_lifetime: int | None = None,
        assertion_audience: str | None = None, max_certificate_lifetime: int | None = None,
    ) -> Tenant:
        changes: dict[str, object] = {}
        if token_lifetime is not None:
            if not MIN_TOKEN_LIFETIME <= token_lifetime <= MAX_TOKEN_LIFETIME:
                raise Invalid("invalid_token_lifetime", "token lifetime must be between 5 minutes and 24 hours")
            changes["token_lifetime"] = token_lifetime
        if signing_alg is not None:
            if signing_alg not in {"RS256", "ES256"}:
                raise Invalid("invalid_signing_alg", "signing algorithm must be RS256 or ES256")
            changes["signing_alg"] = signing_alg
        if max_secret_lifetime is not None:
            if not 86400 <= max_secret_lifetime <= HARD_MAX_SECRET_LIFETIME:
                raise Invalid("invalid_secret_lifetime", "maximum secret lifetime must be 1 day to 2 years")
            changes["max_secret_lifetime"] = max_secret_lifetime
        if default_secret_lifetime is not None:
            changes["default_secret_lifetime"] = default_secret_lifetime
        if max_certificate_lifetime is not None:
            if not 86400 <= max_certificate_lifetime <= 10 * 365 * 86400:
                raise Invalid("invalid_certificate_lifetime", "maximum certificate lifetime must be 1 day to 10 years")
            changes["max_certificate_lifetime"] = max_certificate_lifetime
        if assertion_audience is not None:
            if assertion_audience not in {"entra", "strict"}:
                raise Invalid("invalid_audience_mode", "assertion audience mode must be entra or strict")
            changes["assertion_audience"] = assertion_audience
        updated = replace(tenant, **changes)  # type: ignore[arg-type]
        if not 3600 <= updated.default_secret_lifetime <= updated.max_secret_lifetime:
            raise Invalid("invalid_secret_lifetime", "default secret lifetime must be 1 hour to the maximum")
        await self._store.update_tenant(updated, self._audit(tenant.id, actor, "tenant.update", "tenant",
                                                             tenant.id, **changes))
        if updated.signing_alg != tenant.signing_alg:
            # A new algorithm needs a new key: published now, signing once JWKS caches have seen it.
            await self.rotate_key(updated, actor=actor)
        self._on_change()
        return updated

    # -- applications ------------------------------------------------------------------------------
    async def create_application(
        self, tenant: Tenant, name: str, *, actor: str, identifier_uri: str | None = None,
        roles: Sequence[str] = (), open_to_tenant: bool = False,
    ) -> Application:
        name = v.display_name(name)
        if identifier_uri is not None:
            identifier_uri = v.identifier_uri(identifier_uri)
            if await self._store.identifier_in_use(tenant.id, identifier_uri):
                raise Conflict("identifier_uri_in_use", "another application has that identifier URI")
        values = [v.role_value(r) for r in roles]
        if len(set(values)) != len(values):
            raise Invalid("duplicate_role", "a role is listed twice")
        if len(values) > MAX_ROLES_PER_APP:
            raise Invalid("too_many_roles", f"at most {MAX_ROLES_PER_APP} roles per application")
        if (values or open_to_tenant) and identifier_uri is None:
            raise Invalid("identifier_uri_required", "roles and --open need an identifier URI (a resource)")
        app = Application(
            client_id=new_guid(), tenant_id=tenant.id, display_name=name, object_id=new_guid(),
            enabled=True, identifier_uri=identifier_uri, open_to_tenant=open_to_tenant,
            roles=tuple(AppRole(id=new_guid(), value=r) for r in values), created_at=self._clock.now(),
        )
        audit = self._audit(tenant.id, actor, "application.create", "application", app.client_id,
                            display_name=name, identifier_uri=identifier_uri, roles=values,
                            open_to_tenant=open_to_tenant)
        try:
            await self._store.create_application(app, audit)
        except UniqueViolation:
            raise Conflict("identifier_uri_in_use", "another application has that identifier URI") from None
        self._on_change()
        return app

    async def application(self, tenant: Tenant, client_id: str) -> Application:
        app = await self._store.get_application(tenant.id, client_id)
        if app is None:
            raise NotFound("application_not_found", "no such application in this tenant")
        return app

    async def resolve_application(self, tenant: Tenant, ref: str) -> Application:
        """By client id, identifier URI, or exact display name (when unique)."""
        app = await self._store.find_resource(tenant.id, ref)
        if app is not None:
            return app
        matches = [a for a in await self._store.list_applications(tenant.id) if a.display_name == ref]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise Conflict("ambiguous_name", "several applications have that display name; use the client id")
        raise NotFound("application_not_found", "no such application in this tenant")

    async def list_applications(self, tenant: Tenant) -> Sequence[Application]:
        return await self._store.list_applications(tenant.id)

    @staticmethod
    def _refuse_lockout(app: Application, actor: str, what: str) -> None:
        """Nobody may cut off the management API or their own access to it through the API itself:
        there would be no way back short of editing the database."""
        if app.identifier_uri == MANAGEMENT_URI:
            raise Conflict("protected_application", f"the management API application cannot be {what}")
        if app.managed_resource_id is not None and what == "deleted":
            raise Conflict("managed_identity", "a managed identity is removed with `keyless identity delete` "
                                               "or, if system-assigned, with its host")
        if app.client_id == actor:
            raise Conflict("would_lock_out", f"an application cannot be {what} by itself: use another admin")

    async def update_application(
        self, tenant: Tenant, client_id: str, *, actor: str, display_name: str | None = None,
        enabled: bool | None = None, open_to_tenant: bool | None = None,
    ) -> Application:
        app = await self.application(tenant, client_id)
        if enabled is False:
            self._refuse_lockout(app, actor, "disabled")
        changes: dict[str, object] = {}
        if display_name is not None:
            changes["display_name"] = v.display_name(display_name)
        if enabled is not None:
            changes["enabled"] = enabled
        if open_to_tenant is not None:
            if open_to_tenant and app.identifier_uri is None:
                raise Invalid("identifier_uri_required", "only a resource (with an identifier URI) can be open")
            changes["open_to_tenant"] = open_to_tenant
        updated = replace(app, **changes)  # type: ignore[arg-type]
        await self._store.update_application(
            updated, self._audit(tenant.id, actor, "application.update", "application", client_id, **changes)
        )
        self._on_change()
        return updated

    async def add_role(self, tenant: Tenant, client_id: str, value: str, *, actor: str) -> AppRole:
        app = await self.application(tenant, client_id)
        value = v.role_value(value)
        if app.identifier_uri is None:
            raise Invalid("identifier_uri_required", "roles belong to resources: set an identifier URI first")
        if app.role(value) is not None:
            raise Conflict("role_exists", "the application already has that role")
        role = AppRole(id=new_guid(), value=value)
        await self._store.add_role(tenant.id, client_id, role,
                                   self._audit(tenant.id, actor, "application.role.add", "application",
                                               client_id, role=value))
        self._on_change()
        return role

    async def delete_application(self, tenant: Tenant, client_id: str, *, actor: str) -> None:
        self._refuse_lockout(await self.application(tenant, client_id), actor, "deleted")
        deleted = await self._store.delete_application(
            tenant.id, client_id, self._audit(tenant.id, actor, "application.delete", "application", client_id)
        )
        if not deleted:
            raise NotFound("application_not_found", "no such application in this tenant")
        self._on_change()

    @staticmethod
    def _credential_holder(app: Application) -> Application:
        """Managed identities hold no credential: their hosts authenticate for them."""
        if app.managed_resource_id is not None:
            raise Conflict("managed_identity", "a managed identity has no secrets or certificates of its own")
        return app

    # -- secrets -----------------------------------------------------------------------------------
    async def add_secret(
        self, tenant: Tenant, client_id: str, *, actor: str, expires_in: int | None = None,
        display_name: str = "",
    ) -> tuple[ClientSecret, str]:
        """Returns the stored record and the plaintext, which exists only in this return value."""
        app = self._credential_holder(await self.application(tenant, client_id))
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
        await self._store.add_secret(
            tenant.id, record,
            self._audit(tenant.id, actor, "secret.add", "application", client_id, secret_id=record.id,
                        hint=record.hint, expires_at=record.expires_at),
        )
        self._on_change()
        return record, plaintext

    async def list_secrets(self, tenant: Tenant, client_id: str) -> Sequence[ClientSecret]:
        await self.application(tenant, client_id)
        return await self._store.list_secrets(tenant.id, client_id)

    async def revoke_secret(self, tenant: Tenant, client_id: str, secret_id: str, *, actor: str) -> None:
        if client_id == actor:
            live: list[object] = [s for s in await self._store.list_secrets(tenant.id, client_id)
                                  if s.usable_at(self._clock.now()) and s.id != secret_id]
            live += [c for c in await self._store.list_certificates(tenant.id, client_id)
                     if c.valid_at(self._clock.now())]
            if not live:
                raise Conflict("would_lock_out", "this is the caller's last live secret: add another one first")
        ok = await self._store.revoke_secret(
            tenant.id, client_id, secret_id,
            self._audit(tenant.id, actor, "secret.revoke", "application", client_id, secret_id=secret_id),
        )
        if not ok:
            raise NotFound("secret_not_found", "no such live secret on this application")
        self._on_change()

    # -- certificates ------------------------------------------------------------------------------
    async def add_certificate(
        self, tenant: Tenant, client_id: str, data: bytes, *, actor: str, display_name: str = "",
        issued_by_ca: bool = False,
    ) -> ClientCertificate:
        """Register a certificate (never a key: uploads holding one are refused, B27 key policy)."""
        app = self._credential_holder(await self.application(tenant, client_id))
        now = self._clock.now()
        try:
            info = load_certificate(data, now=now)
        except CertificateRejected as exc:
            raise Invalid(exc.code, exc.message) from None
        if info.not_after - info.not_before > tenant.max_certificate_lifetime:
            raise Invalid("certificate_lifetime_too_long",
                          f"the tenant allows certificates valid for at most "
                          f"{tenant.max_certificate_lifetime // 86400} days")
        live = await self._store.list_certificates(tenant.id, client_id)
        if any(c.x5t_s256 == info.x5t_s256 for c in live):
            raise Conflict("certificate_exists", "this certificate is already registered on the application")
        if len(live) >= MAX_CERTIFICATES_PER_APP:
            raise Conflict("too_many_certificates",
                           f"at most {MAX_CERTIFICATES_PER_APP} certificates per application; revoke one first")
        cert = ClientCertificate(
            id=new_guid(), client_id=app.client_id, x5t=info.x5t, x5t_s256=info.x5t_s256, der=info.der,
            subject=info.subject[:512], key_type=info.key_type, key_size=info.key_size,
            not_before=info.not_before, not_after=info.not_after, created_at=now, display_name=display_name[:256],
        )
        await self._store.add_certificate(
            tenant.id, cert,
            self._audit(tenant.id, actor, "certificate.add", "application", client_id, certificate_id=cert.id,
                        x5t_s256=cert.x5t_s256, not_after=cert.not_after, key_type=cert.key_type,
                        key_size=cert.key_size, issued_by_ca=issued_by_ca),
        )
        self._on_change()
        return cert

    async def issue_certificate(
        self, tenant: Tenant, client_id: str, csr: bytes, *, actor: str, ca: IssuedCert, days: int = 90,
        display_name: str = "",
    ) -> tuple[ClientCertificate, bytes]:
        """Sign a CSR with the local CA for this application and register the result. The requester
        made the key pair; the CA decides the subject, lifetime and extensions."""
        app = await self.application(tenant, client_id)
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

    async def list_certificates(self, tenant: Tenant, client_id: str) -> Sequence[ClientCertificate]:
        await self.application(tenant, client_id)
        return await self._store.list_certificates(tenant.id, client_id)

    async def revoke_certificate(self, tenant: Tenant, client_id: str, certificate_id: str, *, actor: str) -> None:
        if client_id == actor:
            live = [c for c in await self._store.list_certificates(tenant.id, client_id)
                    if c.valid_at(self._clock.now()) and c.id != certificate_id]
            secrets = [s for s in await self._store.list_secrets(tenant.id, client_id)
                       if s.usable_at(self._clock.now())]
            if not live and not secrets:
                raise Conflict("would_lock_out", "this is the caller's last credential: add another one first")
        ok = await self._store.revoke_certificate(
            tenant.id, client_id, certificate_id,
            self._audit(tenant.id, actor, "certificate.revoke", "application", client_id,
                        certificate_id=certificate_id),
        )
        if not ok:
            raise NotFound("certificate_not_found", "no such certificate on this application")
        self._on_change()

    # -- role assignments --------------------------------------------------------------------------
    async def grant(self, tenant: Tenant, client_id: str, resource_ref: str, role: str, *,
                    actor: str) -> RoleAssignment:
        client = await self.application(tenant, client_id)
        resource = await self._store.find_resource(tenant.id, resource_ref)
        if resource is None:
            raise NotFound("resource_not_found", "no resource with that identifier URI or client id")
        app_role = resource.role(role)
        if app_role is None:
            raise NotFound("role_not_found", "the resource has no such role")
        assignment = RoleAssignment(
            id=new_guid(), tenant_id=tenant.id, principal_object_id=client.object_id,
            principal_client_id=client.client_id, resource_client_id=resource.client_id, role_id=app_role.id,
            role_value=app_role.value, created_at=self._clock.now(),
        )
        created = await self._store.add_assignment(
            assignment,
            self._audit(tenant.id, actor, "grant.add", "application", client_id,
                        resource=resource.client_id, role=app_role.value, assignment_id=assignment.id),
        )
        if not created:
            existing = [a for a in await self._store.list_assignments(tenant.id, principal_client_id=client_id)
                        if a.role_id == app_role.id]
            if existing:
                return existing[0]
            raise Conflict("grant_conflict", "the grant could not be recorded")
        self._on_change()
        return assignment

    async def list_grants(self, tenant: Tenant, *, client_id: str | None = None,
                          resource_client_id: str | None = None) -> Sequence[RoleAssignment]:
        return await self._store.list_assignments(
            tenant.id, principal_client_id=client_id, resource_client_id=resource_client_id
        )

    async def revoke_grant(self, tenant: Tenant, assignment_id: str, *, actor: str) -> None:
        own = [g for g in await self._store.list_assignments(tenant.id, principal_client_id=actor)
               if g.id == assignment_id]
        if own:
            resource = await self._store.get_application(tenant.id, own[0].resource_client_id)
            if resource is not None and resource.identifier_uri == MANAGEMENT_URI:
                raise Conflict("would_lock_out", "an application cannot remove its own management role")
        ok = await self._store.remove_assignment(
            tenant.id, assignment_id,
            self._audit(tenant.id, actor, "grant.remove", "assignment", assignment_id),
        )
        if not ok:
            raise NotFound("grant_not_found", "no such grant")
        self._on_change()

    # -- signing keys ------------------------------------------------------------------------------
    async def keys(self, tenant: Tenant) -> Sequence[SigningKey]:
        return await self._store.signing_keys(tenant.id)

    async def rotate_key(self, tenant: Tenant, *, actor: str, activate_in: int = DEFAULT_ACTIVATION_DELAY,
                         alg: str | None = None) -> SigningKey:
        """Publish a new key now and sign with it from `activate_in` seconds on (at least
        `MIN_ACTIVATION_DELAY`). The keys it succeeds stay in the JWKS until every token they signed
        has expired (`key_states`)."""
        if activate_in < 0:
            raise Invalid("invalid_activation", "activation delay must not be negative")
        if await self._store.signing_keys(tenant.id):  # a tenant's first key signs at once: nobody signs yet
            activate_in = max(activate_in, MIN_ACTIVATION_DELAY)
        now = self._clock.now()
        key = new_signing_key(tenant.id, alg or tenant.signing_alg, self._kek, now=now,
                              activates_at=now + activate_in)
        await self._store.add_signing_key(
            key,
            self._audit(tenant.id, actor, "key.rotate", "signing_key", key.kid, alg=key.alg,
                        activates_at=key.activates_at),
        )
        self._on_change()
        return key

    async def retire_key(self, tenant: Tenant, kid: str, *, actor: str) -> None:
        """Emergency removal (catalog I04): out of the JWKS at once; tokens it signed stop validating."""
        now = self._clock.now()
        keys = await self._store.signing_keys(tenant.id)
        if key_states(keys, now).get(kid, "retired") == "retired":
            raise NotFound("key_not_found", "no such published key")
        remaining = [k if k.kid != kid else replace(k, retire_at=now) for k in keys]
        if "active" not in key_states(remaining, now).values():
            raise Conflict("last_signing_key", "rotate with --activate-in 0 first: this is the only signing key")
        await self._store.retire_signing_key(
            tenant.id, kid, now, self._audit(tenant.id, actor, "key.retire", "signing_key", kid)
        )
        self._on_change()

    # -- logs --------------------------------------------------------------------------------------
    async def signins(self, query: LogQuery) -> Sequence[SignInEvent]:
        return await self._store.query_signins(query)

    async def audit(self, query: LogQuery) -> Sequence[AuditEvent]:
        return await self._store.query_audit(query)
