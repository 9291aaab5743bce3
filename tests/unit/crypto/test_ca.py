"""The local CA and the server TLS certificate it issues."""

from __future__ import annotations

import datetime as dt
import ipaddress

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from keyless.crypto.ca import IssuedCert, create_ca, encrypted_pem, issue_client_certificate, issue_server_cert
from keyless.crypto.certificates import CertificateRejected, load_certificate
from keyless.crypto.client_keys import ClientKeyKind, certificate_signing_request, generate_client_key, private_key_pem
from keyless.crypto.keys import PrivateKey, generate, private_from_der, private_to_der

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


# -- client certificates from CSRs -------------------------------------------------------------------


def _csr(
    key: CertificateIssuerPrivateKeyTypes,
    common_name: str = "requested-by-client",
    *,
    with_extensions: bool = False,
) -> bytes:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    )
    if with_extensions:
        builder = (
            builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("evil.example")]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        )
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm).public_bytes(serialization.Encoding.PEM)


def _issue_rejected(ca: IssuedCert, csr: bytes, code: str) -> CertificateRejected:
    with pytest.raises(CertificateRejected) as info:
        issue_client_certificate(ca, csr, common_name="client-1", now=NOW)
    assert info.value.code == code, info.value.message
    return info.value


@pytest.fixture(scope="module")
def client_key() -> PrivateKey:
    return generate_client_key("p256")


@pytest.fixture(scope="module")
def client_cert(ca: IssuedCert, client_key: PrivateKey) -> x509.Certificate:
    csr = _csr(client_key, with_extensions=True)
    return x509.load_pem_x509_certificate(issue_client_certificate(ca, csr, common_name="client-1", now=NOW))


def test_client_cert_verifies_against_ca(client_cert: x509.Certificate, ca_cert: x509.Certificate) -> None:
    assert client_cert.issuer == ca_cert.subject
    client_cert.verify_directly_issued_by(ca_cert)
    assert isinstance(client_cert.signature_hash_algorithm, hashes.SHA384)


def test_client_cert_does_not_verify_against_another_ca(client_cert: x509.Certificate) -> None:
    impostor = x509.load_pem_x509_certificate(create_ca("Keyless Local CA", now=NOW).cert_pem)
    with pytest.raises(InvalidSignature):
        client_cert.verify_directly_issued_by(impostor)


def test_client_cert_subject_is_the_cas_choice(client_cert: x509.Certificate) -> None:
    assert _cn(client_cert.subject) == "client-1"
    assert "requested-by-client" not in client_cert.subject.rfc4514_string()


