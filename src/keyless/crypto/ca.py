"""The local certificate authority that `keyless init` creates, and the certificates it issues.

The CA signs the TLS server certificate and client-authentication certificates from CSRs (certificate
credentials, host enrollment); for the latter the CA alone decides subject, extensions and lifetime.
Its private key is kept sealed under the KEK; the TLS key is written as an encrypted PKCS#8 PEM whose
password is derived from the KEK, because the TLS stack needs a file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from keyless.crypto.certificates import MAX_UPLOAD_BYTES, CertificateRejected, public_key_of_csr, reject_private_key_pem
from keyless.crypto.client_keys import client_key_usage
from keyless.crypto.keys import private_from_der, private_to_der
from keyless.crypto.thumbprints import b64u


@dataclass(frozen=True)
class IssuedCert:
    cert_pem: bytes
    key_der: bytes = field(repr=False)  # PKCS#8 DER, to be sealed or written encrypted by the caller


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Keyless"), x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    )


def create_ca(common_name: str, *, now: float, days: int = 3650) -> IssuedCert:
    key = ec.generate_private_key(ec.SECP384R1())
    start = dt.datetime.fromtimestamp(now, dt.UTC) - dt.timedelta(minutes=5)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA384())
    )
    return IssuedCert(cert.public_bytes(serialization.Encoding.PEM), private_to_der(key))


def issue_server_cert(
    ca: IssuedCert, *, hostnames: list[str], ips: list[str], now: float, days: int = 397
) -> IssuedCert:
    ca_key = private_from_der(ca.key_der)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise TypeError("the local CA key is expected to be EC")
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    key = ec.generate_private_key(ec.SECP256R1())
    start = dt.datetime.fromtimestamp(now, dt.UTC) - dt.timedelta(minutes=5)
    sans: list[x509.GeneralName] = [x509.DNSName(h) for h in hostnames]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hostnames[0] if hostnames else ips[0]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA384())
    )
    return IssuedCert(cert.public_bytes(serialization.Encoding.PEM), private_to_der(key))


def encrypted_pem(key_der: bytes, password: bytes) -> bytes:
    """PKCS#8 PEM encrypted with the best available scheme, for TLS stacks that need a key file."""
    key = private_from_der(key_der)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password),
    )


def _load_csr(csr_pem: bytes) -> x509.CertificateSigningRequest:
    if len(csr_pem) > MAX_UPLOAD_BYTES:
        raise CertificateRejected("too_large", f"the CSR is larger than {MAX_UPLOAD_BYTES // 1024} KiB")
    reject_private_key_pem(csr_pem)
    try:
        if b"-----BEGIN" in csr_pem:
            return x509.load_pem_x509_csr(csr_pem.strip())
        return x509.load_der_x509_csr(csr_pem)
    except (ValueError, x509.InvalidVersion):
        raise CertificateRejected("bad_csr", "the data is not a PKCS#10 certificate signing request") from None


def issue_client_certificate(
    ca: IssuedCert, csr_pem: bytes, *, common_name: str, now: float, days: int = 90, max_days: int = 397
) -> bytes:
    """A PEM client-authentication leaf for the key in `csr_pem` (PEM or DER), named `common_name`.

    The CSR only proves possession of its key: its requested subject and extensions are ignored.
    Validity runs from five minutes before `now` (clock skew) to `min(days, max_days)` days after it.
    """
    if days < 1 or max_days < 1:
        raise ValueError("certificate lifetime must be at least one day")
    csr = _load_csr(csr_pem)
    try:
        signature_ok = csr.is_signature_valid
    except (UnsupportedAlgorithm, ValueError):
        public_key_of_csr(csr)  # names the refused key type or curve
        raise CertificateRejected("bad_csr", "the CSR's signature cannot be checked") from None
    if not signature_ok:
        raise CertificateRejected("bad_csr", "the CSR's signature does not verify")
    facts = public_key_of_csr(csr)
    ca_key = private_from_der(ca.key_der)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise TypeError("the local CA key is expected to be EC")
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    try:
        ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski)
    except x509.ExtensionNotFound:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
    issued_at = dt.datetime.fromtimestamp(now, dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(facts.public_key)
        .serial_number(x509.random_serial_number())
        # Back-dated five minutes for clock skew; the lifetime counts from that start, so it never
        # exceeds `max_days` (a tenant's lifetime cap is checked against not_after - not_before).
        .not_valid_before(issued_at - dt.timedelta(minutes=5))
        .not_valid_after(issued_at - dt.timedelta(minutes=5) + dt.timedelta(days=min(days, max_days)))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(client_key_usage(), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(aki, critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(facts.public_key), critical=False)
        .sign(ca_key, hashes.SHA384())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


class IssuedByCa:
    """Whether a certificate was issued by this installation's CA (credential policy "internal CA",
    docs/policies.md): its issuer name is the CA's subject and the CA's key verifies its signature.
    Answers are remembered per certificate (a few thousand), so a sign-in pays one dict lookup;
    `ca_thumbprint` (the CA certificate's x5t#S256) names the CA an answer kept elsewhere is about
    (the `certificates.ca_checked` column, migration 0017)."""

    def __init__(self, ca_pem: bytes, limit: int = 4096) -> None:
        self._ca = x509.load_pem_x509_certificate(ca_pem)
        self.ca_thumbprint = b64u(hashlib.sha256(self._ca.public_bytes(serialization.Encoding.DER)).digest())
        self._seen: dict[bytes, bool] = {}
        self._limit = limit

    def __call__(self, der: bytes) -> bool:
        known = self._seen.get(der)
        if known is None:
            known = self._check(der)
            if len(self._seen) >= self._limit:
                self._seen.clear()
            self._seen[der] = known
        return known

    def _check(self, der: bytes) -> bool:
        try:
            x509.load_der_x509_certificate(der).verify_directly_issued_by(self._ca)
        except (ValueError, TypeError, UnsupportedAlgorithm, InvalidSignature):
            return False
        return True
