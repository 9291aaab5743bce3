"""Signing key pairs for issued tokens.

Keys are handled as `cryptography` objects; other packages see them only as opaque values passed to
`keyless.jose`. Serialised private keys are PKCS#8 DER, always sealed with `aead.seal` before storage.
"""

from __future__ import annotations

from typing import Literal, TypeAlias, TypeGuard, cast

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

PrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey: TypeAlias = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

SigningAlg = Literal["RS256", "ES256"]
SIGNING_ALGS: tuple[SigningAlg, ...] = ("RS256", "ES256")


def generate(alg: str) -> PrivateKey:
    """A fresh key for `alg`: RSA-2048 for RS256, P-256 for ES256."""
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError(f"unsupported signing algorithm {alg!r}")


def private_to_der(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def private_from_der(data: bytes) -> PrivateKey:
    key = serialization.load_der_private_key(data, password=None)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise ValueError("unsupported private key type")
    return key


def public_of(key: PrivateKey) -> PublicKey:
    return key.public_key()


def public_to_pem(key: PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def is_public_key(obj: object) -> TypeGuard[PublicKey]:
    return isinstance(obj, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey)


_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


_P256_SIGNER: list[PrivateKey | None] = [None]  # the last key found to be a P-256 private key


def sign_es256(key: PrivateKey, data: bytes) -> bytes:
    """ECDSA P-256 with SHA-256 over `data`, as the JWS signature RFC 7518 §3.4 defines: R and S as
    32-byte big-endian integers, concatenated (OpenSSL returns DER). What PyJWT's ES256 `sign` does,
    without its per-call algorithm object and generic conversion (the token endpoint's hot path). The
    key's type and curve are checked once per key object (one tenant key signs every token)."""
    if key is not _P256_SIGNER[0]:
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise ValueError("ES256 needs a P-256 key")
        _P256_SIGNER[0] = key
    r, s = decode_dss_signature(cast(ec.EllipticCurvePrivateKey, key).sign(data, _ECDSA_SHA256))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def is_p256_public(key: object) -> bool:
    return isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"


def verify_es256(key: PublicKey, data: bytes, signature: bytes) -> bool:
    """Whether `signature` (R || S, 32 bytes each, RFC 7518 §3.4) is a P-256 / SHA-256 signature of
    `data` under `key` (which the caller checked with `is_p256_public`): PyJWT's ES256 `verify` for
    such a key, without its per-call algorithm objects."""
    if len(signature) != 64 or not isinstance(key, ec.EllipticCurvePublicKey):
        return False
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    try:
        key.verify(der, data, _ECDSA_SHA256)
    except InvalidSignature:
        return False
    return True
