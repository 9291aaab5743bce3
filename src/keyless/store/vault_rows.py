"""Rows of the vault tables as vault model objects and back (keyless.store.vault): one mapping each."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Row

from keyless.vault.model import SealedVersion, SecretAttributes, SecretVersion, Vault, VaultGrant


def vault_of(row: Row[Any]) -> Vault:
    return Vault(id=row.id, tenant_id=row.tenant_id, name=row.name, retention_days=row.retention_days,
                 purge_protection=bool(row.purge_protection), created_at=row.created_at)


def grant_of(row: Row[Any]) -> VaultGrant:
    return VaultGrant(id=row.id, vault_id=row.vault_id, principal_object_id=row.principal_object_id,
                      principal_client_id=row.principal_client_id, role=row.role,
                      secret_name=row.secret_name or None, created_at=row.created_at)


def version_of(row: Any) -> SecretVersion:
    attributes = SecretAttributes(enabled=bool(row.enabled), not_before=row.not_before, expires=row.expires,
                                  content_type=row.content_type, tags=json.loads(row.tags) if row.tags else None)
    return SecretVersion(name=row.name, version=row.version, attributes=attributes, created_at=row.created_at,
                         updated_at=row.updated_at)


def sealed_of(row: Any) -> SealedVersion:
    return SealedVersion(version=version_of(row), key_id=row.key_id, wrapped_dek=bytes(row.wrapped_dek),
                         ciphertext=bytes(row.ciphertext))


def attribute_values(a: SecretAttributes) -> dict[str, Any]:
    return {"enabled": a.enabled, "not_before": a.not_before, "expires": a.expires, "content_type": a.content_type,
            "tags": json.dumps(a.tags, sort_keys=True) if a.tags is not None else None}


def version_values(secret_id: str, seq: int, s: SealedVersion) -> dict[str, Any]:
    return {"secret_id": secret_id, "version": s.version.version, "seq": seq, "created_at": s.version.created_at,
            "updated_at": s.version.updated_at, "key_id": s.key_id, "wrapped_dek": s.wrapped_dek,
            "ciphertext": s.ciphertext, **attribute_values(s.version.attributes)}
