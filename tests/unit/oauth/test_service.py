"""`TokenService.handle` end to end against the in-memory directory, with a frozen clock.

Every wire error code the token endpoint can produce is pinned here (status, JSON body, headers) together
with the internal reason recorded in the sign-in sink (the node-oidc-provider `error_detail` pattern).
"""

from __future__ import annotations

import base64
import hmac
from typing import Any
from urllib.parse import quote_plus

import pytest

from keyless.crypto import secrets as secrets_module
from keyless.jose.jwk import public_key_from_jwk
from keyless.jose.jws import VerificationKey, unverified_header, verify
from keyless.oauth.client_auth import ASSERTION_TYPE
from keyless.oauth.service import TokenResult
from tests.unit.oauth.fakes import BASE_URL, START, World, http_request, make_world

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
AUTH_FAILED = {"error": "invalid_client", "error_description": "client authentication failed (invalid_client)"}


@pytest.fixture
def w() -> World:
    return make_world()


def basic(client_id: str, secret: str) -> str:
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode()


async def call(w: World, params: dict[str, str] | None = None, **kwargs: Any) -> TokenResult:
    tenant = kwargs.pop("tenant", w.tenant.id)
    return await w.service.handle(tenant, http_request(params, **kwargs))


async def verified_claims(w: World, token: str) -> dict[str, Any]:
    keys = {k.kid: VerificationKey(kid=k.kid, alg=k.alg, key=public_key_from_jwk(k.public_jwk))
            for k in await w.keyring.published(w.tenant.id)}
    return verify(token, keys=keys, algorithms={"RS256", "ES256"}, typ="at+jwt")


def assert_error(result: TokenResult, status: int, body: dict[str, str], headers: dict[str, str] | None = None) -> None:
    assert result.status == status
    assert result.body == body
    assert result.headers == (headers if headers is not None else NO_STORE)


# -- success ----------------------------------------------------------------------------------------------

async def test_success_claims_and_response(w: World) -> None:
    result = await call(w, w.form())
    assert result.status == 200
    assert result.headers == NO_STORE
    assert result.error is None
    assert set(result.body) == {"token_type", "expires_in", "ext_expires_in", "access_token"}
    assert (result.body["token_type"], result.body["expires_in"], result.body["ext_expires_in"]) == ("Bearer", 3600,
                                                                                                      3600)
    token = str(result.body["access_token"])
    header = unverified_header(token)
    signer = await w.keyring.signer(w.tenant.id)
    assert header == {"alg": "ES256", "kid": signer.kid, "typ": "at+jwt"}
    claims = await verified_claims(w, token)
    now = int(START)
    assert claims == {
        "aud": "api://orders", "iss": w.issuer(), "iat": now, "nbf": now, "exp": now + 3600,
        "sub": w.client.object_id, "oid": w.client.object_id, "tid": w.tenant.id,
        "client_id": w.client.client_id, "azp": w.client.client_id, "appid": w.client.client_id,
        "azpacr": "1", "idtyp": "app", "ver": "2.0", "jti": claims["jti"], "roles": ["Data.Read"],
    }
    assert len(claims["jti"]) >= 22
    event = w.sink.last
    assert (event.result, event.error, event.detail) == ("success", None, None)
    assert (event.client_id, event.credential_type, event.resource, event.source) == (
        w.client.client_id, "secret", w.resource.identifier_uri, "10.0.0.1")
    assert event.credential_id == w.directory.secrets[w.client.client_id][0].id
    assert event.token_id == claims["jti"]
    assert event.time == START


async def test_success_with_basic_and_urlencoded_credentials(w: World) -> None:
    result = await call(w, {"grant_type": "client_credentials", "scope": "api://orders/.default"},
                        authorization=basic(w.client.client_id, w.secret))
    assert result.status == 200
    claims = await verified_claims(w, str(result.body["access_token"]))
    assert claims["azpacr"] == "1"


async def test_basic_with_matching_body_client_id_is_accepted(w: World) -> None:
    result = await call(w, {"grant_type": "client_credentials", "scope": "api://orders/.default",
                            "client_id": w.client.client_id}, authorization=basic(w.client.client_id, w.secret))
    assert result.status == 200


