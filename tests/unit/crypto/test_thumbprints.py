"""RFC 7638 JWK thumbprints (catalog I07)."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given
from hypothesis import strategies as st

from keyless.crypto.thumbprints import b64u, jwk_thumbprint, jwk_thumbprint_of_members, required_members

# RFC 7638 §3.1 example RSA key and its thumbprint.
RFC7638_N = (
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRX"
    "jBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSq"
    "zs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ"
    "-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
)
RFC7638_E = "AQAB"
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"

# RFC 8037 Appendix A.3: thumbprint of the example Ed25519 public key.
RFC8037_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC8037_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def _b64u_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _int(value: str) -> int:
    return int.from_bytes(_b64u_decode(value), "big")


def _rfc7638_key() -> rsa.RSAPublicKey:
    return rsa.RSAPublicNumbers(_int(RFC7638_E), _int(RFC7638_N)).public_key()


def test_i07_rfc7638_vector() -> None:
    key = _rfc7638_key()
    assert required_members(key) == {"e": RFC7638_E, "kty": "RSA", "n": RFC7638_N}
    assert jwk_thumbprint(key) == RFC7638_THUMBPRINT


def test_i07_rfc7638_vector_from_members() -> None:
    members = {"kty": "RSA", "n": RFC7638_N, "e": RFC7638_E}
    assert jwk_thumbprint_of_members(members) == RFC7638_THUMBPRINT


def test_i07_optional_members_change_the_thumbprint() -> None:
    """Hashing a full JWK (with alg/use/kid) is the classic mistake: it must give another value."""
    full = {"kty": "RSA", "n": RFC7638_N, "e": RFC7638_E, "alg": "RS256", "use": "sig", "kid": "x"}
    assert jwk_thumbprint_of_members(full) != RFC7638_THUMBPRINT
    assert jwk_thumbprint(_rfc7638_key()) == RFC7638_THUMBPRINT


def test_i07_rfc8037_ed25519_vector() -> None:
    key = ed25519.Ed25519PublicKey.from_public_bytes(_b64u_decode(RFC8037_X))
    assert required_members(key) == {"crv": "Ed25519", "kty": "OKP", "x": RFC8037_X}
    assert jwk_thumbprint(key) == RFC8037_THUMBPRINT


def test_thumbprint_is_sha256_of_canonical_json() -> None:
    members = {"b": "2", "a": "1", "kty": "X"}
    expected = b64u(hashlib.sha256(b'{"a":"1","b":"2","kty":"X"}').digest())
    assert jwk_thumbprint_of_members(members) == expected


def test_thumbprint_shape() -> None:
    tp = jwk_thumbprint(_rfc7638_key())
    assert len(tp) == 43  # 32 bytes, unpadded base64url
    assert "=" not in tp and "+" not in tp and "/" not in tp
    assert len(_b64u_decode(tp)) == 32


def test_b64u_is_unpadded_urlsafe() -> None:
    assert b64u(b"") == ""
    assert b64u(b"\xfb\xff") == "-_8"
    assert b64u(b"a") == "YQ"
    assert b64u(b"ab") == "YWI"
    assert b64u(b"abc") == "YWJj"


_member_dicts = st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=24), min_size=1, max_size=8)


@given(data=st.data(), members=_member_dicts)
def test_i07_member_order_does_not_matter(data: st.DataObject, members: dict[str, str]) -> None:
    order = data.draw(st.permutations(list(members)))
    reordered = {name: members[name] for name in order}
    assert list(reordered) == order
    assert jwk_thumbprint_of_members(reordered) == jwk_thumbprint_of_members(members)
    canonical = json.dumps(dict(sorted(members.items())), separators=(",", ":"), ensure_ascii=False)
    assert jwk_thumbprint_of_members(reordered) == b64u(hashlib.sha256(canonical.encode()).digest())


@given(members=_member_dicts, extra=st.text(min_size=1, max_size=8))
def test_thumbprint_changes_with_members(members: dict[str, str], extra: str) -> None:
    changed = dict(members)
    name = next(iter(members))
    changed[name] = members[name] + extra
    assert jwk_thumbprint_of_members(changed) != jwk_thumbprint_of_members(members)


def test_rsa_members_have_no_leading_zero_bytes() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    members = required_members(key)
    assert set(members) == {"e", "kty", "n"}
    assert members["e"] == "AQAB"
    n_bytes = _b64u_decode(members["n"])
    assert len(n_bytes) == 256 and n_bytes[0] != 0
    assert int.from_bytes(n_bytes, "big") == key.public_numbers().n


@pytest.mark.parametrize(
    ("curve", "name", "size"),
    [(ec.SECP256R1(), "P-256", 32), (ec.SECP384R1(), "P-384", 48), (ec.SECP521R1(), "P-521", 66)],
)
def test_ec_members(curve: ec.EllipticCurve, name: str, size: int) -> None:
    key = ec.generate_private_key(curve).public_key()
    members = required_members(key)
    assert list(members) == ["crv", "kty", "x", "y"]  # lexicographic, as RFC 7638 requires
    assert members["crv"] == name
    assert members["kty"] == "EC"
    nums = key.public_numbers()
    x, y = _b64u_decode(members["x"]), _b64u_decode(members["y"])
    assert len(x) == size and len(y) == size
    assert int.from_bytes(x, "big") == nums.x and int.from_bytes(y, "big") == nums.y


def test_ec_coordinates_are_left_padded_to_curve_size() -> None:
    """RFC 7518 §6.2.1.2: x and y are full-length octet strings even when the value is small."""
    d = 1
    while True:
        key = ec.derive_private_key(d, ec.SECP256R1()).public_key()
        if key.public_numbers().x.bit_length() <= 248:
            break
        d += 1
    x = _b64u_decode(required_members(key)["x"])
    assert len(x) == 32 and x[0] == 0


def test_ec_thumbprint_is_stable() -> None:
    private = ec.derive_private_key(12345, ec.SECP256R1())
    key = private.public_key()
    same = ec.derive_private_key(12345, ec.SECP256R1()).public_key()
    other = ec.derive_private_key(12346, ec.SECP256R1()).public_key()
    assert jwk_thumbprint(key) == jwk_thumbprint(key) == jwk_thumbprint(same)
    assert jwk_thumbprint(key) != jwk_thumbprint(other)
    assert jwk_thumbprint(key) == jwk_thumbprint_of_members(required_members(key))


def test_ed25519_members_and_stable_thumbprint() -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    key = private.public_key()
    members = required_members(key)
    assert list(members) == ["crv", "kty", "x"]
    assert members["crv"] == "Ed25519" and members["kty"] == "OKP"
    assert _b64u_decode(members["x"]) == key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    reloaded = ed25519.Ed25519PublicKey.from_public_bytes(_b64u_decode(members["x"]))
    assert jwk_thumbprint(reloaded) == jwk_thumbprint(key)
    assert jwk_thumbprint(ed25519.Ed25519PrivateKey.generate().public_key()) != jwk_thumbprint(key)


def test_rsa_thumbprint_is_stable_and_key_specific() -> None:
    key = _rfc7638_key()
    rebuilt = rsa.RSAPublicNumbers(65537, key.public_numbers().n).public_key()
    assert jwk_thumbprint(rebuilt) == jwk_thumbprint(key)
    other = rsa.RSAPublicNumbers(3, key.public_numbers().n).public_key()
    assert jwk_thumbprint(other) != jwk_thumbprint(key)


def test_unsupported_key_type_raises_type_error() -> None:
    with pytest.raises(TypeError):
        required_members(x25519.X25519PrivateKey.generate().public_key())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        jwk_thumbprint("not a key")  # type: ignore[arg-type]


def test_unsupported_ec_curve_raises() -> None:
    # No JWK `crv` name is registered here for secp256k1; it must not produce a thumbprint.
    key = ec.generate_private_key(ec.SECP256K1()).public_key()
    with pytest.raises((KeyError, TypeError, ValueError)):
        required_members(key)
