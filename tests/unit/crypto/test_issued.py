"""`keyless.crypto.ca.IssuedByCa` as the posture report uses it: a certificate counts as the local
CA's only when the CA's signature over it verifies, whatever issuer name it claims."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from keyless.crypto.ca import IssuedByCa, create_ca, issue_client_certificate
from keyless.crypto.certificates import load_certificate
from keyless.crypto.client_keys import certificate_signing_request, generate_client_key, self_signed_certificate

NOW = 1_800_000_000.0


def _der(pem: bytes) -> bytes:
    return load_certificate(pem).der


def test_the_cas_own_certificates_and_nothing_else() -> None:
    ca, other_ca = create_ca("Keyless CA", now=NOW), create_ca("Keyless CA", now=NOW)  # same name, other key
    csr = certificate_signing_request(generate_client_key("p256"), "x")
    ours = _der(issue_client_certificate(ca, csr, common_name="app", now=NOW))
    theirs = _der(issue_client_certificate(other_ca, csr, common_name="app", now=NOW))
    issued_by = IssuedByCa(ca.cert_pem)

    assert issued_by(ours) and issued_by(ours)  # the second answer is cached
    assert not issued_by(theirs)
    assert not issued_by(_der(self_signed_certificate(generate_client_key("p256"), "x", now=NOW)))
    assert not issued_by(b"\x30\x03garbage")


def test_a_certificate_naming_the_ca_without_its_signature_is_foreign() -> None:
    """An uploaded certificate may copy the CA's subject as its issuer name (and any key identifier):
    only the signature tells, so it is not counted as the internal CA's."""
    ca = create_ca("Keyless CA", now=NOW)
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    key = ec.generate_private_key(ec.SECP256R1())
    start = dt.datetime.fromtimestamp(NOW, dt.UTC)
    forged = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "a")]))
              .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(1)
              .not_valid_before(start).not_valid_after(start + dt.timedelta(days=30))
              .sign(key, hashes.SHA256()))
    der = forged.public_bytes(serialization.Encoding.DER)
    assert ca_cert.subject.public_bytes() in der
    assert not IssuedByCa(ca.cert_pem)(der)
