"""The directory's use cases in one object, for the management API and the CLI.

Each aggregate has its own service module over its own port (`tenants`, `applications`,
`credentials`, `assignments`, `signing_keys`, `logs`); this façade only builds them on one store
and offers their methods under the names callers have always used (`ctx.admin.add_secret(...)`).
It holds no rule of its own: a rule belongs to the aggregate's module.
"""

from __future__ import annotations

from collections.abc import Callable

from keyless.clock import Clock
from keyless.crypto.secrets import SecretHasher
from keyless.directory.applications import MAX_ROLES_PER_APP, ApplicationService
from keyless.directory.assignments import GrantService
from keyless.directory.base import _nothing
from keyless.directory.credentials import MAX_CERTIFICATES_PER_APP, MAX_SECRETS_PER_APP, CredentialService
from keyless.directory.leaks import LeakService
from keyless.directory.logs import LogService
from keyless.directory.policies import InternalCa, NoPolicies, PolicyService
from keyless.directory.signing_keys import DEFAULT_ACTIVATION_DELAY, MIN_ACTIVATION_DELAY, SigningKeyService
from keyless.directory.tenants import HARD_MAX_SECRET_LIFETIME, MIN_TOKEN_LIFETIME, TenantService
from keyless.domain.policies import PolicyStore
from keyless.domain.ports import DirectoryStore

__all__ = [
    "DEFAULT_ACTIVATION_DELAY", "HARD_MAX_SECRET_LIFETIME", "MAX_CERTIFICATES_PER_APP", "MAX_ROLES_PER_APP",
    "MAX_SECRETS_PER_APP", "MIN_ACTIVATION_DELAY", "MIN_TOKEN_LIFETIME", "DirectoryService",
]


class DirectoryService:
    def __init__(
        self,
        store: DirectoryStore,
        clock: Clock,
        hasher: SecretHasher,
        kek: bytes,
        on_change: Callable[[], None] = _nothing,
        internal_ca: InternalCa | None = None,
        policy_store: PolicyStore | None = None,
    ) -> None:
        # Credential policies (docs/policies.md) are enforced when the wiring passes their store (the
        # server does; `keyless init` writes before any policy can exist).
        self.policies = PolicyService(policy_store or NoPolicies(), clock, on_change, internal_ca)
        self.signing_keys = SigningKeyService(store, clock, kek, on_change)
        self.tenants = TenantService(store, self.signing_keys, clock, on_change, policies=self.policies)
        self.applications = ApplicationService(store, clock, on_change)
        self.credentials = CredentialService(store, self.applications, clock, hasher, on_change,
                                             policies=self.policies)
        self.grants = GrantService(store, self.applications, clock, on_change)
        self.logs = LogService(store)
        self.leaks = LeakService(store, clock, hasher, on_change, credentials=self.credentials)

        self.tenant = self.tenants.tenant
        self.create_tenant = self.tenants.create_tenant
        self.update_tenant = self.tenants.update_tenant

        self.create_application = self.applications.create_application
        self.application = self.applications.application
        self.resolve_application = self.applications.resolve_application
        self.list_applications = self.applications.list_applications
        self.update_application = self.applications.update_application
        self.add_role = self.applications.add_role
        self.delete_application = self.applications.delete_application

        self.add_secret = self.credentials.add_secret
        self.list_secrets = self.credentials.list_secrets
        self.revoke_secret = self.credentials.revoke_secret
        self.add_certificate = self.credentials.add_certificate
        self.issue_certificate = self.credentials.issue_certificate
        self.list_certificates = self.credentials.list_certificates
        self.revoke_certificate = self.credentials.revoke_certificate

        self.grant = self.grants.grant
        self.list_grants = self.grants.list_grants
        self.revoke_grant = self.grants.revoke_grant

        self.keys = self.signing_keys.keys
        self.rotate_key = self.signing_keys.rotate_key
        self.retire_key = self.signing_keys.retire_key

        self.signins = self.logs.signins
        self.audit = self.logs.audit
