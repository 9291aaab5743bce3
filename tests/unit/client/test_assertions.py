"""`keyless.client`: client assertions signed with a certificate credential's key."""

from __future__ import annotations

import base64
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from keyless.client import CredentialError, build_client_assertion, load_certificate_credential
from keyless.crypto.certificates import CertificateRejected, load_certificate
from keyless.crypto.client_keys import generate_client_key, private_key_pem, self_signed_certificate
from keyless.crypto.keys import PrivateKey

NOW = 1_800_000_000.0
AUD = "https://127.0.0.1:8443/3f1c2a8e-1d5b-4f7e-9a63-0b1c2d3e4f50/v2.0"


def _pair(kind: str) -> tuple[PrivateKey, bytes]:
    key: PrivateKey = ec.generate_private_key(ec.SECP384R1()) if kind == "p384" else generate_client_key(kind)  # type: ignore[arg-type]
    return key, self_signed_certificate(key, "worker", now=NOW)


@pytest.mark.parametrize(("kind", "alg"), [("rsa2048", "PS256"), ("p256", "ES256"), ("p384", "ES384"),
                                           ("ed25519", "EdDSA")])
def test_assertion_claims_headers_and_default_algorithm(kind: str, alg: str) -> None:
    key, cert = _pair(kind)
    token = build_client_assertion(client_id="cid", audience=AUD, private_key=key, certificate_pem=cert, now=NOW)
    header = jwt.get_unverified_header(token)
    info = load_certificate(cert)
    assert header["alg"] == alg and header["typ"] == "JWT"
    assert header["x5t#S256"] == info.x5t_s256 and "=" not in header["x5t#S256"]
    assert "x5c" not in header
    claims = jwt.decode(token, key.public_key(), algorithms=[alg], audience=AUD,
                        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False})
    assert claims["iss"] == claims["sub"] == "cid"
    assert claims["iat"] == claims["nbf"] == int(NOW) and claims["exp"] == int(NOW) + 300
    assert len(claims["jti"]) == 36


def test_every_assertion_has_a_new_jti_and_x5c_is_standard_base64_der() -> None:
    key, cert = _pair("rsa2048")
    first = build_client_assertion(client_id="c", audience=AUD, private_key=key, certificate_pem=cert,
                                   send_x5c=True, alg="RS256", lifetime=600)
    second = build_client_assertion(client_id="c", audience=AUD, private_key=key, certificate_pem=cert)
    one, two = (jwt.decode(t, options={"verify_signature": False}) for t in (first, second))
    assert one["jti"] != two["jti"]
    assert one["exp"] - one["iat"] == 600
    header = jwt.get_unverified_header(first)
    assert header["alg"] == "RS256"
    assert base64.b64decode(header["x5c"][0], validate=True) == load_certificate(cert).der


def test_lifetime_and_algorithm_are_checked() -> None:
    key, cert = _pair("p256")
    with pytest.raises(ValueError, match="lifetime"):
        build_client_assertion(client_id="c", audience=AUD, private_key=key, certificate_pem=cert, lifetime=601)
    with pytest.raises(CredentialError, match="PS256"):
        build_client_assertion(client_id="c", audience=AUD, private_key=key, certificate_pem=cert, alg="PS256")


def test_load_certificate_credential(tmp_path: Path) -> None:
    key, cert = _pair("p256")
    (tmp_path / "c.pem").write_bytes(cert)
    (tmp_path / "c.key").write_bytes(private_key_pem(key))
    loaded, pem = load_certificate_credential(tmp_path / "c.pem", tmp_path / "c.key")
    assert pem == cert
    assert loaded.public_key().public_numbers() == key.public_key().public_numbers()  # type: ignore[union-attr]

    encrypted = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.BestAvailableEncryption(b"pw"))
    (tmp_path / "e.key").write_bytes(encrypted)
    load_certificate_credential(str(tmp_path / "c.pem"), str(tmp_path / "e.key"), "pw")
    with pytest.raises(CertificateRejected):
        load_certificate_credential(tmp_path / "c.pem", tmp_path / "e.key")


def test_load_refuses_a_foreign_key_and_missing_files(tmp_path: Path) -> None:
    _, cert = _pair("p256")
    other, _ = _pair("p256")
    (tmp_path / "c.pem").write_bytes(cert)
    (tmp_path / "o.key").write_bytes(private_key_pem(other))
    with pytest.raises(CredentialError, match="does not belong"):
        load_certificate_credential(tmp_path / "c.pem", tmp_path / "o.key")
    with pytest.raises(CredentialError, match="cannot read the private key"):
        load_certificate_credential(tmp_path / "c.pem", tmp_path / "missing.key")
