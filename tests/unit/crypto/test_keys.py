"""Signing key generation and PKCS#8 DER serialisation."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, x25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from keyless.crypto.keys import (
    SIGNING_ALGS,
    PrivateKey,
    generate,
    is_p256_public,
    private_from_der,
    private_to_der,
    public_of,
    public_to_pem,
    sign_es256,
    verify_es256,
)


@pytest.fixture(scope="module")
def rsa_key() -> PrivateKey:
    return generate("RS256")


@pytest.fixture(scope="module")
def ec_key() -> PrivateKey:
    return generate("ES256")


def test_signing_algs() -> None:
    assert SIGNING_ALGS == ("RS256", "ES256")


def test_generate_rs256(rsa_key: PrivateKey) -> None:
    assert isinstance(rsa_key, rsa.RSAPrivateKey)
    assert rsa_key.key_size == 2048
    assert rsa_key.public_key().public_numbers().e == 65537


def test_generate_es256(ec_key: PrivateKey) -> None:
    assert isinstance(ec_key, ec.EllipticCurvePrivateKey)
    assert isinstance(ec_key.curve, ec.SECP256R1)


def test_generate_gives_fresh_keys() -> None:
    a, b = generate("ES256"), generate("ES256")
    assert private_to_der(a) != private_to_der(b)


@pytest.mark.parametrize(
    "alg", ["HS256", "none", "None", "", "rs256", "es256", "ES384", "PS256", "EdDSA", "RS512"]
)
def test_unsupported_alg_raises_value_error(alg: str) -> None:
    with pytest.raises(ValueError, match="unsupported"):
        generate(alg)


def _roundtrip(key: PrivateKey) -> None:
    der = private_to_der(key)
    assert der[:1] == b"\x30"  # ASN.1 SEQUENCE
    # PKCS#8, unencrypted: loadable by the stock loader without a password.
    assert serialization.load_der_private_key(der, password=None) is not None
    loaded = private_from_der(der)
    assert private_to_der(loaded) == der
    assert public_to_pem(public_of(loaded)) == public_to_pem(public_of(key))


def test_der_roundtrip_rsa(rsa_key: PrivateKey) -> None:
    _roundtrip(rsa_key)
    loaded = private_from_der(private_to_der(rsa_key))
    assert isinstance(loaded, rsa.RSAPrivateKey)
    assert loaded.private_numbers() == rsa_key.private_numbers()  # type: ignore[union-attr]


def test_der_roundtrip_ec(ec_key: PrivateKey) -> None:
    _roundtrip(ec_key)
    loaded = private_from_der(private_to_der(ec_key))
    assert isinstance(loaded, ec.EllipticCurvePrivateKey)
    assert loaded.private_numbers() == ec_key.private_numbers()  # type: ignore[union-attr]


def test_der_roundtrip_ed25519() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    _roundtrip(key)
    assert isinstance(private_from_der(private_to_der(key)), ed25519.Ed25519PrivateKey)


def test_der_roundtrip_keeps_signing_ability(rsa_key: PrivateKey) -> None:
    loaded = private_from_der(private_to_der(rsa_key))
    assert isinstance(loaded, rsa.RSAPrivateKey) and isinstance(rsa_key, rsa.RSAPrivateKey)
    sig = loaded.sign(b"msg", padding.PKCS1v15(), hashes.SHA256())
    rsa_key.public_key().verify(sig, b"msg", padding.PKCS1v15(), hashes.SHA256())


def test_private_from_der_rejects_other_key_types() -> None:
    der = x25519.X25519PrivateKey.generate().private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ValueError, match="unsupported private key type"):
        private_from_der(der)


def test_private_from_der_rejects_garbage(ec_key: PrivateKey) -> None:
    with pytest.raises(ValueError):
        private_from_der(b"")
    with pytest.raises(ValueError):
        private_from_der(b"garbage")
    with pytest.raises(ValueError):
        private_from_der(private_to_der(ec_key)[:-5])


def test_public_of_matches_private(ec_key: PrivateKey) -> None:
    pub = public_of(ec_key)
    assert isinstance(pub, ec.EllipticCurvePublicKey)
    assert pub.public_numbers() == ec_key.public_key().public_numbers()  # type: ignore[union-attr]


def test_public_to_pem(rsa_key: PrivateKey, ec_key: PrivateKey) -> None:
    for key in (rsa_key, ec_key):
        pem = public_to_pem(public_of(key))
        assert pem.startswith(b"-----BEGIN PUBLIC KEY-----\n")
        assert b"PRIVATE" not in pem
        loaded = serialization.load_pem_public_key(pem)
        assert loaded.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ) == public_of(key).public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def test_sign_es256_is_the_jws_raw_form_for_every_r_and_s() -> None:
    """RFC 7518 §3.4: R and S each as exactly 32 big-endian bytes. An R or S with leading zero bytes
    (1 signature in 128 has one) must still be padded to 32, or verifiers split the 64 bytes wrongly."""
    key = generate("ES256")
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    short = 0
    for n in range(1500):
        data = b"header.payload-%d" % n
        raw = sign_es256(key, data)
        assert len(raw) == 64
        r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
        short += raw[0] == 0 or raw[32] == 0
        key.public_key().verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
    assert short > 0  # the padding case was exercised (expected ~12 of 1,500; none at all: 1 run in 100,000)


@pytest.mark.parametrize("alg", ["RS256", "P-384"])
def test_sign_es256_refuses_other_keys(alg: str) -> None:
    key = ec.generate_private_key(ec.SECP384R1()) if alg == "P-384" else generate(alg)
    with pytest.raises(ValueError, match="P-256"):
        sign_es256(key, b"data")


def test_verify_es256_agrees_with_pyjwt_on_good_forged_and_malformed_signatures() -> None:
    """The assertion fast path gives PyJWT's ES256 answer for a P-256 key: true for a good signature,
    false for another message, a flipped bit, another key's signature, a wrong length, R or S zero."""
    import jwt

    algorithm = jwt.algorithms.get_default_algorithms()["ES256"]
    key, other = generate("ES256"), generate("ES256")
    public = public_of(key)
    assert is_p256_public(public) and not is_p256_public(key) and not is_p256_public(public_of(generate("RS256")))
    assert not is_p256_public(ec.generate_private_key(ec.SECP384R1()).public_key())
    good = sign_es256(key, b"input")
    cases = [(b"input", good), (b"inpuT", good), (b"input", bytes([good[0] ^ 1]) + good[1:]),
             (b"input", sign_es256(other, b"input")), (b"input", good[:63]), (b"input", good + b"\0"),
             (b"input", bytes(32) + good[32:]), (b"input", good[:32] + bytes(32)), (b"input", b"")]
    for data, signature in cases:
        assert verify_es256(public, data, signature) is algorithm.verify(data, public, signature)
    assert verify_es256(public, b"input", good)
