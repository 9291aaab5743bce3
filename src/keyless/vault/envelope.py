"""Envelope encryption of secret values (requirements §4.3).

    server KEK ──seals──▶ vault key (one per vault and rotation term)
    vault key  ──wraps──▶ data key (fresh per version)
    data key   ──seals──▶ value

Every layer is AES-256-GCM from `keyless.crypto.aead` with associated data naming exactly what the
blob is — tenant, vault, secret name and version — so a ciphertext or wrapped key copied into
another row fails to open instead of yielding another secret's value. Rotating a vault key re-wraps
the small data keys and never touches the values.
"""

from __future__ import annotations

import base64
import binascii

from keyless.crypto import aead
from keyless.vault.errors import BadParameter, Unreadable

BACKUP_PREFIX = b"KLVB1"


def _value_aad(tenant_id: str, vault_id: str, name_key: str, version: str) -> bytes:
    return f"vault-value|{tenant_id}|{vault_id}|{name_key}|{version}".encode()


def _dek_aad(tenant_id: str, vault_id: str, name_key: str, version: str) -> bytes:
    return f"vault-dek|{tenant_id}|{vault_id}|{name_key}|{version}".encode()


def _vault_key_aad(tenant_id: str, vault_id: str, key_id: str) -> bytes:
    return f"vault-key|{tenant_id}|{vault_id}|{key_id}".encode()


def new_vault_key(kek: bytes, tenant_id: str, vault_id: str, key_id: str) -> bytes:
    """A fresh vault key, returned sealed under the server KEK (the plaintext is never stored)."""
    return aead.seal(kek, aead.new_key(), _vault_key_aad(tenant_id, vault_id, key_id))


def open_vault_key(kek: bytes, sealed: bytes, tenant_id: str, vault_id: str, key_id: str) -> bytes:
    try:
        return aead.open_sealed(kek, sealed, _vault_key_aad(tenant_id, vault_id, key_id))
    except aead.DecryptionFailed:
        raise Unreadable("a vault key did not open under the server key") from None


def seal_value(vault_key: bytes, value: bytes, *, tenant_id: str, vault_id: str, name_key: str,
               version: str) -> tuple[bytes, bytes]:
    """(wrapped data key, ciphertext) for one version."""
    dek = aead.new_key()
    ciphertext = aead.seal(dek, value, _value_aad(tenant_id, vault_id, name_key, version))
    return aead.seal(vault_key, dek, _dek_aad(tenant_id, vault_id, name_key, version)), ciphertext


def open_value(vault_key: bytes, wrapped_dek: bytes, ciphertext: bytes, *, tenant_id: str, vault_id: str,
               name_key: str, version: str) -> bytes:
    try:
        dek = aead.open_sealed(vault_key, wrapped_dek, _dek_aad(tenant_id, vault_id, name_key, version))
        return aead.open_sealed(dek, ciphertext, _value_aad(tenant_id, vault_id, name_key, version))
    except aead.DecryptionFailed:
        raise Unreadable("the stored secret value failed its integrity check") from None


def rewrap(old_key: bytes, new_key: bytes, wrapped_dek: bytes, *, tenant_id: str, vault_id: str, name_key: str,
           version: str) -> bytes:
    """Move one data key from an old vault key to a new one; the value's ciphertext is untouched."""
    aad = _dek_aad(tenant_id, vault_id, name_key, version)
    try:
        dek = aead.open_sealed(old_key, wrapped_dek, aad)
    except aead.DecryptionFailed:
        raise Unreadable("a stored data key failed its integrity check") from None
    return aead.seal(new_key, dek, aad)


def _backup_key(kek: bytes, tenant_id: str) -> bytes:
    return aead.derive(kek, f"vault-backup:{tenant_id}")


def seal_backup(kek: bytes, tenant_id: str, payload: bytes) -> str:
    """An opaque, integrity-protected backup blob that only this installation's tenant can restore."""
    sealed = aead.seal(_backup_key(kek, tenant_id), payload, BACKUP_PREFIX + tenant_id.encode())
    return base64.urlsafe_b64encode(BACKUP_PREFIX + sealed).rstrip(b"=").decode()


def open_backup(kek: bytes, tenant_id: str, blob: str) -> bytes:
    try:
        raw = base64.b64decode(blob + "=" * (-len(blob) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise BadParameter("the backup blob is not base64url") from None
    if not raw.startswith(BACKUP_PREFIX):
        raise BadParameter("the backup blob is not a Keyless vault backup")
    try:
        return aead.open_sealed(_backup_key(kek, tenant_id), raw[len(BACKUP_PREFIX):],
                                BACKUP_PREFIX + tenant_id.encode())
    except aead.DecryptionFailed:
        raise BadParameter("the backup blob is damaged or belongs to another tenant or installation") from None
