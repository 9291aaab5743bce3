"""Signature checks of the client-assertion hot path (issue 18): PyJWT's answers for RS256 and for
the P-256 test in front of ES256, without its per-call objects. Each is differentially tested against
PyJWT (tests/unit/crypto/test_verifying.py); signing stays in `keyless.crypto.keys`."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from keyless.crypto.keys import PublicKey, is_p256_public

_PKCS1V15 = padding.PKCS1v15()
_RSA_PUBLIC = rsa.RSAPublicNumbers(65537, 2**2047 + 1).public_key().__class__  # the class cryptography makes
_SHA256 = hashes.SHA256()
_P256_PUBLIC: dict[int, object] = {}  # id -> the key object itself: keys already found to be P-256


def p256_public(key: object) -> bool:
    """`keys.is_p256_public`, remembered by identity for the few key objects that stay in caches
    (registered certificates, issuer key sets): `key.curve` builds a new curve object on every call,
    a few µs of every ES256 client assertion. An entry holds its object, so the id cannot be reused
    while it is there."""
    if _P256_PUBLIC.get(id(key)) is key:
        return True
    if not is_p256_public(key):
        return False
    if len(_P256_PUBLIC) >= 1024:
        _P256_PUBLIC.clear()
    _P256_PUBLIC[id(key)] = key
    return True


def verify_rs256(key: PublicKey, data: bytes, signature: bytes) -> bool:
    """Whether `signature` is an RSASSA-PKCS1-v1_5 / SHA-256 signature of `data` under the RSA `key`
    (RFC 7518 §3.3): PyJWT's RS256 `verify`, without its per-call padding and hash objects; False for
    a key that is not RSA (PyJWT's call raises TypeError there, which `jws` turns into False)."""
    if type(key) is not _RSA_PUBLIC and not isinstance(key, rsa.RSAPublicKey):  # the ABC's check costs a frame
        return False
    try:
        key.verify(signature, data, _PKCS1V15, _SHA256)
    except InvalidSignature:
        return False
    return True
