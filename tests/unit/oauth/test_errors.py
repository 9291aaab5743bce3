"""OAuth error objects: wire codes, statuses, and the RFC 6749 §5.2 charset of error_description."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyless.oauth.errors import (
    InvalidClient,
    InvalidRequest,
    InvalidScope,
    InvalidTarget,
    MethodNotAllowed,
    OAuthErrorResponse,
    RateLimited,
    ServerError,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from keyless.oauth.service import error_result

ALLOWED = {chr(c) for c in [0x20, 0x21, *range(0x23, 0x5C), *range(0x5D, 0x7F)]}


@pytest.mark.parametrize(
    ("cls", "error", "status"),
    [
        (InvalidRequest, "invalid_request", 400),
        (UnauthorizedClient, "unauthorized_client", 400),
        (UnsupportedGrantType, "unsupported_grant_type", 400),
        (InvalidScope, "invalid_scope", 400),
        (InvalidTarget, "invalid_target", 400),
        (MethodNotAllowed, "invalid_request", 405),
        (ServerError, "server_error", 500),
    ],
)
def test_codes_and_statuses(cls: type[OAuthErrorResponse], error: str, status: int) -> None:
    err = cls()
    assert (err.error, err.status, err.detail) == (error, status, error)
    assert err.body()["error"] == error


def test_invalid_client_is_always_the_same_body() -> None:
    a = InvalidClient(detail="unknown_client")
    b = InvalidClient(detail="wrong_secret", basic=True)
    expected = {"error": "invalid_client", "error_description": "client authentication failed (invalid_client)"}
    assert a.body() == b.body() == expected
    assert (a.status, b.status) == (401, 401)
    assert (a.basic, b.basic) == (False, True)
    assert (a.detail, b.detail) == ("unknown_client", "wrong_secret")


def test_empty_description_is_left_out() -> None:
    assert InvalidRequest().body() == {"error": "invalid_request"}
    assert InvalidRequest("").body() == {"error": "invalid_request"}


def test_detail_defaults_to_the_code() -> None:
    assert InvalidScope("x").detail == "invalid_scope"
    assert InvalidScope("x", detail="why").detail == "why"


@pytest.mark.parametrize(("description", "on_the_wire"), [
    ("a\"quote", "a'quote"), ("back\\slash", "back/slash"), ("new\nline", "new?line"), ("tab\t", "tab?"),
    ("caf\u00e9", "caf?"), ("\x7f", "?"), ("\x00", "?"), ("\u2028", "?"), ("\x1b[31mred", "?[31mred"),
])
def test_description_outside_charset_is_replaced_not_sent_raw(description: str, on_the_wire: str) -> None:
    """A description built from anything (even reflected input) goes out within RFC 6749 §5.2's set:
    the error class enforces it, so no surface can forget and no bad character turns into a 500."""
    assert InvalidRequest(description).body() == {"error": "invalid_request", "error_description": on_the_wire}


def test_description_edge_characters_allowed() -> None:
    text = "".join(sorted(ALLOWED))
    assert InvalidRequest(text).description == text


@given(st.text(max_size=600))
def test_description_charset_property(text: str) -> None:
    description = InvalidRequest(text).description
    assert set(description) <= ALLOWED
    assert len(description) <= 512
    if set(text) <= ALLOWED and len(text) <= 512:
        assert description == text


@given(st.text(max_size=300))
def test_detail_is_always_safe_to_store(text: str) -> None:
    """The detail goes to the sign-in log: no control, format or separator character, capped."""
    detail = InvalidRequest("x", detail=text).detail
    assert len(detail) <= 256
    assert all(c.isprintable() for c in detail)


def test_detail_with_terminal_escape_is_neutralised() -> None:
    err = InvalidRequest("parameter repeated", detail="duplicate_parameter:\x1b]0;pwned\x07\r\nforged row")
    assert err.detail == "duplicate_parameter:?]0;pwned???forged row"


def test_every_built_in_description_is_in_charset() -> None:
    for err in (InvalidClient(detail="x"), UnsupportedGrantType(), RateLimited(3, detail="x"), MethodNotAllowed(),
                ServerError()):
        assert set(err.description) <= ALLOWED


def test_error_results_headers() -> None:
    plain = error_result(InvalidClient(detail="x"))
    assert plain.headers == {"Cache-Control": "no-store", "Pragma": "no-cache"}
    basic = error_result(InvalidClient(detail="x", basic=True))
    assert basic.headers == {"Cache-Control": "no-store", "Pragma": "no-cache",
                             "WWW-Authenticate": 'Basic realm="keyless"'}
    limited = error_result(RateLimited(7, detail="x"))
    assert (limited.status, limited.body) == (429, {"error": "invalid_request", "error_description": "rate limited"})
    assert limited.headers["Retry-After"] == "7"
    method = error_result(MethodNotAllowed())
    assert (method.status, method.headers["Allow"]) == (405, "POST")
    server = error_result(ServerError(detail="boom"))
    assert (server.status, server.body) == (500, {"error": "server_error", "error_description": "internal error"})