def test_client_cert_extensions_ignore_the_csr(client_cert: x509.Certificate) -> None:
    eku = client_cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert list(eku.value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    bc = client_cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca is False and bc.value.path_length is None
    ku = client_cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature
    assert not (ku.value.key_cert_sign or ku.value.crl_sign or ku.value.key_encipherment)
    with pytest.raises(x509.ExtensionNotFound):
        client_cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert {type(ext.value) for ext in client_cert.extensions} == {
        x509.ExtendedKeyUsage,
        x509.BasicConstraints,
        x509.KeyUsage,
        x509.AuthorityKeyIdentifier,
        x509.SubjectKeyIdentifier,
    }


def test_client_cert_key_identifiers(
    client_cert: x509.Certificate, ca_cert: x509.Certificate, client_key: PrivateKey
) -> None:
    aki = client_cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ca_ski.digest
    ski = client_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(client_key.public_key())


def test_client_cert_carries_the_csr_key(client_cert: x509.Certificate, client_key: PrivateKey) -> None:
    assert _same_public_key(client_cert, private_to_der(client_key))


def test_client_cert_validity_default(client_cert: x509.Certificate) -> None:
    issued_at = dt.datetime.fromtimestamp(NOW, dt.UTC)
    assert client_cert.not_valid_before_utc == issued_at - dt.timedelta(minutes=5)
    assert client_cert.not_valid_after_utc == issued_at - dt.timedelta(minutes=5) + dt.timedelta(days=90)


def test_client_cert_lifetime_capped(ca: IssuedCert, client_key: PrivateKey) -> None:
    csr = _csr(client_key)
    issued_at = dt.datetime.fromtimestamp(NOW, dt.UTC)
    for days, max_days, expected in ((1000, 397, 397), (30, 397, 30), (90, 7, 7)):
        pem = issue_client_certificate(ca, csr, common_name="c", now=NOW, days=days, max_days=max_days)
        cert = x509.load_pem_x509_certificate(pem)
        assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(days=expected)  # never over the cap
        assert cert.not_valid_before_utc == issued_at - dt.timedelta(minutes=5)
    with pytest.raises(ValueError):
        issue_client_certificate(ca, csr, common_name="c", now=NOW, days=0)


def test_client_cert_serials_are_random(ca: IssuedCert, client_key: PrivateKey) -> None:
    csr = _csr(client_key)
    serials = {
        x509.load_pem_x509_certificate(issue_client_certificate(ca, csr, common_name="c", now=NOW)).serial_number
        for _ in range(3)
    }
    assert len(serials) == 3


@pytest.mark.parametrize("kind", ["rsa2048", "ed25519"])
def test_client_cert_for_other_key_types(kind: ClientKeyKind, ca: IssuedCert, ca_cert: x509.Certificate) -> None:
    key = generate_client_key(kind)
    pem = issue_client_certificate(ca, certificate_signing_request(key, "x"), common_name="client-2", now=NOW)
    cert = x509.load_pem_x509_certificate(pem)
    cert.verify_directly_issued_by(ca_cert)
    assert _same_public_key(cert, private_to_der(key))
    info = load_certificate(pem, now=NOW)
    assert info.subject == "CN=client-2,O=Keyless"


def test_client_cert_accepts_der_csr(ca: IssuedCert, ca_cert: x509.Certificate, client_key: PrivateKey) -> None:
    der = x509.load_pem_x509_csr(_csr(client_key)).public_bytes(serialization.Encoding.DER)
    cert = x509.load_pem_x509_certificate(issue_client_certificate(ca, der, common_name="d", now=NOW))
    cert.verify_directly_issued_by(ca_cert)


def test_tampered_csr_is_refused(ca: IssuedCert, client_key: PrivateKey) -> None:
    der = x509.load_pem_x509_csr(_csr(client_key, "client-csr")).public_bytes(serialization.Encoding.DER)
    tampered = der.replace(b"client-csr", b"client-csX")
    assert tampered != der and x509.load_der_x509_csr(tampered).subject  # still parses
    _issue_rejected(ca, tampered, "bad_csr")


@pytest.mark.parametrize(
    "data",
    [b"", b"garbage", b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"],
    ids=["empty", "garbage", "bad-pem"],
)
def test_garbage_csr_is_refused(data: bytes, ca: IssuedCert) -> None:
    _issue_rejected(ca, data, "bad_csr")


def test_certificate_is_not_a_csr(ca: IssuedCert, server: IssuedCert) -> None:
    _issue_rejected(ca, server.cert_pem, "bad_csr")


def test_b27_csr_with_rsa_1024_refused(ca: IssuedCert) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the point of the test
    _issue_rejected(ca, _csr(weak), "key_size_not_allowed")


def test_b27_csr_with_p521_refused(ca: IssuedCert) -> None:
    _issue_rejected(ca, _csr(ec.generate_private_key(ec.SECP521R1())), "curve_not_allowed")


def test_b27_csr_with_ed448_refused(ca: IssuedCert) -> None:
    _issue_rejected(ca, _csr(ed448.Ed448PrivateKey.generate()), "key_type_not_allowed")


def test_csr_with_private_key_refused(ca: IssuedCert, client_key: PrivateKey) -> None:
    key_pem = private_key_pem(client_key)
    exc = _issue_rejected(ca, _csr(client_key) + key_pem, "private_key_in_upload")
    for line in key_pem.decode().splitlines()[1:-1]:
        assert line not in str(exc)


def test_oversized_csr_refused(ca: IssuedCert, client_key: PrivateKey) -> None:
    _issue_rejected(ca, _csr(client_key) + b"\n" * 20_000, "too_large")


def test_client_cert_requires_ec_ca(ca: IssuedCert, client_key: PrivateKey) -> None:
    rsa_ca = IssuedCert(cert_pem=ca.cert_pem, key_der=private_to_der(generate("RS256")))
    with pytest.raises(TypeError):
        issue_client_certificate(rsa_ca, _csr(client_key), common_name="c", now=NOW)


def test_issued_cert_repr_hides_the_private_key(ca: IssuedCert) -> None:
    assert ca.key_der.hex() not in repr(ca)
    assert "key_der" not in repr(ca)
