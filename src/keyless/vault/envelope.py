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


class DataKeys:
    """Unwrapped data keys, remembered for the read path (`open_value` unwrapped one per read: half its
    AES-GCM work), each as an `aead.Opener` ready to decrypt (issue 18). The memo is keyed by everything
    the unwrap depends on — the vault key, the wrapped key and its associated data — so an entry is the
    unwrap's own answer, never a stale one: a re-wrap, a restore under the same version id or a tampered
    row is a different key and is opened afresh. Bounded by count; emptied with the sealed-version
    cache on every change (`VaultCore._changed`), so a data key stays in memory no longer than its
    ciphertext does. Never logged, never in a `repr`."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._memo: dict[tuple[bytes, bytes, bytes], aead.Opener] = {}

    def __repr__(self) -> str:
        return f"DataKeys({len(self._memo)} of {self._limit})"

    def clear(self) -> None:
        self._memo.clear()

    def open_value(self, vault_key: bytes, wrapped_dek: bytes, ciphertext: bytes, *, tenant_id: str,
                   vault_id: str, name_key: str, version: str) -> bytes:
        """`open_value`, with the data key from the memo when this exact wrapped key was opened before."""
        aad = _dek_aad(tenant_id, vault_id, name_key, version)
        memo_key = (vault_key, wrapped_dek, aad)
        try:
            opener = self._memo.get(memo_key)
            if opener is None:
                opener = aead.Opener(aead.open_sealed(vault_key, wrapped_dek, aad))
                if len(self._memo) >= self._limit:
                    del self._memo[next(iter(self._memo))]  # the oldest entry
                self._memo[memo_key] = opener
            return opener.open(ciphertext, _value_aad(tenant_id, vault_id, name_key, version))
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
