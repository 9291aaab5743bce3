"""`keyless.client.core`: the sans-IO core, driven by hand with a fake clock and fake sleeps."""

from __future__ import annotations

import json
from collections.abc import Generator
from typing import Any

import pytest

from keyless.client.assertions import CLIENT_ASSERTION_TYPE
from keyless.client.auth import AssertionAuth, Metadata, SecretAuth
from keyless.client.core import (
    Action,
    HttpResponse,
    Outcome,
    RetryPolicy,
    Send,
    Sleep,
    Token,
    TransportFailure,
    parse_error,
    parse_metadata,
    parse_retry_after,
    parse_token_response,
    refresh_at,
    scope_key,
    token_flow,
    token_request,
)
from keyless.client.errors import OAuthError, TokenRequestError

NOW = 1_800_000_000.0
AUTHORITY = "https://keyless.test:8443"
ISSUER = f"{AUTHORITY}/t1/v2.0"


def ok(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> HttpResponse:
    return HttpResponse.of(status, headers or {}, json.dumps(body).encode())


def token_body(lifetime: int = 3600, **extra: Any) -> dict[str, Any]:
    return {"token_type": "Bearer", "expires_in": lifetime, "access_token": "at-123", **extra}


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def run(flow: Generator[Action, Outcome, Any], outcomes: list[HttpResponse | TransportFailure],
        clock: Clock) -> tuple[Any, list[Action]]:
    """Drive a flow: answer each Send with the next outcome, advance the fake clock on each Sleep."""
    actions: list[Action] = []
    answer: Outcome = None
    try:
        while True:
            action = flow.send(answer)
            actions.append(action)
            if isinstance(action, Sleep):
                clock.now += action.seconds
                answer = None
            else:
                answer = outcomes.pop(0)
    except StopIteration as stop:
        return stop.value, actions


def secret_flow(clock: Clock, policy: RetryPolicy | None = None, rng: Any = None) -> Generator[Action, Outcome, Token]:
    return token_flow(SecretAuth("cid", "the-secret"), ("api://orders/.default",), authority=AUTHORITY,
                      tenant_id="t1", metadata=None, policy=policy or RetryPolicy(), clock=clock,
                      rng=rng or (lambda a, b: b))


# -- refresh times --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("lifetime", "refresh_in", "expected"), [
    (3600, None, 1800),        # half-life
    (86400, None, 43200),      # long tokens: half-life
    (600, None, 300),          # ten minutes: half-life = five minutes before expiry
    (300, None, 150),          # short tokens: half-life, never "at once"
    (3600, 600, 600),          # the server's refresh_in wins
    (3600, 7200, 1800),        # ... unless it lies outside the lifetime
    (3600, 0, 1800),
    (0, None, 0),
])
def test_refresh_at(lifetime: int, refresh_in: float | None, expected: float) -> None:
    assert refresh_at(NOW, lifetime, refresh_in) == NOW + expected


def test_token_fresh_and_usable() -> None:
    token = Token("at-secret-value", expires_on=NOW + 3600, refresh_on=NOW + 1800)
    assert token.fresh(NOW) and token.usable(NOW)
    assert not token.fresh(NOW + 1800) and token.usable(NOW + 1800)
    assert not token.usable(NOW + 3600 - 30)  # never handed out in its last 30 seconds
    assert "at-secret-value" not in repr(token)


# -- responses --------------------------------------------------------------------------------------------


def test_parse_token_response() -> None:
    token = parse_token_response(ok(token_body(3600, refresh_in=900)), NOW)
    assert token.access_token == "at-123" and token.expires_on == NOW + 3600 and token.refresh_on == NOW + 900
    assert parse_token_response(ok(token_body(lifetime="3600")), NOW).expires_on == NOW + 3600  # type: ignore[arg-type]


@pytest.mark.parametrize("body", [
    {"token_type": "Bearer", "expires_in": 3600},
    {"token_type": "Bearer", "access_token": "a"},
    {"token_type": "Bearer", "access_token": "a", "expires_in": -1},
    {"token_type": "Bearer", "access_token": "a", "expires_in": True},
    {"token_type": "pop", "access_token": "a", "expires_in": 3600},
])
def test_parse_token_response_refuses_incomplete_bodies(body: dict[str, Any]) -> None:
    with pytest.raises(TokenRequestError):
        parse_token_response(ok(body), NOW)


