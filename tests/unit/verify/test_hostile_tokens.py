"""`keyless.verify` on validly signed tokens with hostile numbers, claims of the wrong type and
re-encoded signatures (issue 11 items 1, 2 and 6): always `InvalidToken`, never an exception of
another kind, never a token that cannot expire, never "no roles" for a malformed `roles`."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import jwt
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyless.crypto.keys import generate, public_of
from keyless.jose.jwk import key_id, public_jwk
from keyless.verify import InvalidToken, TokenValidator
from tests.support.hostile import json_number_texts, numeric_date_value, with_claim

ISS = "https://127.0.0.1:8443/t/v2.0"
AUD = "api://orders"
NOW = 1_800_000_000.0
KEY = generate("ES256")
KID = key_id(public_of(KEY))
B64U = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def claims(**over: Any) -> dict[str, Any]:
    return {"iss": ISS, "aud": AUD, "exp": int(NOW) + 600, "iat": int(NOW), "nbf": int(NOW), "sub": "s",
            "client_id": "c", "jti": "j", "roles": ["Orders.Read"], "idtyp": "app", **over}


def sign_raw(payload: bytes) -> str:
    return jwt.PyJWS().encode(payload, KEY, algorithm="ES256", headers={"kid": KID, "typ": "at+jwt"})


@pytest.fixture(scope="module")
def validator() -> Iterator[TokenValidator]:
    v = TokenValidator.from_jwks({"keys": [public_jwk(public_of(KEY), "ES256")]}, issuer=ISS, audience=AUD,
                                 algorithms=["ES256"], clock=lambda: NOW, memo_size=0)
    yield v
    v.close()


def test_exp_of_nan_is_refused_not_a_token_that_never_expires(validator: TokenValidator) -> None:
    with pytest.raises(InvalidToken) as err:
        validator.validate(sign_raw(with_claim(claims(), "exp", "NaN")))
    assert err.value.reason == "JSON number is not finite"


def test_exp_with_400_digits_is_refused_not_an_overflow(validator: TokenValidator) -> None:
    with pytest.raises(InvalidToken) as err:
        validator.validate(sign_raw(with_claim(claims(), "exp", "1" + "0" * 400)))
    assert err.value.reason == "JSON number is out of range"


@settings(max_examples=300, deadline=None)
@given(text=json_number_texts, name=st.sampled_from(["exp", "nbf", "iat"]))
def test_validator_over_the_json_number_space_accepts_only_in_range_dates(
        validator: TokenValidator, text: str, name: str) -> None:
    expected = numeric_date_value(text)
    try:
        token = validator.validate(sign_raw(with_claim(claims(), name, text)))
    except InvalidToken:
        if expected is not None:  # a valid NumericDate, refused only for what it says
            assert (expected + 30 <= NOW) if name == "exp" else (expected > NOW + 30)
        return
    assert expected is not None, text
    assert token.claims[name] == expected
    assert NOW < token.expires_at + 30 < 2**53 + 30


@pytest.mark.parametrize(("over", "reason"), [
    ({"roles": "Orders.Read"}, "roles is not an array of strings"),
    ({"roles": ["Orders.Read", 7]}, "roles is not an array of strings"),
    ({"scp": ["Orders.Read"]}, "scp is not a string"),
    ({"aud": [AUD, 1]}, "aud is not an array of strings"),
    ({"iss": [ISS]}, "iss is not a string"),
    ({"sub": 5}, "sub is not a string"),
    ({"tid": {"id": "t"}}, "tid is not a string"),
    ({"client_id": None}, "client_id is not a string"),
])
def test_claims_of_the_wrong_type_make_the_token_invalid(validator: TokenValidator, over: dict[str, Any],
                                                         reason: str) -> None:
    with pytest.raises(InvalidToken) as err:
        validator.validate(sign_raw(json.dumps(claims(**over)).encode()))
    assert err.value.reason == reason


def test_signature_with_spare_bits_set_is_refused(validator: TokenValidator) -> None:
    token = sign_raw(json.dumps(claims()).encode())
    assert validator.validate(token).subject == "s"
    head, payload, sig = token.rsplit(".")
    assert len(sig) % 4 == 2  # 64 bytes: 4 spare bits in the last character
    base = B64U.index(sig[-1]) & ~0x0F
    for bits in range(1, 16):
        with pytest.raises(InvalidToken) as err:
            validator.validate(f"{head}.{payload}.{sig[:-1]}{B64U[base | bits]}")
        assert err.value.reason == "invalid base64url"


# -- strict JSON on the fast path (issue 18 item 4): orjson's answer is kept only when it re-serialises
# to the very bytes signed, so these are written exactly as orjson writes JSON, apart from the attack.

def sign_segments(header: bytes, payload: bytes) -> str:
    """A validly signed token over any header and payload bytes (PyJWS would write its own header)."""
    signing_input = f"{b64u(header)}.{b64u(payload)}"
    ec = jwt.algorithms.ECAlgorithm(jwt.algorithms.ECAlgorithm.SHA256)
    return f"{signing_input}.{b64u(ec.sign(signing_input.encode(), KEY))}"


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def header_bytes(**extra: str) -> bytes:
    return orjson.dumps({"alg": "ES256", "kid": KID, "typ": "at+jwt", **extra})


def test_a_token_signed_over_orjsons_own_bytes_is_valid(validator: TokenValidator) -> None:
    token = validator.validate(sign_segments(header_bytes(), orjson.dumps(claims(n=2**64 - 1))))
    assert token.claims["n"] == 2**64 - 1


@pytest.mark.parametrize("payload", [
    orjson.dumps(claims())[:-1] + b',"roles":["Orders.Admin"]}',  # depth 1: a second roles
    orjson.dumps(claims())[:-1] + b',"\\u0072oles":["Orders.Admin"]}',  # depth 1, the name escaped
    orjson.dumps(claims(x={"y": {"a": 1}}))[:-1].replace(b'{"a":1}', b'{"a":1,"a":2}') + b"}",  # depth 3
])
def test_a_duplicate_member_in_a_validly_signed_payload_is_refused(validator: TokenValidator, payload: bytes) -> None:
    with pytest.raises(InvalidToken) as err:
        validator.validate(sign_segments(header_bytes(), payload))
    assert err.value.reason == "duplicate member in JOSE JSON"


def test_a_duplicate_member_in_a_validly_signed_header_is_refused(validator: TokenValidator) -> None:
    header = header_bytes()[:-1] + b',"alg":"ES256"}'
    for _ in range(2):  # refused again: a refused header is never cached
        with pytest.raises(InvalidToken) as err:
            validator.validate(sign_segments(header, orjson.dumps(claims())))
        assert err.value.reason == "duplicate member in JOSE JSON"


@pytest.mark.parametrize("number", [2**64, -(2**63) - 1, 10**30])
def test_an_integer_beyond_64_bits_stays_an_exact_integer(validator: TokenValidator, number: int) -> None:
    payload = orjson.dumps(claims())[:-1] + b',"n":%d,"m":{"k":[%d]}}' % (number, number)
    token = validator.validate(sign_segments(header_bytes(), payload))
    assert type(token.claims["n"]) is int and token.claims["n"] == number == token.claims["m"]["k"][0]
    with pytest.raises(InvalidToken) as err:  # and as a date it is out of range, never a rounded float
        validator.validate(sign_segments(header_bytes(), with_claim(claims(), "exp", str(number))))
    assert err.value.reason == "exp is out of range"


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_anywhere_in_a_validly_signed_payload_are_refused(validator: TokenValidator,
                                                                          text: str) -> None:
    payload = orjson.dumps(claims())[:-1] + b',"x":{"y":[%s]}}' % text.encode()
    with pytest.raises(InvalidToken) as err:
        validator.validate(sign_segments(header_bytes(), payload))
    assert err.value.reason == "JSON number is not finite"
