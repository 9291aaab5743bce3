"""Hostile numbers, wrong claim types and non-canonical base64url at the JOSE layer every parser uses
(issue 11 items 1, 2 and 6; docs/security.md, "Hostile numbers and encodings")."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyless.jose.claims import (
    check_access_token_types,
    check_registered,
    numeric_date,
    string_claim,
    string_list_claim,
)
from keyless.jose.hygiene import (
    InvalidClaim,
    MalformedJose,
    UnacceptableNumber,
    b64u_decode,
    canonical_digest,
    is_canonical_b64u,
    loads_strict,
    split_compact,
)
from tests.support.hostile import json_number_texts, numeric_date_value, with_claim

B64U = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
HEADER = {"alg": "ES256", "kid": "k"}


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def compact(payload: bytes, sig: str = "c2ln") -> str:
    return f"{b64u(json.dumps(HEADER).encode())}.{b64u(payload)}.{sig}"


@settings(max_examples=500, deadline=None)
@given(text=json_number_texts, name=st.sampled_from(["exp", "nbf", "iat"]))
def test_numeric_dates_over_the_whole_json_number_space_are_in_range_or_refused(text: str, name: str) -> None:
    token = compact(with_claim({"sub": "s"}, name, text))
    expected = numeric_date_value(text)
    try:
        _, claims = split_compact(token, max_length=100_000)
    except MalformedJose as exc:
        assert expected is None, (text, exc)
        assert isinstance(exc, UnacceptableNumber | InvalidClaim)
        return
    assert expected is not None, text
    assert numeric_date(claims, name) == expected


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1" + "0" * 400, "9" * 5000])
def test_non_finite_and_overflowing_numbers_are_refused_anywhere_in_jose_json(text: str) -> None:
    for data in (f'{{"exp":{text}}}', f'{{"x":[{text}]}}', f'{{"a":{{"b":{text}}}}}'):
        with pytest.raises(UnacceptableNumber):
            loads_strict(data.encode())


def test_numbers_a_double_holds_are_kept_exactly() -> None:
    assert loads_strict(b'{"a":1800000000,"b":1.5,"c":-0,"d":1e308,"e":9007199254740993}') == {
        "a": 1800000000, "b": 1.5, "c": 0, "d": 1e308, "e": 9007199254740993}


@pytest.mark.parametrize(("value", "problem"), [
    (True, "is not a NumericDate"), ("1800000000", "is not a NumericDate"), (None, "is not a NumericDate"),
    ([1], "is not a NumericDate"), (float("nan"), "is not a NumericDate"), (float("inf"), "is not a NumericDate"),
    (-1, "is out of range"), (2**53, "is out of range"), (10**400, "is out of range"), (1e300, "is out of range"),
])
def test_numeric_date_refuses_every_other_type_and_range(value: Any, problem: str) -> None:
    with pytest.raises(InvalidClaim) as err:
        numeric_date({"exp": value}, "exp")
    assert (err.value.claim, err.value.problem) == ("exp", problem)
    assert str(err.value) == f"exp {problem}"  # the claim's name, never its value


def test_numeric_date_absent_is_none_and_bounds_are_exact() -> None:
    assert numeric_date({}, "exp") is None
    assert numeric_date({"exp": 0}, "exp") == 0.0
    assert numeric_date({"exp": 2**53 - 1}, "exp") == float(2**53 - 1)
    assert numeric_date({"exp": 1.5}, "exp") == 1.5  # azure-identity's async client sends floats


@pytest.mark.parametrize("claims", [
    {"iss": 7}, {"sub": ["s"]}, {"jti": 12}, {"aud": 3}, {"aud": ["a", 3]}, {"aud": {"a": 1}}, {"iss": None},
])
def test_registered_claims_of_the_wrong_type_are_refused(claims: dict[str, Any]) -> None:
    with pytest.raises(InvalidClaim):
        check_registered(claims)
    with pytest.raises(InvalidClaim):
        split_compact(compact(json.dumps(claims).encode()), max_length=100_000)


@pytest.mark.parametrize("claims", [
    {"scp": ["a"]}, {"scp": 1}, {"roles": "Data.Read"}, {"roles": ["a", 1]}, {"roles": {"a": 1}}, {"tid": 5},
    {"client_id": ["c"]}, {"idtyp": True},
])
def test_access_token_claims_of_the_wrong_type_are_refused_never_read_as_absent(claims: dict[str, Any]) -> None:
    with pytest.raises(InvalidClaim):
        check_access_token_types(claims)


def test_well_typed_claims_pass() -> None:
    check_access_token_types({"iss": "i", "sub": "s", "aud": ["a", "b"], "exp": 1, "nbf": 0, "iat": 0.5, "jti": "j",
                              "tid": "t", "client_id": "c", "idtyp": "app", "scp": "a b", "roles": [], "x": [1]})


def _one_by_one(claims: dict[str, Any]) -> None:
    """The rules of check_access_token_types written out one claim at a time, in their order."""
    for name in ("exp", "nbf", "iat"):
        numeric_date(claims, name)
    for name in ("iss", "sub", "jti"):
        string_claim(claims, name)
    if not isinstance(claims.get("aud"), str):
        string_list_claim(claims, "aud")
    for name in ("tid", "client_id", "idtyp", "scp"):
        string_claim(claims, name)
    string_list_claim(claims, "roles")


_claim_values = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**60), 2**60), st.floats(), st.text(max_size=3),
    st.lists(st.one_of(st.text(max_size=2), st.integers()), max_size=2), st.dictionaries(st.text(max_size=2),
                                                                                       st.integers(), max_size=1))


@settings(max_examples=1000)
@given(claims=st.dictionaries(st.sampled_from(["exp", "nbf", "iat", "iss", "sub", "jti", "aud", "tid", "client_id",
                                               "idtyp", "scp", "roles", "x"]), _claim_values))
def test_the_inline_claim_checks_refuse_exactly_what_the_one_by_one_rules_refuse(claims: dict[str, Any]) -> None:
    """check_registered accepts an in-range int date and a string inline (issue 18 item 4): same
    verdict, same claim and problem named first, as each rule applied in turn."""
    def verdict(check: Any) -> tuple[str, str] | None:
        try:
            check(claims)
        except InvalidClaim as exc:
            return exc.claim, exc.problem
        return None

    assert verdict(check_access_token_types) == verdict(_one_by_one)


# -- canonical base64url ----------------------------------------------------------------------------


def _variants(segment: str) -> list[str]:
    spare = {2: 0x0F, 3: 0x03}.get(len(segment) % 4, 0)
    base = B64U.index(segment[-1]) & ~spare
    return [segment[:-1] + B64U[base | bits] for bits in range(1, spare + 1)]


@settings(max_examples=300)
@given(data=st.binary(min_size=1, max_size=80))
def test_every_re_encoding_with_spare_bits_set_is_refused(data: bytes) -> None:
    segment = b64u(data)
    assert is_canonical_b64u(segment)
    assert b64u_decode(segment) == data
    for variant in _variants(segment):
        assert base64.urlsafe_b64decode(variant + "=" * (-len(variant) % 4)) == data  # what a lax decoder sees
        assert not is_canonical_b64u(variant)
        with pytest.raises(MalformedJose, match="non-canonical base64url"):
            b64u_decode(variant)


def test_split_compact_refuses_a_signature_with_spare_bits_set() -> None:
    sig = b64u(bytes(range(64)))  # 86 characters: the last one carries 4 spare bits
    assert split_compact(compact(b'{"sub":"s"}', sig), max_length=100_000)
    for variant in _variants(sig):
        with pytest.raises(MalformedJose, match="non-canonical base64url"):
            split_compact(compact(b'{"sub":"s"}', variant), max_length=100_000)


def test_canonical_digest_is_the_same_for_every_encoding_of_one_token() -> None:
    token = compact(b'{"sub":"s","jti":"1"}', b64u(bytes(64)))
    head, payload, _ = token.split(".")
    padded = f"{head}{'=' * (-len(head) % 4)}.{payload}{'=' * (-len(payload) % 4)}.{b64u(bytes([1]) * 64)}"
    assert canonical_digest(padded) == canonical_digest(token)
    assert canonical_digest(compact(b'{"sub":"s","jti":"2"}')) != canonical_digest(token)
