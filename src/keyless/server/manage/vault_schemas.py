"""Bodies of the native vault API. Secret values travel only in `SecretSet.value` and
`SecretValueOut.value`; no other body, listing or error carries one."""

from __future__ import annotations

from pydantic import BaseModel, Field

from keyless.server.manage.schemas import Strict
from keyless.vault import model as m


class VaultOut(BaseModel):
    id: str
    name: str
    retention_days: int
    purge_protection: bool
    recovery_level: str
    created_at: float
    url: str = Field(description="https://{name}.{vault_domain}:{vault_port} (Key Vault-compatible API)")

    @classmethod
    def of(cls, v: m.Vault, url: str) -> VaultOut:
        return cls(id=v.id, name=v.name, retention_days=v.retention_days, purge_protection=v.purge_protection,
                   recovery_level=m.recovery_level(v), created_at=v.created_at, url=url)


class VaultCreate(Strict):
    name: str = Field(max_length=64)
    retention_days: int = m.DEFAULT_RETENTION_DAYS
    purge_protection: bool = False
    grant_self: bool = Field(default=True, description="grant the caller Secrets.Officer on the new vault")


class VaultPatch(Strict):
    retention_days: int | None = None
    purge_protection: bool | None = None


class VaultGrantCreate(Strict):
    principal: str = Field(max_length=512, description="client id, identifier URI or unique display name")
    roles: list[str] = Field(min_length=1, max_length=16)
    secret: str | None = Field(default=None, max_length=127, description="limit the grant to this secret")


class VaultGrantOut(BaseModel):
    id: str
    principal_client_id: str
    principal_object_id: str
    role: str
    secret: str | None
    created_at: float

    @classmethod
    def of(cls, g: m.VaultGrant) -> VaultGrantOut:
        return cls(id=g.id, principal_client_id=g.principal_client_id, principal_object_id=g.principal_object_id,
                   role=g.role, secret=g.secret_name, created_at=g.created_at)


class KeyRotated(BaseModel):
    key_id: str
    rewrapped: int
    retired_keys: int


class SecretAttributesIn(Strict):
    content_type: str | None = Field(default=None, max_length=255)
    tags: dict[str, str] | None = None
    enabled: bool = True
    not_before: float | None = None
    expires: float | None = None


class SecretSet(SecretAttributesIn):
    value: str = Field(repr=False)


class SecretPatch(Strict):
    content_type: str | None = Field(default=None, max_length=255)
    tags: dict[str, str] | None = None
    enabled: bool | None = None
    not_before: float | None = None
    expires: float | None = None


class VaultSecretOut(BaseModel):
    name: str
    version: str
    enabled: bool
    not_before: float | None
    expires: float | None
    content_type: str | None
    tags: dict[str, str] | None
    created_at: float
    updated_at: float

    @classmethod
    def fields(cls, v: m.SecretVersion) -> dict[str, object]:
        a = v.attributes
        return {"name": v.name, "version": v.version, "enabled": a.enabled, "not_before": a.not_before,
                "expires": a.expires, "content_type": a.content_type, "tags": a.tags, "created_at": v.created_at,
                "updated_at": v.updated_at}

    @classmethod
    def of(cls, v: m.SecretVersion) -> VaultSecretOut:
        return cls.model_validate(cls.fields(v))


class SecretValueOut(VaultSecretOut):
    value: str = Field(repr=False)


class DeletedOut(VaultSecretOut):
    deleted_at: float
    scheduled_purge_at: float

    @classmethod
    def deleted(cls, d: m.DeletedSecret) -> DeletedOut:
        return cls.model_validate({**cls.fields(d.latest), "deleted_at": d.deleted_at,
                                   "scheduled_purge_at": d.scheduled_purge_at})


class SecretPage(BaseModel):
    items: list[VaultSecretOut]
    next_page_token: str | None


class DeletedPage(BaseModel):
    items: list[DeletedOut]
    next_page_token: str | None


class Backup(BaseModel):
    backup: str = Field(repr=False, max_length=4 * 1024 * 1024)
