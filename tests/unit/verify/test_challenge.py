"""RFC 6750 §3 challenges (catalog J20) and the authorization helper (J16)."""

from __future__ import annotations

import json

import pytest

from keyless.verify import AccessToken, InsufficientScope, InvalidToken, TokenTooLarge, authorize, challenge
from keyless.verify.adapters import bearer_token
from keyless.verify.errors import MalformedAuthorization


def test_no_credentials_bare_challenge() -> None:
    status, headers, body = challenge(None, realm="api://orders")
    assert status == 401
    assert dict(headers)["www-authenticate"] == 'Bearer realm="api://orders"'
    assert json.loads(body) == {"error": "unauthorized"}
    assert dict(challenge(None)[1])["www-authenticate"] == "Bearer"


def test_invalid_token_without_internal_detail() -> None:
    status, headers, body = challenge(InvalidToken("bad signature for kid abc"), realm="r")
    assert status == 401
    assert dict(headers)["www-authenticate"] == 'Bearer realm="r", error="invalid_token"'
    assert b"signature" not in body and b"kid" not in body
    assert dict(headers)["cache-control"] == "no-store"


def test_too_large_is_invalid_request() -> None:
    status, headers, _ = challenge(TokenTooLarge("token too large"), realm="r")
    assert (status, dict(headers)["www-authenticate"]) == (400, 'Bearer realm="r", error="invalid_request"')


def test_insufficient_scope_names_the_scope() -> None:
    status, headers, body = challenge(InsufficientScope(("Orders.Read", "Orders.Admin")), realm="r")
    assert status == 403
    assert dict(headers)["www-authenticate"] == (
        'Bearer realm="r", error="insufficient_scope", scope="Orders.Read Orders.Admin"')
    assert json.loads(body) == {"error": "insufficient_scope"}


def test_attribute_values_cannot_break_the_header() -> None:
    _, headers, _ = challenge(InsufficientScope(('a"b\\c\r\nSet-Cookie: x',)), realm='r"\n')
    assert dict(headers)["www-authenticate"] == 'Bearer realm="r", error="insufficient_scope", scope="abcSet-Cookie: x"'


@pytest.mark.parametrize(
    ("values", "expected"),
    [([], None), (["Basic abc"], None), (["Bearer abc"], "abc"), (["bearer  abc "], "abc"), (["BEARER abc"], "abc")],
)
def test_bearer_token_parsing(values: list[str], expected: str | None) -> None:
    assert bearer_token(values) == expected


@pytest.mark.parametrize("values", [["Bearer a", "Bearer b"], ["Bearer"], ["Bearer   "], ["Bearer " + "a" * 9000]])
def test_bearer_token_refusals(values: list[str]) -> None:
    with pytest.raises((MalformedAuthorization, TokenTooLarge)):
        bearer_token(values)


def token(**claims: object) -> AccessToken:
    return AccessToken(claims={"sub": "s", "client_id": "c", "exp": 1, **claims})


def test_authorize_roles_scopes_and_kind() -> None:
    app = token(roles=["Orders.Read"], idtyp="app")
    assert authorize(app, roles=["Orders.Read", "Orders.Write"]) is app
    with pytest.raises(InsufficientScope) as err:
        authorize(app, roles=["Orders.Write"])
    assert err.value.required == ("Orders.Write",)
    delegated = token(scp="orders.read profile")
    authorize(delegated, scopes=["orders.read"], kind="delegated")
    with pytest.raises(InsufficientScope):
        authorize(delegated, scopes=["orders.write"])
    with pytest.raises(InsufficientScope):  # J16: an app-only token where a delegated one is required
        authorize(app, kind="delegated")
    with pytest.raises(InsufficientScope):
        authorize(delegated, kind="app")
    assert token(scp=["not", "a", "string"]).scopes == frozenset()
    assert token(roles="Orders.Read").roles == frozenset()