async def test_success_via_resource_parameter_and_client_id_audience(w: World) -> None:
    result = await call(w, w.form(scope=None, resource="api://orders"))  # type: ignore[arg-type]
    assert (await verified_claims(w, str(result.body["access_token"])))["aud"] == "api://orders"
    by_id = await call(w, w.form(scope=f"{w.resource.client_id}/.default"))
    claims = await verified_claims(w, str(by_id.body["access_token"]))
    assert claims["aud"] == w.resource.client_id  # the audience is exactly what was asked for


async def test_open_resource_without_assignment_gives_token_without_roles(w: World) -> None:
    w.directory.add_app(w.tenant, "open", identifier_uri="api://open", open_to_tenant=True)
    result = await call(w, w.form(scope="api://open/.default"))
    claims = await verified_claims(w, str(result.body["access_token"]))
    assert claims["aud"] == "api://open"
    assert "roles" not in claims


async def test_token_lifetime_follows_tenant() -> None:
    w = make_world(token_lifetime=600)
    result = await call(w, w.form())
    claims = await verified_claims(w, str(result.body["access_token"]))
    assert claims["exp"] - claims["iat"] == 600 == result.body["expires_in"]


async def test_tenant_by_name(w: World) -> None:
    assert (await call(w, w.form(), tenant="CONTOSO")).status == 200


# -- invalid_request ----------------------------------------------------------------------------------------

async def test_unknown_tenant(w: World) -> None:
    result = await call(w, w.form(), tenant="nope")
    assert_error(result, 400, {"error": "invalid_request", "error_description": "unknown tenant"})
    assert w.sink.events == []  # nothing to attribute it to


async def test_get_is_405(w: World) -> None:
    result = await call(w, method="GET", body=b"", query=b"client_secret=" + w.secret.encode(), content_type=None)
    assert_error(result, 405, {"error": "invalid_request", "error_description": "the token endpoint accepts POST only"},
                 {**NO_STORE, "Allow": "POST"})
    assert w.sink.last.detail == "method_not_post"


@pytest.mark.parametrize(
    ("kwargs", "description", "detail"),
    [
        ({"query": b"client_secret=x"}, "parameters must be sent in the request body", "query_parameters"),
        ({"content_type": "application/json"}, "content type must be application/x-www-form-urlencoded",
         "content_type"),
        ({"authorization": "Bearer abc"}, "unsupported authorization scheme at the token endpoint", "auth_scheme"),
        ({"authorization": "Basic"}, "malformed Basic authorization header", "basic_empty"),
        ({"body": b"grant_type=client_credentials&grant_type=client_credentials"}, "parameter repeated",
         "duplicate_parameter:grant_type"),
        ({"body": b"a" * 40000}, "request body too large", "body_too_large"),
    ],
)
async def test_malformed_requests(w: World, kwargs: dict[str, Any], description: str, detail: str) -> None:
    result = await call(w, w.form(), **kwargs)
    assert_error(result, 400, {"error": "invalid_request", "error_description": description})
    assert (w.sink.last.result, w.sink.last.error, w.sink.last.detail) == ("failure", "invalid_request", detail)


async def test_missing_grant_type(w: World) -> None:
    result = await call(w, w.form(grant_type=None))  # type: ignore[arg-type]
    assert_error(result, 400, {"error": "invalid_request", "error_description": "grant_type is required"})
    assert w.sink.last.detail == "grant_type_missing"


async def test_empty_grant_type_is_missing(w: World) -> None:
    result = await call(w, w.form(grant_type=""))
    assert result.body == {"error": "invalid_request", "error_description": "grant_type is required"}


@pytest.mark.parametrize(
    ("extra", "auth"),
    [
        ({}, "basic"),
        ({"client_assertion": "a.b.c", "client_assertion_type": ASSERTION_TYPE}, None),
        ({"client_assertion_type": ASSERTION_TYPE}, None),
    ],
)
async def test_two_authentication_methods(w: World, extra: dict[str, str], auth: str | None) -> None:
    authorization = basic(w.client.client_id, w.secret) if auth else None
    result = await call(w, w.form(**extra), authorization=authorization)
    assert_error(result, 400, {"error": "invalid_request",
                               "error_description": "only one client authentication method may be used"})
    assert w.sink.last.detail == "multiple_auth_methods"