def test_non_json_success_and_oversized_bodies() -> None:
    with pytest.raises(TokenRequestError):
        parse_token_response(HttpResponse.of(200, {}, b"<html>"), NOW)
    with pytest.raises(TokenRequestError):
        parse_token_response(HttpResponse.of(200, {}, b" " * 70_000 + b"{}"), NOW)


def test_error_parsing_and_secret_scrubbing() -> None:
    err = parse_error(ok({"error": "invalid_client", "error_description": "bad secret the-secret"}, 401),
                      ["the-secret"])
    assert isinstance(err, OAuthError)
    assert err.error == "invalid_client" and err.status == 401
    assert err.error_description == "bad secret ***"
    assert "the-secret" not in str(err) and "the-secret" not in repr(err)
    assert str(err) == "token request refused: invalid_client: bad secret *** (HTTP 401)"
    plain = parse_error(HttpResponse.of(502, {}, b"Bad Gateway"))
    assert isinstance(plain, TokenRequestError) and not isinstance(plain, OAuthError) and "502" in str(plain)
    with pytest.raises(OAuthError) as caught:
        parse_token_response(ok({"error": "invalid_scope"}, 400), NOW)
    assert caught.value.error_description is None and str(caught.value).endswith("invalid_scope (HTTP 400)")


def test_metadata() -> None:
    meta = parse_metadata(ok({"issuer": ISSUER, "token_endpoint": f"{AUTHORITY}/t1/oauth2/v2.0/token"}))
    assert meta == Metadata(ISSUER, f"{AUTHORITY}/t1/oauth2/v2.0/token")
    for bad in ({"issuer": ISSUER}, {"issuer": ISSUER, "token_endpoint": "http://plain/token"}):
        with pytest.raises(TokenRequestError):
            parse_metadata(ok(bad))
    with pytest.raises(TokenRequestError):
        parse_metadata(ok({}, 404))


# -- Retry-After and backoff ------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    ("7", 7.0), (" 0 ", 0.0), (None, None), ("soon", None), ("-3", None), ("1.5", None),
    ("Fri, 15 Jan 2027 08:00:10 GMT", 10.0),   # NOW is 2027-01-15T08:00:00Z
    ("Fri, 15 Jan 2027 07:00:00 GMT", 0.0),    # in the past: no wait
])
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_backoff_is_exponential_full_jitter_and_capped() -> None:
    policy = RetryPolicy(base=0.5, max_backoff=3.0)
    upper = [policy.delay(n, None, lambda a, b: b) for n in range(5)]
    assert upper == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert [policy.delay(n, None, lambda a, b: a) for n in range(3)] == [0.0, 0.0, 0.0]
    assert policy.delay(0, 5.0, lambda a, b: b) == 5.0  # Retry-After is the minimum wait
    assert policy.delay(3, 1.0, lambda a, b: b) == 3.0


def test_retries_5xx_and_transport_errors_then_succeeds() -> None:
    clock = Clock()
    token, actions = run(secret_flow(clock), [HttpResponse.of(503, {}, b""), TransportFailure("ConnectError"),
                                              ok(token_body())], clock)
    assert [type(a).__name__ for a in actions] == ["Send", "Sleep", "Send", "Sleep", "Send"]
    assert [a.seconds for a in actions if isinstance(a, Sleep)] == [0.5, 1.0]
    assert token.access_token == "at-123" and token.expires_on == NOW + 1.5 + 3600


def test_honours_retry_after_on_429() -> None:
    clock = Clock()
    limited = ok({"error": "invalid_request", "error_description": "rate limited"}, 429, {"Retry-After": "4"})
    token, actions = run(secret_flow(clock), [limited, ok(token_body())], clock)
    assert [a.seconds for a in actions if isinstance(a, Sleep)] == [4.0]
    assert token.access_token == "at-123"


def test_gives_up_after_three_retries_with_the_servers_error() -> None:
    clock = Clock()
    limited = ok({"error": "temporarily_unavailable"}, 503)
    with pytest.raises(OAuthError) as caught:
        run(secret_flow(clock), [limited] * 4, clock)
    assert caught.value.error == "temporarily_unavailable" and clock.now == NOW + 0.5 + 1 + 2


