"""The directory: tenants, applications and their service principals, roles, grants, credentials.

Times are Unix epoch seconds (float) everywhere: one representation from the wire to the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from keyless.domain.events import Event

AudienceMode = Literal["entra", "strict"]

#: The management API's resource URI (its own tenant's resource, keyless.directory.management); its
#: tokens, alone, carry the caller's credential (keyless.oauth.tokens.credential_claims).
MANAGEMENT_URI = "urn:keyless:management"


@dataclass(frozen=True)
class Tenant:
    id: str  # GUID; the canonical spelling in issuers
    name: str
    signing_alg: str = "RS256"
    token_lifetime: int = 3600
    max_secret_lifetime: int = 730 * 86400
    default_secret_lifetime: int = 180 * 86400
    assertion_audience: AudienceMode = "entra"
    created_at: float = 0.0
    max_certificate_lifetime: int = 3 * 365 * 86400


@dataclass(frozen=True)
class AppRole:
    id: str
    value: str  # what appears in the `roles` claim, e.g. Orders.Read
    description: str = ""
    enabled: bool = True


@dataclass(frozen=True)
class Application:
    client_id: str
    tenant_id: str
    display_name: str
    object_id: str  # the service principal's object id: `sub`/`oid` of its tokens
    enabled: bool = True
    identifier_uri: str | None = None  # set on resource applications: the `aud` of tokens for it
    open_to_tenant: bool = False  # any app of the tenant may get a token for it without a grant
    roles: tuple[AppRole, ...] = ()
    created_at: float = 0.0
    # Set on managed identities (keyless.domain.identities): their tokens carry it as `xms_mirid`.
    managed_resource_id: str | None = None

    def role(self, value: str) -> AppRole | None:
        return next((r for r in self.roles if r.value == value), None)


CredentialType = Literal["secret", "certificate", "federated"]


@dataclass(frozen=True)
class ClientSecret:
    id: str
    client_id: str
    hint: str
    digest: bytes = field(repr=False)
    pepper_id: str
    created_at: float
    expires_at: float
    last_used_at: float | None = None
    display_name: str = ""

    def usable_at(self, now: float) -> bool:
        return now < self.expires_at


CertificateOwnerKind = Literal["application", "host"]


@dataclass(frozen=True)
class Certificate:
    """A certificate credential of any owner (one record type, as it is one `certificates` table
    since migration 0010): Keyless holds only the certificate; the key stays with its owner. An
    application or a managed identity (`owner_kind` "application", `owner_id` its client id) has
    certificates registered or issued by the local CA; a host (`owner_kind` "host", `owner_id` its
    host id) gets one from the local CA at enrollment and renewal, and that certificate
    authenticates for every identity the host may act for (`for_identity`)."""

    id: str
    owner_id: str
    x5t: str  # base64url SHA-1 thumbprint, unpadded
    x5t_s256: str  # base64url SHA-256 thumbprint, unpadded
    der: bytes = field(repr=False)
    subject: str
    key_type: str
    key_size: int
    not_before: float
    not_after: float
    created_at: float
    last_used_at: float | None = None
    display_name: str = ""
    owner_kind: CertificateOwnerKind = "application"

    def for_identity(self, client_id: str) -> Certificate:
        """A host's certificate as a credential of one identity the host may act for (the token
        endpoint's client lookup, `keyless.store.credentials.entitled_certificates`)."""
        return replace(self, owner_kind="application", owner_id=client_id, display_name="host certificate")

    def valid_at(self, now: float) -> bool:
        return self.not_before <= now < self.not_after


@dataclass(frozen=True)
class RoleAssignment:
    id: str
    tenant_id: str
    principal_object_id: str
    principal_client_id: str
    resource_client_id: str
    role_id: str
    role_value: str
    created_at: float


@dataclass(frozen=True)
class SigningKey:
    """A token-signing key. Published from `created_at` and signs from `activates_at`; when it leaves
    the JWKS follows from the keys that succeed it (`keyless.oauth.keyring.key_states`), unless an
    admin removed it early (`retire_at`, emergency removal)."""

    kid: str
    tenant_id: str
    alg: str
    public_jwk: dict[str, str]
    sealed_private: bytes = field(repr=False)
    created_at: float
    activates_at: float
    retire_at: float | None = None

    def removed_at(self, now: float) -> bool:
        return self.retire_at is not None and now >= self.retire_at


@dataclass(frozen=True)
class ClientRecord:
    """What the token endpoint needs to authenticate one client: the app and its live secrets."""

    app: Application
    secrets: tuple[ClientSecret, ...]
    certificates: tuple[Certificate, ...] = ()


@dataclass(slots=True)  # built per token: not frozen (a frozen __init__ costs ~3x; issue 18)
class SignInEvent:
    time: float
    tenant_id: str
    client_id: str | None
    credential_id: str | None
    credential_type: str | None
    resource: str | None
    result: Literal["success", "failure"]
    error: str | None
    detail: str | None  # internal reason, for admins; never a secret or raw input
    source: str | None
    token_id: str | None = None
    grant_type: str | None = None
    auth_method: str | None = None  # client_secret_post, client_secret_basic, private_key_jwt, ...
    seq: int | None = None  # the log row's number, once stored (orders the log; pages it: keyless.paging)


class Actor(str):
    """Who makes a change: the caller's client id — what the audit log's `actor` column holds and its
    filters match — carrying the credential it signed in with (the secret's or certificate's id and
    its kind), so the record says which of an application's credentials was used (issue 20 item 3;
    what a leak investigation asks first). A plain `str` actor (`keyless-init`, the agent, tests)
    names no credential. Being a `str`, it passes through every use case's `actor` unchanged."""

    credential_id: str | None
    credential_type: str | None

    def __new__(cls, client_id: str, credential_id: str | None = None, credential_type: str | None = None) -> Actor:
        actor = super().__new__(cls, client_id)
        actor.credential_id = credential_id
        actor.credential_type = credential_type
        return actor


@dataclass(frozen=True)
class AuditEvent:
    time: float
    tenant_id: str
    actor: str  # client_id of the caller (an `Actor` when it signed in with a known credential), or "keyless-init"
    action: str  # e.g. application.create
    target_type: str
    target_id: str
    details: dict[str, object] = field(default_factory=dict)  # never a secret
    # Notification events caused by this change: written to the outbox in the same transaction as the
    # audit row (keyless.domain.events).
    notify: tuple[Event, ...] = ()
    seq: int | None = None  # the log row's number, once stored

    def actor_credential(self) -> dict[str, str]:
        """The acting credential as audit details (`actor_credential_id`, `actor_credential_type`): an
        id, never the secret or key itself; empty when the actor names none."""
        if not isinstance(self.actor, Actor) or not self.actor.credential_id:
            return {}
        return {"actor_credential_id": self.actor.credential_id,
                "actor_credential_type": self.actor.credential_type or "unknown"}