async def test_basic_and_different_body_client_id(w: World) -> None:
    other = w.directory.add_app(w.tenant, "other")
    result = await call(w, {"grant_type": "client_credentials", "scope": "api://orders/.default",
                            "client_id": other.client_id}, authorization=basic(w.client.client_id, w.secret))
    assert_error(result, 400, {"error": "invalid_request",
                               "error_description": "client_id does not match the authenticated client"})
    assert w.sink.last.detail == "client_id_mismatch"


async def test_client_secret_without_client_id(w: World) -> None:
    result = await call(w, w.form(client_id=None))  # type: ignore[arg-type]
    assert_error(result, 400, {"error": "invalid_request",
                               "error_description": "client_id is required with client_secret"})


@pytest.mark.parametrize("extra", [{"client_assertion": "a.b.c"}, {"client_assertion": "a.b.c",
                                                                     "client_assertion_type": "urn:other"}])
async def test_assertion_without_the_right_type(w: World, extra: dict[str, str]) -> None:
    result = await call(w, w.form(client_secret=None, **extra))  # type: ignore[arg-type]
    assert_error(result, 400, {"error": "invalid_request",
                               "error_description": "client_assertion_type must be jwt-bearer with a client_assertion"})
    assert w.sink.last.detail == "assertion_type"


# -- unsupported_grant_type ------------------------------------------------------------------------------

@pytest.mark.parametrize("grant", ["password", "authorization_code", "refresh_token", "CLIENT_CREDENTIALS",
                                   "urn:ietf:params:oauth:grant-type:jwt-bearer", "client_credentials "])
async def test_unsupported_grant_type(w: World, grant: str) -> None:
    result = await call(w, w.form(grant_type=grant))
    assert_error(result, 400, {"error": "unsupported_grant_type",
                               "error_description": "only grant_type=client_credentials is supported"})
    assert w.sink.last.detail == "grant_type_unsupported"
    assert w.directory.call_count("get_client") == 0  # decided before any credential work


# -- invalid_client ---------------------------------------------------------------------------------------

async def failure(w: World, params: dict[str, str], detail: str, *, authorization: str | None = None) -> TokenResult:
    result = await call(w, params, authorization=authorization)
    headers = {**NO_STORE, "WWW-Authenticate": 'Basic realm="keyless"'} if authorization else NO_STORE
    assert_error(result, 401, AUTH_FAILED, headers)
    event = w.sink.last
    assert (event.result, event.error, event.detail) == ("failure", "invalid_client", detail)
    assert event.credential_id is None and event.token_id is None
    return result


async def test_wrong_secret(w: World) -> None:
    await failure(w, w.form(client_secret=w.secret[:-1] + ("A" if w.secret[-1] != "A" else "B")), "wrong_secret")


async def test_unknown_client(w: World) -> None:
    await failure(w, w.form(client_id="00000000-0000-4000-8000-000000000000"), "unknown_client")


async def test_client_without_secrets(w: World) -> None:
    bare = w.directory.add_app(w.tenant, "bare")
    await failure(w, w.form(client_id=bare.client_id), "no_secret_registered")


async def test_public_client_sends_no_credentials(w: World) -> None:
    await failure(w, w.form(client_secret=None), "no_client_authentication")  # type: ignore[arg-type]


async def test_empty_client_secret_is_no_authentication(w: World) -> None:
    await failure(w, w.form(client_secret=""), "no_client_authentication")


async def test_malformed_client_assertion_is_invalid_request(w: World) -> None:
    params = w.form(client_secret=None, client_assertion="a.b.c", client_assertion_type=ASSERTION_TYPE)  # type: ignore[arg-type]
    result = await call(w, params)
    assert result.status == 400
    assert result.body == {"error": "invalid_request", "error_description": "invalid client_assertion format"}


