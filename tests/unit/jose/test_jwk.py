"""Public JWKs for signing keys: no private members, kid is the RFC 7638 thumbprint (I01, I02, I07)."""

from __future__ import annotations

import base64
import json

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from keyless.crypto.keys import PrivateKey, PublicKey, generate, public_of
from keyless.crypto.thumbprints import jwk_thumbprint, jwk_thumbprint_of_members, required_members
from keyless.jose.jwk import key_id, public_jwk
from keyless.jose.jws import VerificationKey, sign, verify

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k", "oth"}

RFC7638_N = (
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRX"
    "jBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSq"
    "zs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ"
    "-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
)


@pytest.fixture(scope="module")
def rsa_key() -> PrivateKey:
    return generate("RS256")


@pytest.fixture(scope="module")
def ec_key() -> PrivateKey:
    return generate("ES256")


@pytest.fixture(scope="module")
def ed_key() -> PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def _keys(rsa_key: PrivateKey, ec_key: PrivateKey, ed_key: PrivateKey) -> list[tuple[PublicKey, str]]:
    return [(public_of(rsa_key), "RS256"), (public_of(ec_key), "ES256"), (public_of(ed_key), "EdDSA")]


def test_i01_jwks_has_no_private_members(rsa_key: PrivateKey, ec_key: PrivateKey, ed_key: PrivateKey) -> None:
    for pub, alg in _keys(rsa_key, ec_key, ed_key):
        jwk = public_jwk(pub, alg)
        assert not (PRIVATE_MEMBERS & set(jwk)), jwk
        serialised = json.dumps(jwk)
        for member in PRIVATE_MEMBERS:
            assert f'"{member}":' not in serialised


def test_i01_rsa_jwk_does_not_leak_private_numbers(rsa_key: PrivateKey) -> None:
    assert isinstance(rsa_key, rsa.RSAPrivateKey)
    jwk = public_jwk(public_of(rsa_key), "RS256")
    values = set(jwk.values())
    priv = rsa_key.private_numbers()
    for secret in (priv.d, priv.p, priv.q, priv.dmp1, priv.dmq1, priv.iqmp):
        encoded = base64.urlsafe_b64encode(secret.to_bytes((secret.bit_length() + 7) // 8, "big"))
        assert encoded.rstrip(b"=").decode() not in values


def test_i01_public_jwk_accepts_only_public_keys(rsa_key: PrivateKey) -> None:
    # Passing the private key by mistake must not produce a JWK at all.
    with pytest.raises(TypeError):
        public_jwk(rsa_key, "RS256")  # type: ignore[arg-type]


def test_i07_kid_equals_thumbprint(rsa_key: PrivateKey, ec_key: PrivateKey, ed_key: PrivateKey) -> None:
    for pub, alg in _keys(rsa_key, ec_key, ed_key):
        jwk = public_jwk(pub, alg)
        assert jwk["kid"] == jwk_thumbprint(pub) == key_id(pub)
        required = {name: jwk[name] for name in required_members(pub)}
        assert jwk["kid"] == jwk_thumbprint_of_members(required)
        # The kid is not the hash of the full JWK (the I07 mistake).
        assert jwk["kid"] != jwk_thumbprint_of_members({k: v for k, v in jwk.items() if k != "kid"})


def test_i07_rfc7638_vector() -> None:
    key = rsa.RSAPublicNumbers(65537, int.from_bytes(base64.urlsafe_b64decode(RFC7638_N + "=="), "big"))
    jwk = public_jwk(key.public_key(), "RS256")
    assert jwk["kid"] == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    assert jwk == {
        "kty": "RSA",
        "e": "AQAB",
        "n": RFC7638_N,
        "kid": "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs",
        "use": "sig",
        "alg": "RS256",
    }


def test_rsa_jwk_members(rsa_key: PrivateKey) -> None:
    jwk = public_jwk(public_of(rsa_key), "RS256")
    assert set(jwk) == {"kty", "n", "e", "kid", "use", "alg"}
    assert jwk["kty"] == "RSA" and jwk["e"] == "AQAB" and jwk["use"] == "sig" and jwk["alg"] == "RS256"


def test_ec_jwk_members(ec_key: PrivateKey) -> None:
    assert isinstance(ec_key, ec.EllipticCurvePrivateKey)
    jwk = public_jwk(public_of(ec_key), "ES256")
    assert set(jwk) == {"kty", "crv", "x", "y", "kid", "use", "alg"}
    assert jwk["kty"] == "EC" and jwk["crv"] == "P-256" and jwk["alg"] == "ES256" and jwk["use"] == "sig"


def test_ed25519_jwk_members(ed_key: PrivateKey) -> None:
    jwk = public_jwk(public_of(ed_key), "EdDSA")
    assert set(jwk) == {"kty", "crv", "x", "kid", "use", "alg"}
    assert jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519"


def test_kid_is_stable_and_key_specific(ec_key: PrivateKey) -> None:
    pub = public_of(ec_key)
    assert key_id(pub) == key_id(public_of(ec_key)) == public_jwk(pub, "ES256")["kid"]
    assert key_id(pub) != key_id(public_of(generate("ES256")))


def test_kid_does_not_depend_on_alg(rsa_key: PrivateKey) -> None:
    pub = public_of(rsa_key)
    assert public_jwk(pub, "RS256")["kid"] == public_jwk(pub, "PS256")["kid"]


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_published_jwk_verifies_tokens(alg: str, rsa_key: PrivateKey, ec_key: PrivateKey) -> None:
    """A relying party that loads our JWK with a stock library verifies our signatures."""
    key = rsa_key if alg == "RS256" else ec_key
    jwk = public_jwk(public_of(key), alg)
    token = sign({"sub": "x"}, key, alg=alg, kid=jwk["kid"], typ="JWT")
    loaded = jwt.PyJWK(jwk)
    assert loaded.key_id == jwk["kid"]
    assert jwt.PyJWS().decode(token, loaded.key, algorithms=[alg]) == b'{"sub":"x"}'
    keys = {jwk["kid"]: VerificationKey(jwk["kid"], alg, loaded.key)}
    assert verify(token, keys=keys, algorithms={alg}, typ="JWT") == {"sub": "x"}
