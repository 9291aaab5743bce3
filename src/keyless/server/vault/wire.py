"""The JSON shapes `azure-keyvault-secrets` reads (compat §5.1): bundles, list items, deleted
bundles and errors. Times are whole Unix seconds; absent optional fields are left out."""

from __future__ import annotations

from typing import Any

from keyless import text
from keyless.vault.model import DeletedSecret, SecretVersion, Vault, recovery_level


def attributes(v: SecretVersion, vault: Vault) -> dict[str, Any]:
    a = v.attributes
    out: dict[str, Any] = {"enabled": a.enabled}
    if a.not_before is not None:
        out["nbf"] = int(a.not_before)
    if a.expires is not None:
        out["exp"] = int(a.expires)
    out.update(created=int(v.created_at), updated=int(v.updated_at), recoveryLevel=recovery_level(vault),
               recoverableDays=vault.retention_days)
    return out


def _common(v: SecretVersion, vault: Vault, id_: str) -> dict[str, Any]:
    out: dict[str, Any] = {"id": id_, "attributes": attributes(v, vault)}
    if v.attributes.content_type is not None:
        out["contentType"] = v.attributes.content_type
    if v.attributes.tags is not None:
        out["tags"] = v.attributes.tags
    return out


def bundle(v: SecretVersion, vault: Vault, base: str, value: str | None = None) -> dict[str, Any]:
    out = _common(v, vault, f"{base}/secrets/{v.name}/{v.version}")
    if value is not None:
        out = {"value": value, **out}
    return out


def item(v: SecretVersion, vault: Vault, base: str, *, versioned: bool = False) -> dict[str, Any]:
    return _common(v, vault, f"{base}/secrets/{v.name}" + (f"/{v.version}" if versioned else ""))


def deleted(d: DeletedSecret, vault: Vault, base: str, *, as_item: bool = False) -> dict[str, Any]:
    out = item(d.latest, vault, base) if as_item else bundle(d.latest, vault, base)
    out.update(recoveryId=f"{base}/deletedsecrets/{d.latest.name}", deletedDate=int(d.deleted_at),
               scheduledPurgeDate=int(d.scheduled_purge_at))
    return out


def error(code: str, message: str) -> dict[str, Any]:
    """Every error body of the vault port: the message held to RFC 6749 §5.2's set (keyless.text)."""
    return {"error": {"code": code, "message": text.description(message)}}
