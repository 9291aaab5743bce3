"""`parse_jwk_set`: a third party's JWKS, bound key by key to the algorithms it may verify."""

from __future__ import annotations

from typing import Any

import pytest

from keyless.crypto.keys import generate
from keyless.jose.jwk import JwkSetRejected, parse_jwk_set, public_jwk


def jwk(kind: str = "RS256", **changes: Any) -> dict[str, Any]:
    out = public_jwk(generate(kind).public_key(), kind)  # type: ignore[arg-type]
    for name, value in changes.items():
        if value is None:
            out.pop(name, None)
        else:
            out[name] = value
    return out


def test_algorithms_follow_the_declared_alg_or_the_key_type() -> None:
    rsa, ec, bare_rsa, bare_ec = jwk(), jwk("ES256"), jwk(alg=None), jwk("ES256", alg=None)
    keys = parse_jwk_set({"keys": [rsa, ec, bare_rsa, bare_ec]}, max_keys=50)
    assert keys[rsa["kid"]].algorithms == {"RS256"}
    assert keys[ec["kid"]].algorithms == {"ES256"}
    assert keys[bare_rsa["kid"]].algorithms == {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
    assert keys[bare_ec["kid"]].algorithms == {"ES256"}


def test_entries_that_cannot_verify_are_skipped() -> None:
    good = jwk()
    keys = parse_jwk_set({"keys": [
        good, jwk(kid=None), jwk(use="enc"), jwk(alg="ES256"), jwk(alg="HS256"), "junk", {"kty": "RSA", "kid": "x"},
    ]}, max_keys=50)
    assert list(keys) == [good["kid"]]


def test_a_kid_listed_twice_verifies_nothing() -> None:
    good, a = jwk(), jwk()
    keys = parse_jwk_set({"keys": [good, a, jwk(kid=a["kid"])]}, max_keys=50)
    assert list(keys) == [good["kid"]]


def test_too_many_keys() -> None:
    key = jwk()
    with pytest.raises(JwkSetRejected) as info:
        parse_jwk_set({"keys": [dict(key, kid=str(i)) for i in range(51)]}, max_keys=50)
    assert info.value.reason == "jwks_too_many_keys"


def test_rsa_keys_under_2048_bits_are_skipped() -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    weak_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the point of the test
    weak = public_jwk(weak_key.public_key(), "RS256")
    good = jwk()
    assert list(parse_jwk_set({"keys": [weak, good]}, max_keys=50)) == [good["kid"]]