async def test_assertion_for_a_client_without_certificates(w: World) -> None:
    """A10: a secret-only client cannot authenticate with an assertion signed by any key."""
    import time as _time

    from keyless.crypto.certificates import generate_client_key
    from keyless.jose.jws import sign_with_headers

    cid = w.client.client_id
    claims = {"iss": cid, "sub": cid, "aud": f"{BASE_URL}/{w.tenant.id}/v2.0", "exp": _time.time() + 300,
              "jti": "j1"}
    assertion = sign_with_headers(claims, generate_client_key("p256"), alg="ES256", headers={"typ": "JWT"})
    params = w.form(client_secret=None, client_assertion=assertion, client_assertion_type=ASSERTION_TYPE)  # type: ignore[arg-type]
    await failure(w, params, "no_matching_certificate")


async def test_secret_too_long(w: World) -> None:
    await failure(w, w.form(client_secret="x" * 513), "secret_too_long")


async def test_secret_expiry_with_frozen_clock() -> None:
    w = make_world()
    assert (await call(w, w.form())).status == 200
    w.clock.advance(86400 - 1)
    assert (await call(w, w.form())).status == 200
    w.clock.advance(1)  # expires_at is exclusive
    await failure(w, w.form(), "secret_expired")


async def test_rotated_out_secret(w: World) -> None:
    new = w.directory.add_secret(w.client)
    w.directory.revoke_all_secrets(w.client)
    newest = w.directory.add_secret(w.client)
    await failure(w, w.form(), "wrong_secret")
    await failure(w, w.form(client_secret=new), "wrong_secret")
    assert (await call(w, w.form(client_secret=newest))).status == 200


async def test_any_live_secret_works(w: World) -> None:
    second = w.directory.add_secret(w.client)
    assert (await call(w, w.form())).status == 200
    assert (await call(w, w.form(client_secret=second))).status == 200


async def test_disabled_client(w: World) -> None:
    w.directory.set_enabled(w.client, False)
    await failure(w, w.form(), "client_disabled")
    await failure(w, w.form(), "client_disabled", authorization=None)


async def test_basic_failures_carry_www_authenticate(w: World) -> None:
    params = {"grant_type": "client_credentials", "scope": "api://orders/.default"}
    await failure(w, params, "wrong_secret", authorization=basic(w.client.client_id, "kls_wrong"))
    await failure(w, params, "unknown_client", authorization=basic("nobody", "kls_wrong"))


@pytest.mark.parametrize("use_basic", [False, True])
async def test_a09_unknown_client_and_wrong_secret_identical(w: World, use_basic: bool) -> None:
    """A09: status, body and headers do not tell "no such client" from "wrong secret"; only the log does."""
    wrong = "kls_" + "W" * 49

    async def attempt(client_id: str, secret: str) -> tuple[int, dict[str, object], dict[str, str]]:
        if use_basic:
            result = await call(w, {"grant_type": "client_credentials", "scope": "api://orders/.default"},
                                authorization=basic(client_id, secret))
        else:
            result = await call(w, w.form(client_id=client_id, client_secret=secret))
        return result.status, result.body, result.headers

    known = await attempt(w.client.client_id, wrong)
    assert known[0] == 401
    assert await attempt("00000000-0000-4000-8000-000000000000", wrong) == known
    assert await attempt("not-a-guid", wrong) == known
    # A disabled client, with the right or a wrong secret, answers the same as well.
    w.directory.set_enabled(w.client, False)
    assert await attempt(w.client.client_id, w.secret) == known
    assert await attempt(w.client.client_id, wrong) == known
    assert [e.detail for e in w.sink.events] == ["wrong_secret", "unknown_client", "unknown_client",
                                                 "client_disabled", "wrong_secret"]


async def test_secret_of_one_client_does_not_authenticate_another(w: World) -> None:
    other = w.directory.add_app(w.tenant, "other")
    w.directory.add_secret(other)
    await failure(w, w.form(client_id=other.client_id), "wrong_secret")


async def test_client_of_another_tenant_is_unknown(w: World) -> None:
    other_tenant = w.directory.add_tenant("fabrikam")
    result = await w.service.handle(other_tenant.id, http_request(w.form()))
    assert (result.status, result.body) == (401, AUTH_FAILED)
    assert w.sink.last.detail == "unknown_client"
    assert w.sink.last.tenant_id == other_tenant.id


