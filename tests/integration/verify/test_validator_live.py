"""The validator against a real Keyless server: discovery and JWKS over TLS, async single-flight
fetching, and emergency key removal (catalog I04)."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from keyless.directory.service import MIN_ACTIVATION_DELAY
from keyless.verify import InvalidToken, TokenValidator
from tests.conftest import SHARED_ENV
from tests.integration.verify.conftest import World, fetch_token
from tests.support.server import Admin, RunningServer, start_server, stop_server


def kid_of(token: str) -> str:
    head = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["kid"])


def test_real_token_validates_sync(world: World) -> None:
    v = TokenValidator(issuer=world.server.issuer, audience=world.audience, algorithms=["RS256"], ca=world.server.ca)
    try:
        token = v.validate(world.reader)
        assert token.roles == frozenset({"Orders.Read"}) and token.is_app_only
        assert v.jwks_fetches == 1 and kid_of(world.reader) in v.kids
        assert v.validate(world.reader) is token  # remembered
    finally:
        v.close()
    other = TokenValidator(issuer=world.server.issuer, audience="api://other", algorithms=["RS256"],
                           ca=world.server.ca)
    try:
        with pytest.raises(InvalidToken) as err:
            other.validate(world.reader)
        assert err.value.reason == "wrong audience"
    finally:
        other.close()


def test_wrong_issuer_metadata_is_refused(world: World) -> None:
    # Same server, but an issuer string the discovery document does not carry.
    v = TokenValidator(issuer=world.server.url + "/" + world.server.tenant_id, audience=world.audience,
                       algorithms=["RS256"], ca=world.server.ca)
    try:
        with pytest.raises(InvalidToken):
            v.validate(world.reader)
    finally:
        v.close()


async def test_100_concurrent_avalidate_cold_cache_one_fetch(world: World) -> None:
    requests: list[str] = []

    async def count(request: httpx.Request) -> None:
        requests.append(request.url.path)

    async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=world.server.ca), timeout=10,
                                 event_hooks={"request": [count]}) as client:
        v = TokenValidator(issuer=world.server.issuer, audience=world.audience, algorithms=["RS256"],
                           async_http=client)
        results = await asyncio.gather(*(v.avalidate(world.reader) for _ in range(100)))
    assert all(r.roles == frozenset({"Orders.Read"}) for r in results)
    jwks_requests = [p for p in requests if p.endswith("/keys")]
    assert len(jwks_requests) == 1, requests
    assert v.jwks_fetches == 1
    v.close()


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """Retiring keys would break the shared server's other tests: this module gets its own."""
    srv = start_server(tmp_path_factory.mktemp("verify-rotation"), env=SHARED_ENV)
    try:
        yield srv
    finally:
        stop_server(srv)


def test_i04_emergency_retire_stops_old_tokens_within_max_age(own_server: RunningServer, tmp_path: Path) -> None:
    with Admin(own_server) as admin:
        audience = "api://rotation-orders"
        admin.app("rotation-orders", identifier_uri=audience, roles=("Orders.Read",))
        client = admin.app("rotation-client")
        secret = admin.secret(client["client_id"])["secret"]
        admin.grant(client["client_id"], audience, "Orders.Read")
        old_token = fetch_token(own_server, client["client_id"], secret, f"{audience}/.default")
        old_kid = kid_of(old_token)
        v = TokenValidator(issuer=own_server.issuer, audience=audience, algorithms=["RS256"], ca=own_server.ca,
                           max_age=2, refresh_interval=1)
        try:
            v.validate(old_token)
            v.validate(old_token)  # remembered
            new_key = admin.api.call("POST", "/keys/rotate", json_body={"activate_in": 0})
            time.sleep(MIN_ACTIVATION_DELAY)  # "at once" is once every replica publishes it
            admin.api.call("POST", f"/keys/{old_kid}/retire")
            time.sleep(2.2)  # past max_age: the next validation refetches the JWKS
            with pytest.raises(InvalidToken) as err:
                v.validate(old_token)
            assert err.value.reason == "unknown kid"
            assert old_kid not in v.kids
            new_token = fetch_token(own_server, client["client_id"], secret, f"{audience}/.default")
            assert kid_of(new_token) == new_key["kid"] != old_kid
            assert v.validate(new_token).roles == frozenset({"Orders.Read"})
        finally:
            v.close()


def test_unknown_kid_refetches_at_most_once_per_interval(world: World) -> None:
    from keyless.crypto.keys import generate, public_of
    from keyless.jose.jwk import key_id
    from keyless.jose.jws import sign

    now = [time.time()]
    v = TokenValidator(issuer=world.server.issuer, audience=world.audience, algorithms=["RS256"],
                       ca=world.server.ca, refresh_interval=60, clock=lambda: now[0])
    evil = generate("RS256")
    claims = {"iss": world.server.issuer, "aud": world.audience, "exp": int(now[0]) + 600, "iat": int(now[0]),
              "sub": "s", "client_id": "c", "jti": "j"}
    try:
        v.validate(world.reader)
        assert v.jwks_fetches == 1
        forged = sign(claims, evil, alg="RS256", kid="unknown", typ="at+jwt")
        with pytest.raises(InvalidToken):
            v.validate(forged)
        assert v.jwks_fetches == 1  # the JWKS was fetched less than refresh_interval ago
        now[0] += 61
        for i in range(20):  # a stream of unknown kids: one refetch per interval, however many arrive
            forged = sign(claims, evil, alg="RS256", kid=f"{key_id(public_of(evil))}-{i}", typ="at+jwt")
            with pytest.raises(InvalidToken) as err:
                v.validate(forged)
            assert err.value.reason == "unknown kid"
        assert v.jwks_fetches == 2
        now[0] += 61
        with pytest.raises(InvalidToken):
            v.validate(forged)
        assert v.jwks_fetches == 3
        assert v.validate(world.reader).roles == frozenset({"Orders.Read"})
        assert v.jwks_fetches == 3
    finally:
        v.close()
