"""Which resource a client_credentials request names (RFC 6749 §3.3, RFC 8707; catalog A15, A16)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyless.oauth.errors import InvalidScope, InvalidTarget, OAuthErrorResponse
from keyless.oauth.scope import RequestedResource, requested_resource


def check(exc: pytest.ExceptionInfo[OAuthErrorResponse], error: str, detail: str, description: str) -> None:
    err = exc.value
    assert (err.status, err.error, err.detail) == (400, error, detail)
    assert err.body() == {"error": error, "error_description": description}


@pytest.mark.parametrize(
    ("scope", "resource"),
    [
        ("api://orders/.default", "api://orders"),
        ("https://orders.example.com/.default", "https://orders.example.com"),
        ("https://orders.example.com/v1/.default", "https://orders.example.com/v1"),
        ("11111111-2222-3333-4444-555555555555/.default", "11111111-2222-3333-4444-555555555555"),
        ("api://orders/.default api://orders/.default", "api://orders"),
        ("urn:keyless:management/.default", "urn:keyless:management"),
    ],
)
def test_default_scope_names_its_resource(scope: str, resource: str) -> None:
    assert requested_resource(scope, None) == RequestedResource(resource, via_resource_param=False)


def test_resource_parameter_alone() -> None:
    assert requested_resource(None, "api://orders") == RequestedResource("api://orders", via_resource_param=True)


def test_resource_and_matching_scope() -> None:
    got = requested_resource("api://orders/.default", "api://orders")
    assert got == RequestedResource("api://orders", via_resource_param=True)


def test_missing_scope_and_resource() -> None:
    with pytest.raises(InvalidScope) as exc:
        requested_resource(None, None)
    check(exc, "invalid_scope", "scope_missing", "scope is required: use {resource}/.default")


@pytest.mark.parametrize(
    "scope",
    ["api://orders/read", "api://orders", "/.default", ".default", "api://orders/.default/x",
     "api://orders/.DEFAULT", "openid", "api://orders/.default offline_access"],
)
def test_scope_must_be_resource_default(scope: str) -> None:
    with pytest.raises(InvalidScope) as exc:
        requested_resource(scope, None)
    check(exc, "invalid_scope", "scope_not_default",
          "client_credentials requires a scope of the form {resource}/.default")


def test_scopes_for_two_resources() -> None:
    with pytest.raises(InvalidScope) as exc:
        requested_resource("api://a/.default api://b/.default", None)
    check(exc, "invalid_scope", "scope_multiple_resources", "all scopes must name the same resource")


@pytest.mark.parametrize(
    "scope",
    ["", " api://a/.default", "api://a/.default ", "api://a/.default  api://a/.default", "api://a\t/.default",
     'api://"a"/.default', "api://a\\b/.default", "api://\u00e9/.default", "api://a\n/.default",
     "api://a\x7f/.default", "api://a\x00/.default"],
)
def test_scope_charset_and_separators(scope: str) -> None:
    """RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), separated by single spaces."""
    with pytest.raises(InvalidScope) as exc:
        requested_resource(scope, None)
    check(exc, "invalid_scope", "scope_syntax", "malformed scope")


@given(st.text(alphabet=st.characters(codec="ascii"), min_size=1, max_size=30))
def test_scope_tokens_outside_charset_never_name_a_resource(token: str) -> None:
    bad = any(ch in token for ch in '"\\') or any(ord(ch) < 0x21 or ord(ch) > 0x7E for ch in token if ch != " ")
    try:
        got = requested_resource(token + "/.default", None)
    except InvalidScope:
        return
    assert not bad
    assert all(0x21 <= ord(ch) <= 0x7E and ch not in '"\\' for ch in got.identifier)


@pytest.mark.parametrize(
    ("resource", "detail", "description"),
    [
        ("orders", "resource_syntax", "resource must be an absolute URI without a fragment"),
        ("/orders", "resource_syntax", "resource must be an absolute URI without a fragment"),
        ("//orders.example.com", "resource_syntax", "resource must be an absolute URI without a fragment"),
        ("api://orders#frag", "resource_syntax", "resource must be an absolute URI without a fragment"),
        ("https://orders.example.com/#", "resource_syntax", "resource must be an absolute URI without a fragment"),
        ("https://orders example.com", "resource_syntax", "resource must be an absolute URI without a fragment"),
        ("https://\u00e9.example", "resource_syntax", "resource must be an absolute URI without a fragment"),
    ],
)
def test_resource_must_be_absolute_without_fragment(resource: str, detail: str, description: str) -> None:
    with pytest.raises(InvalidTarget) as exc:
        requested_resource(None, resource)
    check(exc, "invalid_target", detail, description)


def test_resource_and_scope_disagree() -> None:
    with pytest.raises(InvalidTarget) as exc:
        requested_resource("api://other/.default", "api://orders")
    check(exc, "invalid_target", "scope_resource_mismatch", "scope and resource name different resources")


def test_resource_with_malformed_scope_reports_the_scope() -> None:
    with pytest.raises(InvalidScope) as exc:
        requested_resource("api://orders/read", "api://orders")
    assert exc.value.detail == "scope_not_default"


def test_remembered_answers_are_the_same_and_refusals_are_never_remembered() -> None:
    """Accepted (scope, resource) answers are kept (issue 18); a refused pair raises every time, also
    after the accepted form of the same resource was seen."""
    first = requested_resource("api://memo/.default", None)
    assert requested_resource("api://memo/.default", None) == first == RequestedResource("api://memo", False)
    for _ in range(2):
        with pytest.raises(InvalidScope):
            requested_resource("api://memo", None)
        with pytest.raises(InvalidTarget):
            requested_resource("api://memo/.default", "api://other")
    assert requested_resource("api://memo/.default", "api://memo") == RequestedResource("api://memo", True)
