"""Authenticated encryption of server secrets at rest under the key-encryption key (KEK).

AES-256-GCM with a random 96-bit nonce; the associated data names what the blob is (for example
`signing-key:<kid>`), so a ciphertext copied into another row does not decrypt. Purpose-specific keys
(the client-secret pepper, the TLS key password) are derived from the KEK with HKDF so one file
protects everything and each use has its own key.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from keyless.errors import KeylessError

KEY_BYTES = 32
_VERSION = b"\x01"


class DecryptionFailed(KeylessError):
    """A sealed blob did not open: wrong KEK, tampered data, or a blob moved to another record."""


def new_key() -> bytes:
    return os.urandom(KEY_BYTES)


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(12)
    return _VERSION + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, blob: bytes, aad: bytes) -> bytes:
    if len(blob) < 1 + 12 + 16 or blob[:1] != _VERSION:
        raise DecryptionFailed("sealed data is malformed")
    try:
        return AESGCM(key).decrypt(blob[1:13], blob[13:], aad)
    except InvalidTag:
        raise DecryptionFailed("sealed data did not authenticate") from None


def derive(kek: bytes, purpose: str) -> bytes:
    """A 256-bit key for one purpose, derived from the KEK (RFC 5869)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"keyless/" + purpose.encode()).derive(kek)
