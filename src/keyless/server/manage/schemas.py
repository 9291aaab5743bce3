"""Request and response bodies. Requests forbid unknown fields and never accept server-owned ones
(catalog H03): ids, timestamps and secrets are made by the server."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from keyless.domain.model import (
    Application,
    AuditEvent,
    Certificate,
    ClientSecret,
    RoleAssignment,
    SignInEvent,
    SigningKey,
    Tenant,
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TenantOut(BaseModel):
    id: str
    name: str
    signing_alg: str
    token_lifetime: int
    default_secret_lifetime: int
    max_secret_lifetime: int
    assertion_audience: str
    max_certificate_lifetime: int
    issuer: str

    @classmethod
    def of(cls, t: Tenant, issuer: str) -> TenantOut:
        return cls(id=t.id, name=t.name, signing_alg=t.signing_alg, token_lifetime=t.token_lifetime,
                   default_secret_lifetime=t.default_secret_lifetime, max_secret_lifetime=t.max_secret_lifetime,
                   assertion_audience=t.assertion_audience, max_certificate_lifetime=t.max_certificate_lifetime,
                   issuer=issuer)


class TenantPatch(Strict):
    token_lifetime: int | None = None
    signing_alg: str | None = None
    default_secret_lifetime: int | None = None
    max_secret_lifetime: int | None = None
    assertion_audience: str | None = None
    max_certificate_lifetime: int | None = None


class RoleOut(BaseModel):
    id: str
    value: str
    enabled: bool


class ApplicationOut(BaseModel):
    client_id: str
    object_id: str
    display_name: str
    enabled: bool
    identifier_uri: str | None
    open_to_tenant: bool
    roles: list[RoleOut]
    created_at: float

    @classmethod
    def of(cls, a: Application) -> ApplicationOut:
        return cls(client_id=a.client_id, object_id=a.object_id, display_name=a.display_name, enabled=a.enabled,
                   identifier_uri=a.identifier_uri, open_to_tenant=a.open_to_tenant,
                   roles=[RoleOut(id=r.id, value=r.value, enabled=r.enabled) for r in a.roles],
                   created_at=a.created_at)


class ApplicationCreate(Strict):
    display_name: str = Field(max_length=256)
    identifier_uri: str | None = Field(default=None, max_length=512)
    roles: list[str] = Field(default_factory=list, max_length=100)
    open_to_tenant: bool = False


class ApplicationPatch(Strict):
    display_name: str | None = Field(default=None, max_length=256)
    enabled: bool | None = None
    open_to_tenant: bool | None = None


class RoleCreate(Strict):
    value: str = Field(max_length=120)


class SecretCreate(Strict):
    expires_in: int | None = Field(default=None, description="lifetime in seconds; default: tenant setting")
    display_name: str = Field(default="", max_length=256)


class SecretOut(BaseModel):
    id: str
    client_id: str
    hint: str
    display_name: str
    created_at: float
    expires_at: float
    last_used_at: float | None

    @classmethod
    def of(cls, s: ClientSecret) -> SecretOut:
        return cls(id=s.id, client_id=s.client_id, hint=s.hint, display_name=s.display_name,
                   created_at=s.created_at, expires_at=s.expires_at, last_used_at=s.last_used_at)


class SecretCreated(SecretOut):
    secret: str = Field(description="shown once; Keyless keeps only a keyed hash")


class CertificateUpload(Strict):
    certificate: str = Field(max_length=24 * 1024, description="PEM text, or base64 of the DER")
    display_name: str = Field(default="", max_length=256)


class CertificateSign(Strict):
    client_id: str = Field(max_length=64)
    csr: str = Field(max_length=24 * 1024, description="PEM certificate signing request")
    days: int = Field(default=90, ge=1, le=3650)
    display_name: str = Field(default="", max_length=256)


class CertificateOut(BaseModel):
    id: str
    client_id: str
    x5t: str
    x5t_s256: str
    subject: str
    key_type: str
    key_size: int
    not_before: float
    not_after: float
    display_name: str
    created_at: float
    last_used_at: float | None

    @classmethod
    def of(cls, c: Certificate) -> CertificateOut:
        return cls(id=c.id, client_id=c.owner_id, x5t=c.x5t, x5t_s256=c.x5t_s256, subject=c.subject,
                   key_type=c.key_type, key_size=c.key_size, not_before=c.not_before, not_after=c.not_after,
                   display_name=c.display_name, created_at=c.created_at, last_used_at=c.last_used_at)


class CertificateIssued(CertificateOut):
    certificate: str = Field(description="the issued certificate, PEM")


class CaOut(BaseModel):
    certificate: str


class GrantCreate(Strict):
    client_id: str = Field(max_length=64)
    resource: str = Field(max_length=512, description="identifier URI or client id of the resource")
    role: str = Field(max_length=120)


class GrantOut(BaseModel):
    id: str
    client_id: str
    principal_object_id: str
    resource_client_id: str
    role: str
    created_at: float

    @classmethod
    def of(cls, a: RoleAssignment) -> GrantOut:
        return cls(id=a.id, client_id=a.principal_client_id, principal_object_id=a.principal_object_id,
                   resource_client_id=a.resource_client_id, role=a.role_value, created_at=a.created_at)


class KeyOut(BaseModel):
    kid: str
    alg: str
    created_at: float
    activates_at: float
    retire_at: float | None
    status: str

    @classmethod
    def of(cls, k: SigningKey, status: str) -> KeyOut:
        return cls(kid=k.kid, alg=k.alg, created_at=k.created_at, activates_at=k.activates_at,
                   retire_at=k.retire_at, status=status)


class KeyRotate(Strict):
    activate_in: int | None = Field(default=None, ge=0, le=7 * 86400)
    alg: Literal["RS256", "ES256"] | None = None  # anything else was a 500 (found by schemathesis)


class SignInOut(BaseModel):
    time: float
    client_id: str | None
    credential_id: str | None
    credential_type: str | None
    resource: str | None
    result: str
    error: str | None
    detail: str | None
    source: str | None
    token_id: str | None
    grant_type: str | None
    auth_method: str | None
    azpacr: str | None = Field(description="1: shared secret, 2: certificate or other client assertion")

    @classmethod
    def of(cls, e: SignInEvent) -> SignInOut:
        azpacr = {"secret": "1", "certificate": "2"}.get(e.credential_type or "")
        return cls(time=e.time, client_id=e.client_id, credential_id=e.credential_id,
                   credential_type=e.credential_type, resource=e.resource, result=e.result, error=e.error,
                   detail=e.detail, source=e.source, token_id=e.token_id, grant_type=e.grant_type,
                   auth_method=e.auth_method, azpacr=azpacr)


class AuditOut(BaseModel):
    time: float
    actor: str
    action: str
    target_type: str
    target_id: str
    details: dict[str, object]

    @classmethod
    def of(cls, e: AuditEvent) -> AuditOut:
        return cls(time=e.time, actor=e.actor, action=e.action, target_type=e.target_type,
                   target_id=e.target_id, details=e.details)
