"""Certificate credentials: the upload gate (catalog B27 key policy), x5c/x5t helpers and client key tooling."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x448, x25519
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes, CertificatePublicKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from keyless.crypto.certificates import (
    MAX_UPLOAD_BYTES,
    PRIVATE_KEY_MESSAGE,
    CertificateInfo,
    CertificateRejected,
    load_certificate,
    thumbprint_matches,
    x5c_der,
)
from keyless.crypto.client_keys import (
    ClientKeyKind,
    certificate_signing_request,
    generate_client_key,
    load_private_key_pem,
    private_key_pem,
    self_signed_certificate,
)
from keyless.crypto.keys import PrivateKey
from keyless.errors import KeylessError

NOW = 1_700_000_000.0
START = dt.datetime.fromtimestamp(NOW, dt.UTC) - dt.timedelta(days=1)
END = START + dt.timedelta(days=365)
PEM = serialization.Encoding.PEM
DER = serialization.Encoding.DER


def _build(
    public: CertificatePublicKeyTypes,
    signer: CertificateIssuerPrivateKeyTypes,
    *,
    cn: str = "client.example",
    not_before: dt.datetime = START,
    not_after: dt.datetime = END,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    algorithm = None if isinstance(signer, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey) else hashes.SHA256()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(signer, algorithm)
    )


def _self_signed(key: CertificateIssuerPrivateKeyTypes, **kwargs: object) -> x509.Certificate:
    return _build(key.public_key(), key, **kwargs)  # type: ignore[arg-type]


def _synthetic_rsa(bits: int) -> rsa.RSAPublicKey:
    """An RSA public key of any size without the cost of generating one (8192+ bits takes many seconds).

    The server only ever sees the certificate, so a random odd modulus of the right length is exactly what
    a real oversized key looks like to the upload gate.
    """
    modulus = secrets.randbits(bits) | (1 << (bits - 1)) | 1
    return rsa.RSAPublicNumbers(65537, modulus).public_key()


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(PEM)


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(DER)


def _rejected(data: bytes, code: str, **kwargs: float) -> CertificateRejected:
    with pytest.raises(CertificateRejected) as info:
        load_certificate(data, **kwargs)
    assert info.value.code == code, info.value.message
    return info.value


def _key_pem(key: PrivateKey | CertificateIssuerPrivateKeyTypes, fmt: serialization.PrivateFormat) -> bytes:
    return key.private_bytes(PEM, fmt, serialization.NoEncryption())


def _body_lines(pem: bytes) -> list[str]:
    return [line for line in pem.decode().splitlines() if line and not line.startswith("-----")]


def _assert_private_key_refused(data: bytes, key_pem: bytes) -> None:
    exc = _rejected(data, "private_key_in_upload")
    assert exc.message == PRIVATE_KEY_MESSAGE
    assert exc.__cause__ is None
    shown = str(exc) + repr(exc) + exc.message + repr(exc.args)
    for line in _body_lines(key_pem):
        assert line not in shown


# -- keys, generated once per module ------------------------------------------------------------------


@pytest.fixture(scope="module")
def issuer() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def rsa_cert(rsa_key: rsa.RSAPrivateKey) -> x509.Certificate:
    return _self_signed(rsa_key)


@pytest.fixture(scope="module")
def other_cert(issuer: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    return _self_signed(issuer, cn="other.example")


@pytest.fixture(scope="module")
def rsa_1024_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the point of the test


# -- accepted certificates ----------------------------------------------------------------------------


def test_rsa_pem_accepted(rsa_cert: x509.Certificate, rsa_key: rsa.RSAPrivateKey) -> None:
    info = load_certificate(_pem(rsa_cert), now=NOW)
    assert info.der == _der(rsa_cert)
    assert info.key_type == "RSA"
    assert info.key_size == 2048
    assert info.algorithms == frozenset({"RS256", "PS256"})
    assert info.subject == "CN=client.example"
    assert info.not_before == START.timestamp()
    assert info.not_after == END.timestamp()
    assert isinstance(info.public_key, rsa.RSAPublicKey)
    assert info.public_key.public_numbers() == rsa_key.public_key().public_numbers()


@pytest.mark.parametrize(
    ("make", "key_type", "key_size", "algorithms"),
    [
        (lambda: ec.generate_private_key(ec.SECP256R1()), "EC", 256, {"ES256"}),
        (lambda: ec.generate_private_key(ec.SECP384R1()), "EC", 384, {"ES384"}),
        (ed25519.Ed25519PrivateKey.generate, "Ed25519", 256, {"EdDSA"}),
    ],
    ids=["p256", "p384", "ed25519"],
)
def test_allowed_key_types(make: object, key_type: str, key_size: int, algorithms: set[str]) -> None:
    key = make()  # type: ignore[operator]
    info = load_certificate(_pem(_self_signed(key)))
    assert (info.key_type, info.key_size, info.algorithms) == (key_type, key_size, frozenset(algorithms))
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    assert info.public_key.public_bytes(DER, spki) == key.public_key().public_bytes(DER, spki)


@pytest.mark.parametrize("bits", [2048, 3072, 4096])
def test_b27_rsa_sizes_in_range_accepted(bits: int, issuer: ec.EllipticCurvePrivateKey) -> None:
    info = load_certificate(_der(_build(_synthetic_rsa(bits), issuer)))
    assert (info.key_type, info.key_size) == ("RSA", bits)


def test_der_accepted(rsa_cert: x509.Certificate) -> None:
    assert load_certificate(_der(rsa_cert)).der == _der(rsa_cert)


def test_pem_with_crlf_and_surrounding_whitespace(rsa_cert: x509.Certificate) -> None:
    crlf = b"\r\n".join(_pem(rsa_cert).splitlines())
    assert load_certificate(b"\r\n \t" + crlf + b"\r\n\r\n  ").der == _der(rsa_cert)
    assert load_certificate(b"\xef\xbb\xbf" + _pem(rsa_cert)).der == _der(rsa_cert)


def test_pem_saved_as_utf16(rsa_cert: x509.Certificate, rsa_key: rsa.RSAPrivateKey) -> None:
    for encoding in ("utf-16", "utf-16-be"):
        text = _pem(rsa_cert).decode()
        data = text.encode(encoding) if encoding == "utf-16" else b"\xfe\xff" + text.encode(encoding)
        assert load_certificate(data).der == _der(rsa_cert)
    key_pem = _key_pem(rsa_key, serialization.PrivateFormat.PKCS8)
    _assert_private_key_refused((_pem(rsa_cert) + key_pem).decode().encode("utf-16"), key_pem)
    _rejected(b"\xff\xfe\x00", "not_a_certificate")


def test_pem_with_explanatory_text(rsa_cert: x509.Certificate) -> None:
    text = b"subject=CN = client.example\nissuer=CN = client.example\n" + _pem(rsa_cert) + b"trailing note\n"
    assert load_certificate(text).der == _der(rsa_cert)


def test_thumbprints_match_independent_computation(rsa_cert: x509.Certificate) -> None:
    der = _der(rsa_cert)
    info = load_certificate(der)
    sha1 = hashlib.sha1(der, usedforsecurity=False).digest()
    assert info.x5t == base64.urlsafe_b64encode(sha1).decode().rstrip("=")
    assert info.x5t_s256 == base64.urlsafe_b64encode(hashlib.sha256(der).digest()).decode().rstrip("=")
    assert "=" not in info.x5t + info.x5t_s256
    assert info.x5t_s256 == base64.urlsafe_b64encode(rsa_cert.fingerprint(hashes.SHA256())).decode().rstrip("=")


def test_pem_round_trip(rsa_cert: x509.Certificate) -> None:
    info = load_certificate(_der(rsa_cert))
    pem = info.pem()
    assert pem.startswith("-----BEGIN CERTIFICATE-----\n") and pem.endswith("-----END CERTIFICATE-----\n")
    assert all(len(line) <= 64 for line in pem.splitlines())
    assert x509.load_pem_x509_certificate(pem.encode()) == rsa_cert
    assert load_certificate(pem.encode()) == info


def test_info_is_frozen(rsa_cert: x509.Certificate) -> None:
    info = load_certificate(_der(rsa_cert))
    with pytest.raises(AttributeError):
        info.x5t = "x"  # type: ignore[misc]


# -- key policy (catalog B27) -------------------------------------------------------------------------


def test_b27_rsa_1024_refused(rsa_1024_key: rsa.RSAPrivateKey) -> None:
    exc = _rejected(_pem(_self_signed(rsa_1024_key)), "key_size_not_allowed")
    assert "1024" in exc.message


def test_b27_rsa_2047_refused(issuer: ec.EllipticCurvePrivateKey) -> None:
    _rejected(_pem(_build(_synthetic_rsa(2047), issuer)), "key_size_not_allowed")


def test_b27_rsa_8192_refused(issuer: ec.EllipticCurvePrivateKey) -> None:
    exc = _rejected(_pem(_build(_synthetic_rsa(8192), issuer)), "key_size_not_allowed")
    assert "8192" in exc.message


def test_b27_rsa_16384_refused(issuer: ec.EllipticCurvePrivateKey) -> None:
    _rejected(_der(_build(_synthetic_rsa(16384), issuer)), "key_size_not_allowed")


@pytest.mark.parametrize(
    "curve",
    [ec.SECP192R1(), ec.SECP224R1(), ec.SECP521R1(), ec.SECP256K1(), ec.BrainpoolP256R1()],
    ids=lambda c: c.name,
)
def test_b27_curve_refused(curve: ec.EllipticCurve) -> None:
    exc = _rejected(_pem(_self_signed(ec.generate_private_key(curve))), "curve_not_allowed")
    assert curve.name in exc.message


def test_b27_dsa_refused() -> None:
    exc = _rejected(_pem(_self_signed(dsa.generate_private_key(2048))), "key_type_not_allowed")
    assert "DSA" in exc.message


def test_b27_ed448_refused() -> None:
    exc = _rejected(_pem(_self_signed(ed448.Ed448PrivateKey.generate())), "key_type_not_allowed")
    assert "Ed448" in exc.message


@pytest.mark.parametrize(
    "make", [x25519.X25519PrivateKey.generate, x448.X448PrivateKey.generate], ids=["x25519", "x448"]
)
def test_b27_key_agreement_keys_refused(make: object, issuer: ec.EllipticCurvePrivateKey) -> None:
    key = make()  # type: ignore[operator]
    _rejected(_pem(_build(key.public_key(), issuer)), "key_type_not_allowed")


# -- private keys are never accepted ------------------------------------------------------------------


@pytest.mark.parametrize(
    "fmt",
    [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL],
    ids=["pkcs8", "traditional"],
)
def test_pem_private_key_alone(fmt: serialization.PrivateFormat, rsa_key: rsa.RSAPrivateKey) -> None:
    key_pem = _key_pem(rsa_key, fmt)
    _assert_private_key_refused(key_pem, key_pem)


def test_pem_ec_and_openssh_private_keys() -> None:
    ec_pem = _key_pem(ec.generate_private_key(ec.SECP256R1()), serialization.PrivateFormat.TraditionalOpenSSL)
    assert b"EC PRIVATE KEY" in ec_pem
    _assert_private_key_refused(ec_pem, ec_pem)
    ssh_pem = _key_pem(ed25519.Ed25519PrivateKey.generate(), serialization.PrivateFormat.OpenSSH)
    assert b"OPENSSH PRIVATE KEY" in ssh_pem
    _assert_private_key_refused(ssh_pem, ssh_pem)


def test_pem_encrypted_private_key(rsa_key: rsa.RSAPrivateKey) -> None:
    enc = rsa_key.private_bytes(
        PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")
    )
    _assert_private_key_refused(enc, enc)


@pytest.mark.parametrize("key_first", [True, False], ids=["key-first", "cert-first"])
def test_pem_certificate_with_key(key_first: bool, rsa_key: rsa.RSAPrivateKey, rsa_cert: x509.Certificate) -> None:
    key_pem = _key_pem(rsa_key, serialization.PrivateFormat.PKCS8)
    data = key_pem + _pem(rsa_cert) if key_first else _pem(rsa_cert) + key_pem
    _assert_private_key_refused(data, key_pem)


def test_pem_unterminated_key_block(rsa_key: rsa.RSAPrivateKey, rsa_cert: x509.Certificate) -> None:
    key_pem = _key_pem(rsa_key, serialization.PrivateFormat.PKCS8)
    truncated = b"\n".join(key_pem.splitlines()[:-1])
    _assert_private_key_refused(_pem(rsa_cert) + truncated, key_pem)


def test_key_relabelled_as_certificate(rsa_key: rsa.RSAPrivateKey) -> None:
    key_pem = _key_pem(rsa_key, serialization.PrivateFormat.PKCS8)
    disguised = key_pem.replace(b"PRIVATE KEY", b"CERTIFICATE")
    _assert_private_key_refused(disguised, key_pem)


@pytest.mark.parametrize(
    "fmt",
    [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL],
    ids=["pkcs8", "traditional"],
)
def test_der_private_key(fmt: serialization.PrivateFormat, rsa_key: rsa.RSAPrivateKey) -> None:
    der = rsa_key.private_bytes(DER, fmt, serialization.NoEncryption())
    _assert_private_key_refused(der, _key_pem(rsa_key, serialization.PrivateFormat.PKCS8))


def test_der_private_keys_of_other_types() -> None:
    for key in (ec.generate_private_key(ec.SECP256R1()), ed25519.Ed25519PrivateKey.generate()):
        der = key.private_bytes(DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        _assert_private_key_refused(der, _key_pem(key, serialization.PrivateFormat.PKCS8))
    sec1 = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        DER, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    _rejected(sec1, "private_key_in_upload")


def test_der_encrypted_private_key(rsa_key: rsa.RSAPrivateKey) -> None:
    der = rsa_key.private_bytes(DER, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw"))
    _assert_private_key_refused(der, _key_pem(rsa_key, serialization.PrivateFormat.PKCS8))


def test_der_certificate_followed_by_key(rsa_key: rsa.RSAPrivateKey, rsa_cert: x509.Certificate) -> None:
    der = rsa_key.private_bytes(DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    _assert_private_key_refused(_der(rsa_cert) + der, _key_pem(rsa_key, serialization.PrivateFormat.PKCS8))


@pytest.mark.parametrize(
    "encryption",
    [serialization.NoEncryption(), serialization.BestAvailableEncryption(b"secret")],
    ids=["plain", "password"],
)
def test_pkcs12(
    encryption: serialization.KeySerializationEncryption, rsa_key: rsa.RSAPrivateKey, rsa_cert: x509.Certificate
) -> None:
    pfx = pkcs12.serialize_key_and_certificates(b"client", rsa_key, rsa_cert, None, encryption)
    key_pem = _key_pem(rsa_key, serialization.PrivateFormat.PKCS8)
    _assert_private_key_refused(pfx, key_pem)
    # the base64 text a key vault hands out is named for what it is, too
    _assert_private_key_refused(base64.b64encode(pfx), key_pem)


def test_pkcs12_without_key_is_still_refused(rsa_cert: x509.Certificate) -> None:
    pfx = pkcs12.serialize_key_and_certificates(b"client", None, None, [rsa_cert], serialization.NoEncryption())
    _rejected(pfx, "private_key_in_upload")


def test_pkcs12_legacy_encryption(rsa_key: rsa.RSAPrivateKey, rsa_cert: x509.Certificate) -> None:
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(2048)
        .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
        .hmac_hash(hashes.SHA1())  # noqa: S303 - what older Windows exports use
        .build(b"secret")
    )
    pfx = pkcs12.serialize_key_and_certificates(b"client", rsa_key, rsa_cert, None, encryption)
    _assert_private_key_refused(pfx, _key_pem(rsa_key, serialization.PrivateFormat.PKCS8))


# -- other rejections ---------------------------------------------------------------------------------


def test_multiple_pem_certificates(rsa_cert: x509.Certificate, other_cert: x509.Certificate) -> None:
    _rejected(_pem(rsa_cert) + _pem(other_cert), "multiple_certificates")
    _rejected(_pem(rsa_cert) + _pem(rsa_cert), "multiple_certificates")


def test_multiple_der_certificates(rsa_cert: x509.Certificate, other_cert: x509.Certificate) -> None:
    _rejected(_der(rsa_cert) + _der(other_cert), "multiple_certificates")


def test_pkcs7_bundle(rsa_cert: x509.Certificate, other_cert: x509.Certificate) -> None:
    _rejected(pkcs7.serialize_certificates([rsa_cert, other_cert], PEM), "not_a_certificate")
    _rejected(pkcs7.serialize_certificates([rsa_cert], DER), "not_a_certificate")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"  \r\n ",
        b"hello, world",
        b"\x00\x01\x02garbage\xff",
        b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
        b"-----BEGIN CERTIFICATE-----\nMIIB\n",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END X509 CRL-----\n",
    ],
    ids=["empty", "blank", "text", "binary", "bad-base64", "unterminated", "not-der", "label-mismatch"],
)
def test_not_a_certificate(data: bytes) -> None:
    _rejected(data, "not_a_certificate")


def test_other_pem_objects_are_not_certificates(rsa_key: rsa.RSAPrivateKey, rsa_cert: x509.Certificate) -> None:
    public_pem = rsa_key.public_key().public_bytes(PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    _rejected(public_pem, "not_a_certificate")
    _rejected(_pem(rsa_cert) + public_pem, "not_a_certificate")
    csr = x509.CertificateSigningRequestBuilder().subject_name(rsa_cert.subject).sign(rsa_key, hashes.SHA256())
    _rejected(csr.public_bytes(PEM), "not_a_certificate")
    _rejected(csr.public_bytes(DER), "not_a_certificate")
    _rejected(base64.b64encode(_der(rsa_cert)), "not_a_certificate")  # bare base64 is not PEM


def test_non_positive_serial(issuer: ec.EllipticCurvePrivateKey) -> None:
    serial = 0x4B1D_0000_1234_5678_9ABC
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "s")]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "s")]))
        .public_key(issuer.public_key())
        .serial_number(serial)
        .not_valid_before(START)
        .not_valid_after(END)
        .sign(issuer, hashes.SHA256())
    )
    encoded = serial.to_bytes(10, "big")
    assert _der(cert).count(encoded) == 1 and load_certificate(_der(cert)).der == _der(cert)
    negative = _der(cert).replace(encoded, b"\xcb" + encoded[1:])
    exc = _rejected(negative, "not_a_certificate")
    assert "serial" in exc.message
    _rejected(_der(cert).replace(encoded, bytes(10)), "not_a_certificate")


def test_der_with_trailing_garbage(rsa_cert: x509.Certificate) -> None:
    _rejected(_der(rsa_cert) + b"\x00\x00", "not_a_certificate")
    _rejected(_der(rsa_cert)[:-1], "not_a_certificate")


def test_too_large(rsa_cert: x509.Certificate) -> None:
    pem = _pem(rsa_cert)
    assert load_certificate(pem + b"\n" * (MAX_UPLOAD_BYTES - len(pem))).der == _der(rsa_cert)
    _rejected(pem + b"\n" * (MAX_UPLOAD_BYTES - len(pem) + 1), "too_large")
    _rejected(b"\x00" * (1024 * 1024), "too_large")


def test_expired(issuer: ec.EllipticCurvePrivateKey) -> None:
    not_after = dt.datetime.fromtimestamp(NOW, dt.UTC) - dt.timedelta(seconds=1)
    cert = _self_signed(issuer, not_before=START - dt.timedelta(days=30), not_after=not_after)
    _rejected(_pem(cert), "certificate_expired", now=NOW)
    assert load_certificate(_pem(cert), now=NOW - 1).not_after == NOW - 1
    assert load_certificate(_pem(cert)).not_after == NOW - 1  # no clock, no expiry check


def test_rejection_is_a_keyless_error() -> None:
    exc = CertificateRejected("some_code", "a sentence")
    assert isinstance(exc, KeylessError)
    assert (exc.code, exc.message, str(exc)) == ("some_code", "a sentence", "a sentence")


# -- x5c and thumbprints ------------------------------------------------------------------------------


def test_x5c_der_plain_and_wrapped(rsa_cert: x509.Certificate) -> None:
    der = _der(rsa_cert)
    b64 = base64.b64encode(der).decode()
    assert x5c_der(b64) == der
    wrapped = "\n".join(b64[i : i + 64] for i in range(0, len(b64), 64))
    assert "\n" in wrapped
    assert x5c_der(wrapped) == der
    assert x5c_der(" \r\n".join(b64[i : i + 76] for i in range(0, len(b64), 76)) + "\n") == der
    assert x5c_der(b64.rstrip("=")) == der
    assert load_certificate(x5c_der(wrapped)).der == der


@pytest.mark.parametrize(
    "entry",
    ["", "   ", "not base64!", "A", "AAAA", "é" * 8, "-_-_"],
    ids=["empty", "blank", "bang", "one", "zeros", "utf8", "urlsafe"],
)
def test_x5c_der_garbage(entry: str) -> None:
    with pytest.raises(CertificateRejected) as info:
        x5c_der(entry)
    assert info.value.code == "bad_x5c"


def test_x5c_der_non_string_and_huge() -> None:
    with pytest.raises(CertificateRejected):
        x5c_der(12345)  # type: ignore[arg-type]
    with pytest.raises(CertificateRejected):
        x5c_der(base64.b64encode(b"\x30" + b"\x00" * (MAX_UPLOAD_BYTES + 10)).decode())


@pytest.fixture(scope="module")
def rsa_info(rsa_cert: x509.Certificate) -> CertificateInfo:
    return load_certificate(_der(rsa_cert))


def test_thumbprint_matches_padded_and_unpadded(rsa_info: CertificateInfo, rsa_cert: x509.Certificate) -> None:
    der = _der(rsa_cert)
    padded_sha1 = base64.urlsafe_b64encode(hashlib.sha1(der, usedforsecurity=False).digest()).decode()
    padded_sha256 = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).decode()
    assert padded_sha1.endswith("=") and padded_sha256.endswith("=")
    assert thumbprint_matches(padded_sha1, rsa_info, sha256=False)
    assert thumbprint_matches(padded_sha1.rstrip("="), rsa_info, sha256=False)
    assert thumbprint_matches(padded_sha256, rsa_info, sha256=True)
    assert thumbprint_matches(padded_sha256.rstrip("="), rsa_info, sha256=True)


def test_thumbprint_mismatches(
    rsa_info: CertificateInfo, rsa_cert: x509.Certificate, other_cert: x509.Certificate
) -> None:
    other = load_certificate(_der(other_cert))
    assert not thumbprint_matches(other.x5t, rsa_info, sha256=False)
    assert not thumbprint_matches(other.x5t_s256, rsa_info, sha256=True)
    assert not thumbprint_matches(rsa_info.x5t, rsa_info, sha256=True)  # the wrong hash for the header
    assert not thumbprint_matches(rsa_info.x5t_s256, rsa_info, sha256=False)
    hex_sha1 = rsa_cert.fingerprint(hashes.SHA1()).hex()  # noqa: S303
    assert not thumbprint_matches(hex_sha1, rsa_info, sha256=False)
    assert not thumbprint_matches(rsa_info.x5t[:-1], rsa_info, sha256=False)
    assert not thumbprint_matches("", rsa_info, sha256=False)
    assert not thumbprint_matches("é" + rsa_info.x5t, rsa_info, sha256=False)
    assert not thumbprint_matches(None, rsa_info, sha256=False)  # type: ignore[arg-type]


# -- client key tooling -------------------------------------------------------------------------------

KINDS: tuple[ClientKeyKind, ...] = ("rsa2048", "p256", "ed25519")


@pytest.fixture(scope="module")
def client_keys() -> dict[ClientKeyKind, PrivateKey]:
    return {kind: generate_client_key(kind) for kind in KINDS}


def test_generate_client_key(client_keys: dict[ClientKeyKind, PrivateKey]) -> None:
    rsa_client = client_keys["rsa2048"]
    assert isinstance(rsa_client, rsa.RSAPrivateKey) and rsa_client.key_size == 2048
    p256 = client_keys["p256"]
    assert isinstance(p256, ec.EllipticCurvePrivateKey) and isinstance(p256.curve, ec.SECP256R1)
    assert isinstance(client_keys["ed25519"], ed25519.Ed25519PrivateKey)
    with pytest.raises(ValueError):
        generate_client_key("rsa1024")  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", KINDS)
def test_private_key_pem_round_trip(kind: ClientKeyKind, client_keys: dict[ClientKeyKind, PrivateKey]) -> None:
    key = client_keys[kind]
    pem = private_key_pem(key)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    loaded = load_private_key_pem(pem)
    assert private_key_pem(loaded) == pem


def test_load_private_key_pem_with_password(client_keys: dict[ClientKeyKind, PrivateKey]) -> None:
    key = client_keys["p256"]
    enc = key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw"))
    assert private_key_pem(load_private_key_pem(enc, b"pw")) == private_key_pem(key)
    codes = []
    for data, password in ((enc, None), (enc, b"wrong"), (private_key_pem(key), b"pw"), (b"nonsense", None)):
        with pytest.raises(CertificateRejected) as info:
            load_private_key_pem(data, password)
        codes.append(info.value.code)
    assert codes == ["password_required", "bad_private_key", "bad_private_key", "bad_private_key"]


def test_load_private_key_pem_applies_key_policy(rsa_1024_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(CertificateRejected) as info:
        load_private_key_pem(_key_pem(rsa_1024_key, serialization.PrivateFormat.PKCS8))
    assert info.value.code == "key_size_not_allowed"
    with pytest.raises(CertificateRejected) as info:
        load_private_key_pem(_key_pem(ed448.Ed448PrivateKey.generate(), serialization.PrivateFormat.PKCS8))
    assert info.value.code == "key_type_not_allowed"


@pytest.mark.parametrize("kind", KINDS)
def test_self_signed_certificate(kind: ClientKeyKind, client_keys: dict[ClientKeyKind, PrivateKey]) -> None:
    key = client_keys[kind]
    pem = self_signed_certificate(key, "host-1.example", now=NOW, days=30)
    cert = x509.load_pem_x509_certificate(pem)
    cert.verify_directly_issued_by(cert)
    assert cert.subject == cert.issuer
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "host-1.example"
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(days=30)
    assert cert.not_valid_before_utc == dt.datetime.fromtimestamp(NOW, dt.UTC) - dt.timedelta(minutes=5)
    if kind == "ed25519":
        assert cert.signature_hash_algorithm is None
    else:
        assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca is False
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and not ku.value.key_cert_sign
    info = load_certificate(pem, now=NOW)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    assert info.public_key.public_bytes(DER, spki) == key.public_key().public_bytes(DER, spki)


def test_self_signed_certificate_default_lifetime(client_keys: dict[ClientKeyKind, PrivateKey]) -> None:
    cert = x509.load_pem_x509_certificate(self_signed_certificate(client_keys["p256"], "h", now=NOW))
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(days=365)


def test_self_signed_certificate_refuses_weak_key(rsa_1024_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(CertificateRejected) as info:
        self_signed_certificate(rsa_1024_key, "h", now=NOW)
    assert info.value.code == "key_size_not_allowed"


@pytest.mark.parametrize("kind", KINDS)
def test_certificate_signing_request(kind: ClientKeyKind, client_keys: dict[ClientKeyKind, PrivateKey]) -> None:
    key = client_keys[kind]
    pem = certificate_signing_request(key, "host-2.example")
    assert pem.startswith(b"-----BEGIN CERTIFICATE REQUEST-----")
    csr = x509.load_pem_x509_csr(pem)
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "host-2.example"
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    assert csr.public_key().public_bytes(DER, spki) == key.public_key().public_bytes(DER, spki)


def test_pem_with_explanatory_text_that_also_parses_as_der_elements(rsa_cert: x509.Certificate) -> None:
    """Explanatory text can make the whole upload a clean chain of DER elements by chance (the first
    bytes `su` read as a tag and a length, and so on through the base64): still the PEM block it is."""
    from keyless.crypto.der import split_der

    for n in range(4000):
        text = b"subject=CN = client.example\nissuer=CN = client.example\n" + _pem(rsa_cert) + b"note " * (n % 40) \
            + b"x" * (n // 40) + b"\n"
        if split_der(text) is not None:
            break
    else:
        pytest.fail("no explanatory text made the upload parse as DER elements")
    assert load_certificate(text).der == _der(rsa_cert)
