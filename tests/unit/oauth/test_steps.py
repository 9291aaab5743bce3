"""The token endpoint's ordered steps and registries (issue 12 scope 3): grants and client
authentication methods are looked up by wire string, a step added after client authentication
runs there and its refusals are logged, the client assertion is decoded once per request, and the
refusals the HTTP shell makes (body too large, repeated header) reach the sign-in log."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from keyless.jose import hygiene
from keyless.oauth.client_auth.registry import DEFAULT_METHODS
from keyless.oauth.context import TokenContext, TokenEnv
from keyless.oauth.errors import InvalidRequest
from keyless.oauth.grants.registry import DEFAULT_GRANTS
from keyless.oauth.request import TokenHttpRequest
from keyless.oauth.service import Step, TokenService
from tests.unit.oauth.fakes import BASE_URL, MemoryOneTimeUses, World, http_request, make_world
from tests.unit.oauth.test_private_key_jwt import CertWorld

ECHO = "urn:keyless:test:echo"


class EchoGrant:
    """A grant that only says who authenticated: what a new grant module looks like."""

    grant_type = ECHO

    async def issue(self, ctx: TokenContext, env: TokenEnv) -> None:
        assert ctx.client is not None
        ctx.response = {"client_id": ctx.client.app.client_id, "method": ctx.client.method}


def service(w: World, **registries: Any) -> TokenService:
    return TokenService(directory=w.directory, keyring=w.keyring, hasher=w.hasher, clock=w.clock, sink=w.sink,
                        replay=MemoryOneTimeUses(), base_url=BASE_URL, throttle=w.throttle, **registries)


def with_flags(req: TokenHttpRequest, **flags: bool) -> TokenHttpRequest:
    return TokenHttpRequest(method=req.method, content_type=req.content_type, authorization=req.authorization,
                            query=req.query, body=req.body, source=req.source, **flags)


async def test_a_registered_grant_type_is_served_by_its_module() -> None:
    w = make_world()
    extended = service(w, grants={**DEFAULT_GRANTS, ECHO: EchoGrant()})
    result = await extended.handle(w.tenant.id, http_request(w.form(grant_type=ECHO)))
    assert (result.status, result.body) == (200, {"client_id": w.client.client_id, "method": "client_secret_post"})
    assert (w.sink.last.result, w.sink.last.grant_type) == ("success", ECHO)

    refused = await w.service.handle(w.tenant.id, http_request(w.form(grant_type=ECHO)))
    assert (refused.status, refused.body["error"]) == (400, "unsupported_grant_type")


async def test_a_method_left_out_of_the_registry_authenticates_nobody() -> None:
    w = make_world()
    basic_only = service(w, auth_methods={"client_secret_basic": DEFAULT_METHODS["client_secret_basic"]})
    result = await basic_only.handle(w.tenant.id, http_request(w.form()))
    assert (result.status, result.body["error"]) == (401, "invalid_client")
    assert w.sink.last.detail == "no_client_authentication"


def test_default_registries_are_keyed_by_wire_string() -> None:
    assert list(DEFAULT_METHODS) == ["client_secret_basic", "client_secret_post", "private_key_jwt",
                                     "federated_credential"]
    assert all(name == method.name for name, method in DEFAULT_METHODS.items())
    assert list(DEFAULT_GRANTS) == ["client_credentials"]


async def test_a_step_after_client_auth_sees_the_client_and_its_refusal_is_logged() -> None:
    w = make_world()
    seen: list[str | None] = []

    async def policy(ctx: TokenContext, env: TokenEnv) -> None:
        seen.append(ctx.client.credential_id if ctx.client else None)
        raise InvalidRequest("refused by policy", detail="policy:test")

    steps: list[tuple[str, Step]] = [("policy", policy)]
    guarded = service(w, after_client_auth=steps)
    assert [name for name, _ in guarded.steps] == ["request", "grant_type", "throttle", "client_auth", "policy",
                                                    "grant"]
    result = await guarded.handle(w.tenant.id, http_request(w.form()))
    assert (result.status, result.body["error_description"]) == (400, "refused by policy")
    event = w.sink.last
    assert seen == [event.credential_id] and event.credential_id is not None
    assert (event.result, event.detail, event.client_id, event.auth_method, event.token_id) == (
        "failure", "policy:test", w.client.client_id, "client_secret_post", None)
    # A failed client authentication never reaches the step.
    await guarded.handle(w.tenant.id, http_request(w.form(client_secret="wrong")))
    assert len(seen) == 1 and w.sink.last.detail == "wrong_secret"


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many JOSE segments are JSON-decoded (`loads_strict`, which every split_compact call uses
    wherever it is imported): two per decoded assertion, its header and its payload."""
    calls: list[int] = []
    real: Callable[..., Any] = hygiene.loads_strict

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(hygiene, "loads_strict", counting)
    return calls


async def test_client_assertion_is_decoded_once_when_it_succeeds(decodes: list[int]) -> None:
    c = CertWorld()
    result = await c.send(c.assertion())
    assert result.status == 200, result.body
    assert len(decodes) == 2


@pytest.mark.parametrize(("claims", "detail"), [
    ({"aud": "https://elsewhere.example"}, "audience_mismatch"),  # refused after the signature
    ({"exp": "soon"}, "claim_invalid:exp"),  # refused by the claim-type pass, sub still logged
])
async def test_client_assertion_is_decoded_once_when_it_is_refused(
    decodes: list[int], claims: dict[str, Any], detail: str
) -> None:
    c = CertWorld()
    result = await c.send(c.assertion(**claims))
    assert result.status == 401
    assert (c.w.sink.last.detail, c.w.sink.last.client_id) == (detail, c.w.client.client_id)
    assert len(decodes) == 2


@pytest.mark.parametrize(("flags", "description", "detail"), [
    ({"body_too_large": True}, "request body too large", "body_too_large"),
    ({"repeated_header": True}, "a request header is repeated", "duplicate_header"),
])
async def test_http_shell_refusals_reach_the_signin_log(flags: dict[str, bool], description: str, detail: str) -> None:
    w = make_world()
    result = await w.service.handle(w.tenant.id, with_flags(http_request(w.form()), **flags))
    assert (result.status, result.body) == (400, {"error": "invalid_request", "error_description": description})
    event = w.sink.last
    assert (event.result, event.error, event.detail, event.source, event.client_id) == (
        "failure", "invalid_request", detail, "10.0.0.1", None)

    # For a tenant that does not exist the shell's refusal is still the answer; there is no log to write.
    count = len(w.sink.events)
    unknown = await w.service.handle("no-such-tenant", with_flags(http_request(w.form()), **flags))
    assert unknown.body["error_description"] == description
    assert len(w.sink.events) == count