# -- L01 / L03: constant-time comparison, lookup by id ---------------------------------------------------

async def test_l01_secret_compared_with_compare_digest(w: World, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(secrets_module.hmac, "compare_digest", spy)
    w.directory.add_secret(w.client)
    assert (await call(w, w.form(client_secret="kls_" + "Z" * 49))).status == 401
    assert len(seen) == 2  # one comparison per live secret, no early exit
    assert all(len(a) == len(b) == 32 for a, b in seen)  # fixed-length HMAC-SHA-256 digests
    assert all(b"kls_" not in a and b"kls_" not in b for a, b in seen)  # never the plaintext
    seen.clear()
    assert (await call(w, w.form())).status == 200
    assert len(seen) == 2


async def test_l03_lookup_is_by_client_id_never_by_secret(w: World) -> None:
    await call(w, w.form())
    await call(w, w.form(client_secret="kls_" + "Q" * 49))
    digest = w.hasher.digest(w.secret)
    for name, args in w.directory.calls:
        for arg in args:
            assert w.secret not in str(arg) and "kls_" not in str(arg), (name, args)
            assert arg != digest
    assert [args for name, args in w.directory.calls if name == "get_client"] == [
        (w.tenant.id, w.client.client_id)] * 2


# -- invalid_scope / invalid_target ---------------------------------------------------------------------

@pytest.mark.parametrize(
    ("params", "error", "description", "detail"),
    [
        ({"scope": None}, "invalid_scope", "scope is required: use {resource}/.default", "scope_missing"),
        ({"scope": "api://orders/read"}, "invalid_scope",
         "client_credentials requires a scope of the form {resource}/.default", "scope_not_default"),
        ({"scope": "api://orders/.default\u00e9"}, "invalid_scope", "malformed scope", "scope_syntax"),
        ({"scope": "api://unknown/.default"}, "invalid_scope",
         "the requested resource is not registered in this tenant", "resource_unknown"),
        ({"scope": "api://locked/.default"}, "invalid_scope", "the client has no access to the requested resource",
         "no_assignment"),
        ({"scope": None, "resource": "api://locked"}, "invalid_target",
         "the client has no access to the requested resource", "no_assignment"),
        ({"scope": None, "resource": "api://unknown"}, "invalid_target",
         "the requested resource is not registered in this tenant", "resource_unknown"),
        ({"scope": None, "resource": "orders"}, "invalid_target",
         "resource must be an absolute URI without a fragment", "resource_syntax"),
        ({"scope": None, "resource": "api://orders#x"}, "invalid_target",
         "resource must be an absolute URI without a fragment", "resource_syntax"),
        ({"resource": "api://locked"}, "invalid_target", "scope and resource name different resources",
         "scope_resource_mismatch"),
        ({"scope": "api://disabled/.default"}, "invalid_scope",
         "the requested resource is not registered in this tenant", "resource_unknown"),
    ],
)
async def test_scope_and_target_errors(
    w: World, params: dict[str, str | None], error: str, description: str, detail: str
) -> None:
    w.directory.add_app(w.tenant, "locked", identifier_uri="api://locked", roles=("Admin",))
    w.directory.add_app(w.tenant, "disabled", identifier_uri="api://disabled", open_to_tenant=True, enabled=False)
    result = await call(w, w.form(**params))  # type: ignore[arg-type]
    assert_error(result, 400, {"error": error, "error_description": description})
    event = w.sink.last
    assert (event.error, event.detail, event.client_id) == (error, detail, w.client.client_id)
    assert event.credential_id is not None  # the client did authenticate


async def test_scope_errors_come_after_authentication(w: World) -> None:
    """A bad scope with a bad secret is an authentication failure: nothing about resources leaks."""
    result = await call(w, w.form(scope="api://unknown/.default", client_secret="kls_nope"))
    assert (result.status, result.body) == (401, AUTH_FAILED)


# -- server_error -----------------------------------------------------------------------------------------

async def test_no_active_signing_key_is_generic_500(w: World) -> None:
    w.directory.keys[w.tenant.id] = []
    w.keyring.invalidate()
    result = await call(w, w.form())
    assert_error(result, 500, {"error": "server_error", "error_description": "internal error"})
    assert w.sink.last.detail == "no_active_signing_key"


# -- rate limiting through the service -------------------------------------------------------------------

async def test_failures_throttle_the_source_with_429() -> None:
    w = make_world(source_burst=3, source_rate=0.5)
    bad = w.form(client_secret="kls_" + "B" * 49)
    for _ in range(3):
        assert (await call(w, bad)).status == 401
    limited = await call(w, bad)
    assert_error(limited, 429, {"error": "invalid_request", "error_description": "rate limited"},
                 {**NO_STORE, "Retry-After": "2"})
    assert w.sink.last.detail == "too_many_failures"
    # The right secret from the same source waits too: the check runs before any credential work.
    calls = w.directory.call_count("get_client")
    assert (await call(w, w.form())).status == 429
    assert w.directory.call_count("get_client") == calls
    # Another source is not affected.
    assert (await call(w, w.form(), source="10.9.9.9")).status == 200
    # No permanent lockout: once refilled, the right secret works from the throttled source.
    w.clock.advance(2)
    assert (await call(w, w.form())).status == 200


async def test_wrong_secrets_from_many_sources_do_not_lock_out_the_right_secret() -> None:
    """The per-client budget is spent by failures from many sources; the client's own workload, whose
    source has no failure against it, is still verified and gets its token (no lockout, issue 11)."""
    w = make_world(client_burst=4, client_rate=1, pair_burst=3, pair_rate=0.1)
    for i in range(40):
        result = await call(w, w.form(client_secret="kls_bad"), source=f"10.1.0.{i % 8}")
        assert result.status in (401, 429)
    assert w.sink.last.detail == "too_many_failures"  # the attacking sources are being refused
    ok = await call(w, w.form(), source="10.2.0.1")
    assert ok.status == 200
    # An attacking source is refused before verification, even with the right secret: it has
    # failures outstanding against this client, which is under attack.
    calls = w.directory.call_count("get_client")
    limited = await call(w, w.form(), source="10.1.0.0")
    assert (limited.status, limited.headers["Retry-After"]) == (429, "1")
    assert w.directory.call_count("get_client") == calls
    # A source that was clean gets verified; its failure makes it wait like the others.
    assert (await call(w, w.form(client_secret="kls_bad"), source="10.3.0.1")).status == 401
    assert (await call(w, w.form(client_secret="kls_bad"), source="10.3.0.1")).status == 429
    # Other clients are not affected from the attacking sources.
    other = w.directory.add_app(w.tenant, "other")
    w.directory.grant(other, w.resource, "Data.Read")
    other_form = w.form(client_id=other.client_id, client_secret=w.directory.add_secret(other))
    assert (await call(w, other_form, source="10.1.0.0")).status == 200


async def test_one_source_guessing_one_client_is_throttled_per_pair() -> None:
    w = make_world(pair_burst=3, pair_rate=0.5)
    for _ in range(3):
        assert (await call(w, w.form(client_secret="kls_bad"), source="10.4.0.1")).status == 401
    limited = await call(w, w.form(), source="10.4.0.1")
    assert (limited.status, limited.headers["Retry-After"]) == (429, "2")
    assert (await call(w, w.form(), source="10.4.0.2")).status == 200  # the client's own source
    w.clock.advance(2)
    assert (await call(w, w.form(), source="10.4.0.1")).status == 200  # no lasting lockout


async def test_only_client_authentication_failures_count() -> None:
    w = make_world(source_burst=2)
    for _ in range(5):
        assert (await call(w, w.form(scope="api://unknown/.default"))).status == 400
        assert (await call(w, w.form(grant_type="password"))).status == 400
        assert (await call(w, w.form(), query=b"scope=x")).status == 400
    assert (await call(w, w.form())).status == 200


async def test_rate_limited_requests_do_not_extend_the_wait() -> None:
    w = make_world(source_burst=1, source_rate=1)
    assert (await call(w, w.form(client_secret="kls_bad"))).status == 401
    for _ in range(20):
        assert (await call(w, w.form(client_secret="kls_bad"))).status == 429
    w.clock.advance(1)
    assert (await call(w, w.form())).status == 200
