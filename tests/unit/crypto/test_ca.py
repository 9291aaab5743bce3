"""The local CA and the server TLS certificate it issues."""

from __future__ import annotations

import datetime as dt
import ipaddress

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from keyless.crypto.ca import IssuedCert, create_ca, encrypted_pem, issue_server_cert
from keyless.crypto.keys import generate, private_from_der, private_to_der

NOW = 1_700_000_000.0
HOSTNAMES = ["keyless.example", "localhost"]
IPS = ["127.0.0.1", "::1"]


@pytest.fixture(scope="module")
def ca() -> IssuedCert:
    return create_ca("Keyless Local CA", now=NOW)


@pytest.fixture(scope="module")
def ca_cert(ca: IssuedCert) -> x509.Certificate:
    return x509.load_pem_x509_certificate(ca.cert_pem)


@pytest.fixture(scope="module")
def server(ca: IssuedCert) -> IssuedCert:
    return issue_server_cert(ca, hostnames=HOSTNAMES, ips=IPS, now=NOW)


@pytest.fixture(scope="module")
def server_cert(server: IssuedCert) -> x509.Certificate:
    return x509.load_pem_x509_certificate(server.cert_pem)


def _cn(name: x509.Name) -> str:
    (attr,) = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attr.value)


def _same_public_key(cert: x509.Certificate, key_der: bytes) -> bool:
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return cert.public_key().public_bytes(serialization.Encoding.DER, spki) == private_from_der(
        key_der
    ).public_key().public_bytes(serialization.Encoding.DER, spki)


# -- CA ---------------------------------------------------------------------------------------------


def test_ca_pem_and_der(ca: IssuedCert) -> None:
    assert ca.cert_pem.startswith(b"-----BEGIN CERTIFICATE-----")
    key = private_from_der(ca.key_der)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert isinstance(key.curve, ec.SECP384R1)


def test_ca_has_ca_basic_constraints(ca_cert: x509.Certificate) -> None:
    ext = ca_cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert ext.critical
    assert ext.value.ca is True
    assert ext.value.path_length == 0


def test_ca_key_usage(ca_cert: x509.Certificate) -> None:
    ext = ca_cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ext.critical
    assert ext.value.key_cert_sign and ext.value.crl_sign
    assert not ext.value.digital_signature and not ext.value.key_encipherment


def test_ca_is_self_signed(ca: IssuedCert, ca_cert: x509.Certificate) -> None:
    assert ca_cert.subject == ca_cert.issuer
    assert _cn(ca_cert.subject) == "Keyless Local CA"
    ca_cert.verify_directly_issued_by(ca_cert)
    assert _same_public_key(ca_cert, ca.key_der)


def test_ca_subject_key_identifier(ca_cert: x509.Certificate) -> None:
    ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(ca_cert.public_key())


def test_ca_validity(ca_cert: x509.Certificate) -> None:
    start = dt.datetime.fromtimestamp(NOW, dt.UTC) - dt.timedelta(minutes=5)
    assert ca_cert.not_valid_before_utc == start
    assert ca_cert.not_valid_after_utc == start + dt.timedelta(days=3650)
    short = x509.load_pem_x509_certificate(create_ca("short", now=NOW, days=1).cert_pem)
    assert short.not_valid_after_utc - short.not_valid_before_utc == dt.timedelta(days=1)


def test_cas_are_distinct(ca: IssuedCert) -> None:
    other = create_ca("Keyless Local CA", now=NOW)
    assert other.key_der != ca.key_der
    assert (
        x509.load_pem_x509_certificate(other.cert_pem).serial_number
        != x509.load_pem_x509_certificate(ca.cert_pem).serial_number
    )


# -- server certificate ------------------------------------------------------------------------------


def test_server_cert_sans(server_cert: x509.Certificate) -> None:
    san = server_cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == HOSTNAMES
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address(ip) for ip in IPS]


