"""Client-side key tooling: keys, self-signed certificates and CSRs made on the client's own host.

The CLI (`keyless cert new`, `keyless login`), the host agent and the client SDK use these; they live in
`keyless.crypto` because it is the only package allowed to import `cryptography`. Every key is checked
against the same key policy as an upload (`keyless.crypto.certificates.check_key_policy`).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from keyless.crypto.certificates import CertificateRejected, check_key_policy
from keyless.crypto.keys import PrivateKey

ClientKeyKind = Literal["rsa2048", "p256", "ed25519"]


def generate_client_key(kind: ClientKeyKind) -> PrivateKey:
    if kind == "rsa2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unsupported client key kind {kind!r}")


def private_key_pem(key: PrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM; the caller writes it with mode 0600 on the client's host."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_private_key_pem(data: bytes, password: bytes | None = None) -> PrivateKey:
    """Load a client's PEM private key; refuses wrong passwords and keys the server would not accept."""
    try:
        key = serialization.load_pem_private_key(data, password=password)
    except TypeError:
        if password is None:
            raise CertificateRejected("password_required", "the private key is encrypted; give its password") from None
        raise CertificateRejected("bad_private_key", "the private key is not encrypted; give no password") from None
    except (ValueError, UnsupportedAlgorithm):
        raise CertificateRejected(
            "bad_private_key", "the data is not a PEM private key, or the password is wrong"
        ) from None
    check_key_policy(key.public_key())
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise CertificateRejected("key_type_not_allowed", "this type of key is not allowed")  # the policy ran first
    return key


def _hash_for(key: PrivateKey) -> hashes.SHA256 | None:
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def _cn_name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def self_signed_certificate(key: PrivateKey, common_name: str, *, now: float, days: int = 365) -> bytes:
    """A PEM client-authentication certificate for `key`, to register as a certificate credential."""
    check_key_policy(key.public_key())
    start = dt.datetime.fromtimestamp(now, dt.UTC) - dt.timedelta(minutes=5)
    name = _cn_name(common_name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(client_key_usage(), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, _hash_for(key))
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def certificate_signing_request(key: PrivateKey, common_name: str) -> bytes:
    """A PEM CSR for `key`; the local CA decides the issued subject and extensions regardless."""
    check_key_policy(key.public_key())
    csr = x509.CertificateSigningRequestBuilder().subject_name(_cn_name(common_name)).sign(key, _hash_for(key))
    return csr.public_bytes(serialization.Encoding.PEM)


def client_key_usage() -> x509.KeyUsage:
    """KeyUsage for client-authentication leaves: digital signature only."""
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
        encipher_only=False, decipher_only=False,
    )


def load_pkcs12_credential(data: bytes, password: bytes | None = None) -> tuple[PrivateKey, bytes]:
    """The private key and leaf certificate (PEM) of a PKCS#12/PFX bundle, for client credentials
    (azure-identity and Windows tooling hand these out). The key policy applies as for uploads."""
    try:
        key, cert, _chain = pkcs12.load_key_and_certificates(data, password)
    except TypeError:
        raise CertificateRejected("password_required", "the PKCS#12 file is encrypted; give its password") from None
    except ValueError:
        raise CertificateRejected("bad_pkcs12", "not a PKCS#12 file, or the password is wrong") from None
    if key is None or cert is None:
        raise CertificateRejected("bad_pkcs12", "the PKCS#12 file must hold a private key and its certificate")
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise CertificateRejected("key_type_not_allowed", "the PKCS#12 key is not RSA, EC or Ed25519")
    check_key_policy(key.public_key())
    return key, cert.public_bytes(serialization.Encoding.PEM)
