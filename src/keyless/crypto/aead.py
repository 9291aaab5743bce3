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


class Opener:
    """One key's AES-256-GCM, made once to open many blobs: `AESGCM(key)` sets up a cipher context and
    its key schedule, which was most of a vault read's AES-GCM time when made per blob (issue 18). The
    key is never in a `repr`."""

    __slots__ = ("_cipher",)

    def __init__(self, key: bytes) -> None:
        self._cipher = AESGCM(key)

    def __repr__(self) -> str:
        return "Opener(...)"

    def open(self, blob: bytes, aad: bytes) -> bytes:
        if len(blob) < 1 + 12 + 16 or blob[:1] != _VERSION:
            raise DecryptionFailed("sealed data is malformed")
        try:
            return self._cipher.decrypt(blob[1:13], blob[13:], aad)
        except InvalidTag:
            raise DecryptionFailed("sealed data did not authenticate") from None


def open_sealed(key: bytes, blob: bytes, aad: bytes) -> bytes:
    return Opener(key).open(blob, aad)


def derive(kek: bytes, purpose: str) -> bytes:
    """A 256-bit key for one purpose, derived from the KEK (RFC 5869)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"keyless/" + purpose.encode()).derive(kek)
