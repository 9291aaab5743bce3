"""Claim checks of the minimal validator (catalog J03, J12, J13)."""

from __future__ import annotations

from typing import Any

import pytest

from keyless.verify import InvalidToken, TokenValidator, check_access_token

ISS = "https://127.0.0.1:8443/t/v2.0"
NOW = 1_800_000_000


def claims(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"iss": ISS, "aud": "api://orders", "exp": NOW + 600, "iat": NOW, "nbf": NOW,
                            "sub": "s", "client_id": "c", "jti": "j", "roles": ["Orders.Read"]}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def test_valid_token() -> None:
    token = check_access_token(claims(), issuer=ISS, audience="api://orders", now=NOW)
    assert token.roles == frozenset({"Orders.Read"})
    assert (token.subject, token.client_id) == ("s", "c")


@pytest.mark.parametrize(
    ("over", "reason"),
    [
        ({"iss": ISS + "/"}, "wrong issuer"),
        ({"aud": "api://orders-admin"}, "wrong audience"),  # J13: no substring or prefix match
        ({"aud": "api://order"}, "wrong audience"),
        ({"aud": ["api://other"]}, "wrong audience"),
        ({"aud": {"api://orders": 1}}, "aud is not an array of strings"),
        ({"exp": NOW - 31}, "expired"),  # J12: past the 30 s leeway
        ({"exp": str(NOW + 600)}, "exp is not a NumericDate"),
        ({"exp": True}, "exp is not a NumericDate"),
        ({"nbf": NOW + 31}, "nbf in the future"),
        ({"iat": NOW + 31}, "iat in the future"),
        ({"exp": None}, "missing claim exp"),
        ({"aud": None}, "missing claim aud"),
        ({"jti": None}, "missing claim jti"),
    ],
)
def test_j12_j13_refusals(over: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidToken) as err:
        check_access_token(claims(**over), issuer=ISS, audience="api://orders", now=NOW)
    assert err.value.reason == reason


def test_j13_audience_array_element_accepted() -> None:
    check_access_token(claims(aud=["api://x", "api://orders"]), issuer=ISS, audience="api://orders", now=NOW)


def test_leeway_is_bounded() -> None:
    with pytest.raises(ValueError, match="leeway"):
        check_access_token(claims(), issuer=ISS, audience="api://orders", now=NOW, leeway=3600)
    check_access_token(claims(exp=NOW - 50), issuer=ISS, audience="api://orders", now=NOW, leeway=60)


def test_j03_validator_requires_algorithms_and_refuses_symmetric_or_none() -> None:
    with pytest.raises(TypeError):
        TokenValidator(issuer=ISS, audience="api://orders")  # type: ignore[call-arg]
    for algs in ([], ["HS256"], ["none"], ["RS256", "HS256"]):
        with pytest.raises(ValueError, match="algorithms"):
            TokenValidator(issuer=ISS, audience="api://orders", algorithms=algs)


def test_n05_validator_refuses_http_issuer() -> None:
    with pytest.raises(ValueError, match="https"):
        TokenValidator(issuer="http://127.0.0.1/t/v2.0", audience="api://orders", algorithms=["RS256"])