def test_server_cert_eku_server_auth(server_cert: x509.Certificate) -> None:
    eku = server_cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_server_cert_is_not_a_ca(server_cert: x509.Certificate) -> None:
    ext = server_cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert ext.critical
    assert ext.value.ca is False


def test_server_cert_verifies_against_ca(server_cert: x509.Certificate, ca_cert: x509.Certificate) -> None:
    assert server_cert.issuer == ca_cert.subject
    server_cert.verify_directly_issued_by(ca_cert)


def test_server_cert_does_not_verify_against_another_ca(server_cert: x509.Certificate) -> None:
    impostor = x509.load_pem_x509_certificate(create_ca("Keyless Local CA", now=NOW).cert_pem)
    with pytest.raises(InvalidSignature):
        server_cert.verify_directly_issued_by(impostor)
    other_name = x509.load_pem_x509_certificate(create_ca("Other CA", now=NOW).cert_pem)
    with pytest.raises(ValueError):
        server_cert.verify_directly_issued_by(other_name)


def test_server_cert_authority_key_identifier(
    server_cert: x509.Certificate, ca_cert: x509.Certificate
) -> None:
    aki = server_cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest


def test_server_cert_key(server: IssuedCert, server_cert: x509.Certificate, ca: IssuedCert) -> None:
    key = private_from_der(server.key_der)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert isinstance(key.curve, ec.SECP256R1)
    assert _same_public_key(server_cert, server.key_der)
    assert server.key_der != ca.key_der


def test_server_cert_subject_and_validity(server_cert: x509.Certificate) -> None:
    assert _cn(server_cert.subject) == "keyless.example"
    start = dt.datetime.fromtimestamp(NOW, dt.UTC) - dt.timedelta(minutes=5)
    assert server_cert.not_valid_before_utc == start
    assert server_cert.not_valid_after_utc == start + dt.timedelta(days=397)


def test_server_cert_ip_only(ca: IssuedCert, ca_cert: x509.Certificate) -> None:
    issued = issue_server_cert(ca, hostnames=[], ips=["10.0.0.7"], now=NOW, days=30)
    cert = x509.load_pem_x509_certificate(issued.cert_pem)
    assert _cn(cert.subject) == "10.0.0.7"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == []
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.7")]
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(days=30)
    cert.verify_directly_issued_by(ca_cert)


def test_server_cert_rejects_invalid_ip(ca: IssuedCert) -> None:
    with pytest.raises(ValueError):
        issue_server_cert(ca, hostnames=["a"], ips=["not-an-ip"], now=NOW)


def test_server_cert_requires_ec_ca(ca: IssuedCert) -> None:
    rsa_ca = IssuedCert(cert_pem=ca.cert_pem, key_der=private_to_der(generate("RS256")))
    with pytest.raises(TypeError):
        issue_server_cert(rsa_ca, hostnames=["a"], ips=[], now=NOW)


# -- encrypted PEM -----------------------------------------------------------------------------------


def test_encrypted_pem_loads_only_with_the_password(server: IssuedCert) -> None:
    pem = encrypted_pem(server.key_der, b"correct horse")
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    loaded = serialization.load_pem_private_key(pem, password=b"correct horse")
    assert private_to_der(loaded) == server.key_der  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        serialization.load_pem_private_key(pem, password=None)
    with pytest.raises(ValueError):
        serialization.load_pem_private_key(pem, password=b"wrong horse")
    with pytest.raises((TypeError, ValueError)):  # an empty password counts as none
        serialization.load_pem_private_key(pem, password=b"")


def test_encrypted_pem_does_not_contain_plain_key(server: IssuedCert) -> None:
    pem = encrypted_pem(server.key_der, b"pw")
    plain = private_from_der(server.key_der).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    body = b"".join(plain.splitlines()[1:-1])
    assert body not in b"".join(pem.splitlines())
    assert encrypted_pem(server.key_der, b"pw") != pem  # fresh salt/IV every time