def test_gives_up_on_transport_errors_with_a_clear_error() -> None:
    clock = Clock()
    with pytest.raises(TokenRequestError, match=r"cannot reach .*ConnectError"):
        run(secret_flow(clock), [TransportFailure("ConnectError")] * 4, clock)


def test_total_wait_is_capped() -> None:
    clock = Clock()
    limited = ok({"error": "invalid_request"}, 429, {"Retry-After": "120"})
    with pytest.raises(OAuthError):
        run(secret_flow(clock, RetryPolicy(max_total_wait=30)), [limited], clock)
    assert clock.now == NOW  # never slept: the wait would exceed the budget


def test_client_errors_are_not_retried() -> None:
    clock = Clock()
    with pytest.raises(OAuthError) as caught:
        run(secret_flow(clock), [ok({"error": "invalid_client"}, 401)], clock)
    assert caught.value.error == "invalid_client" and clock.now == NOW


# -- requests ---------------------------------------------------------------------------------------------


def test_secret_request_form() -> None:
    flow = secret_flow(Clock())
    send = next(flow)
    assert isinstance(send, Send)
    req = send.request
    assert req.method == "POST" and req.url == f"{AUTHORITY}/t1/oauth2/v2.0/token"
    assert req.form == {"grant_type": "client_credentials", "scope": "api://orders/.default", "client_id": "cid",
                        "client_secret": "the-secret"}
    assert "the-secret" not in repr(req) and "the-secret" not in repr(SecretAuth("cid", "the-secret"))


def test_assertion_flow_discovers_the_issuer_and_signs_a_fresh_assertion_per_attempt() -> None:
    audiences: list[str] = []

    def sign(aud: str) -> str:
        audiences.append(aud)
        return f"assertion-{len(audiences)}"

    found: list[Metadata] = []
    clock = Clock()
    flow = token_flow(AssertionAuth("cid", sign), ("api://orders/.default",), authority=AUTHORITY + "/",
                      tenant_id="default", metadata=None, policy=RetryPolicy(), clock=clock,
                      rng=lambda a, b: 0.0, on_metadata=found.append)
    endpoint = f"{AUTHORITY}/t1/oauth2/v2.0/token"
    discovery = ok({"issuer": ISSUER, "token_endpoint": endpoint})
    token, actions = run(flow, [discovery, HttpResponse.of(500, {}, b""), ok(token_body())], clock)
    sends = [a.request for a in actions if isinstance(a, Send)]
    assert sends[0].method == "GET" and sends[0].url == f"{AUTHORITY}/default/v2.0/.well-known/openid-configuration"
    assert [s.url for s in sends[1:]] == [endpoint, endpoint]
    assert [s.form and s.form["client_assertion"] for s in sends[1:]] == ["assertion-1", "assertion-2"]
    assert sends[1].form and sends[1].form["client_assertion_type"] == CLIENT_ASSERTION_TYPE
    assert audiences == [ISSUER, ISSUER] and found == [Metadata(ISSUER, endpoint)]
    assert token.access_token == "at-123"


def test_a_resource_indicator_replaces_the_scope() -> None:
    """RFC 8707 §2: the host agent asks for the resource an IMDS caller named, as it always has."""
    metadata = Metadata(ISSUER, f"{AUTHORITY}/t1/oauth2/v2.0/token")
    auth = AssertionAuth("cid", lambda aud: f"signed-for-{aud}")
    req = token_request(auth, metadata.token_endpoint, (), metadata, resource="https://vault.example.test")
    assert req.form == {"grant_type": "client_credentials", "resource": "https://vault.example.test",
                        "client_id": "cid", "client_assertion_type": CLIENT_ASSERTION_TYPE,
                        "client_assertion": f"signed-for-{ISSUER}"}
    scoped = token_request(auth, metadata.token_endpoint, ("api://orders/.default",), metadata)
    assert scoped.form is not None and "resource" not in scoped.form
    assert scoped.form["scope"] == "api://orders/.default"


def test_scope_key() -> None:
    assert scope_key(["b", "a", "a "]) == ("a", "b")
    for bad in ([], [""], ["  "]):
        with pytest.raises(ValueError):
            scope_key(bad)
