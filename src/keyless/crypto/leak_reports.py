"""Signatures of code hosts' leak reports (GitHub's secret-scanning partner programme; docs/leaks.md).

The sender signs the raw request body with ECDSA over P-256 and SHA-256 ("ECDSA-NIST-P256V1-SHA256"),
sends the DER signature base64-encoded in `Github-Public-Key-Signature` and the id of its key in
`Github-Public-Key-Identifier`. Its public keys are published as JSON, `{"public_keys": [{"key_identifier",
"key" (PEM), "is_current"}]}`; an operator keeps that document in a file, and replacing the file rotates
the keys (several may be listed at once, so a report signed by the previous key still verifies during
the overlap). Only P-256 keys are accepted: a key of another type in the file is refused at load, never
used with whatever algorithm it implies.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from keyless.errors import KeylessError

MAX_KEY_ID_LEN = 128
MAX_SIGNATURE_LEN = 256  # base64 of a DER ECDSA P-256 signature is at most 96 characters


class SenderKeysInvalid(KeylessError, ValueError):
    """The sender key document is not in the published format, or holds a key that is not P-256."""


@dataclass(frozen=True)
class SenderKeys:
    keys: dict[str, ec.EllipticCurvePublicKey] = field(repr=False)

    @classmethod
    def from_json(cls, document: bytes) -> SenderKeys:
        try:
            entries = json.loads(document)["public_keys"]
            if not isinstance(entries, list):
                raise TypeError
            keys: dict[str, ec.EllipticCurvePublicKey] = {}
            for entry in entries:
                key_id, pem = entry["key_identifier"], entry["key"]
                if not isinstance(key_id, str) or not isinstance(pem, str) or not 0 < len(key_id) <= MAX_KEY_ID_LEN:
                    raise TypeError
                key = serialization.load_pem_public_key(pem.encode("ascii"))
                if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
                    raise SenderKeysInvalid(f"key {key_id[:16]}… is not an ECDSA P-256 key")
                keys[key_id] = key
        except SenderKeysInvalid:
            raise
        except (ValueError, KeyError, TypeError, UnicodeError) as exc:
            raise SenderKeysInvalid("not a sender key document ({\"public_keys\": [{\"key_identifier\", "
                                    "\"key\"}]}) with PEM public keys") from exc
        return cls(keys)

    def verify(self, key_id: str, signature_b64: str, body: bytes) -> bool:
        """True only for a known key id and a valid signature of exactly these bytes."""
        key = self.keys.get(key_id)
        if key is None or len(signature_b64) > MAX_SIGNATURE_LEN:
            return False
        try:
            key.verify(base64.b64decode(signature_b64, validate=True), body, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, binascii.Error, ValueError):
            return False
        return True


def new_sender_key() -> tuple[bytes, str]:
    """A P-256 key pair as a code host has one: (PKCS#8 PEM private key, PEM public key). For tests and
    for an operator's own reporting tool."""
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = private.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")
    return pem, public


def sign_report(private_pem: bytes, body: bytes) -> str:
    """The `Github-Public-Key-Signature` value for `body`: base64 of the DER ECDSA-P256-SHA256 signature."""
    key = serialization.load_pem_private_key(private_pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise SenderKeysInvalid("not an ECDSA private key")
    return base64.b64encode(key.sign(body, ec.ECDSA(hashes.SHA256()))).decode("ascii")
