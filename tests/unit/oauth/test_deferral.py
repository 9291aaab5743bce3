"""The token endpoint's public-key operations go through `TokenEnv.defer` (`keyless.oauth.deferral`),
at the point of the step order where a call made them: a client assertion's verification (certificate
or federated) before any claim is trusted and before its `jti` is consumed, the token's signature last.
`keyless serve` holds them to the end of its event loop's turn (`keyless.server.eager.Turn`); here a
deferral holds them until the test releases them, so what has happened meanwhile can be looked at."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from keyless.clock import FrozenClock
from keyless.crypto.client_keys import generate_client_key, self_signed_certificate
from keyless.domain.federation import FederatedCredential
from keyless.jose.jwk import JwkEntry, VerificationKeys
from keyless.jose.jws import sign_with_headers
from keyless.oauth.client_auth import ASSERTION_TYPE, federated
from keyless.oauth.federation.issuers import IssuerKeys
from keyless.oauth.service import TokenResult
from tests.unit.oauth.fakes import MemoryOneTimeUses, World, http_request, make_world

T = TypeVar("T")


class Held:
    """A `Deferral` that keeps each work until `release`."""

    def __init__(self) -> None:
        self.works: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []

    def __call__(self, work: Callable[[], T], /) -> Awaitable[T]:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self.works.append((work, future))
        return future

    async def next(self) -> Callable[[], Any]:
        """The next work asked for, once the request has got that far."""
        for _ in range(100):
            if self.works:
                return self.works[0][0]
            await asyncio.sleep(0)
        raise AssertionError("no work was deferred")

    def release(self) -> None:
        work, future = self.works.pop(0)
        future.set_result(work())


def setup() -> tuple[World, Held, Callable[[str], str]]:
    held = Held()
    w = make_world(defer=held)
    key = generate_client_key("p256")
    cert = w.directory.add_certificate(w.client, self_signed_certificate(key, "worker", now=w.clock.now(), days=30))

    def assertion(jti: str, signer: Any = key) -> str:
        now, cid = w.clock.now(), w.client.client_id
        claims = {"iss": cid, "sub": cid, "aud": w.issuer(), "iat": now, "exp": now + 300, "jti": jti}
        return sign_with_headers(claims, signer, alg="ES256", headers={"typ": "JWT", "x5t#S256": cert.x5t_s256})

    return w, held, assertion


def send(w: World, assertion: str) -> asyncio.Task[TokenResult]:
    params = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
              "client_assertion": assertion, "scope": f"{World.RESOURCE_URI}/.default"}
    return asyncio.ensure_future(w.service.handle(w.tenant.id, http_request(params)))


def used(w: World) -> set[tuple[str, str, str]]:
    replay = w.service._replay  # the fake store make_world built
    assert isinstance(replay, MemoryOneTimeUses)
    return replay.used


async def test_verification_then_jti_then_signature() -> None:
    w, held, assertion = setup()
    jti = str(uuid.uuid4())
    request = send(w, assertion(jti))
    await held.next()  # the assertion's verification, asked for before the jti is consumed
    assert used(w) == set() and not w.sink.events and not request.done()
    held.release()
    await held.next()  # the token's signature, asked for after it
    assert used(w) == {("client_assertion", w.client.client_id, jti)}
    assert not request.done()
    held.release()
    result = await request
    assert result.status == 200, result.body
    assert (w.sink.last.result, w.sink.last.auth_method) == ("success", "private_key_jwt")


async def test_a_deferred_verification_that_fails_refuses_and_burns_no_jti() -> None:
    w, held, assertion = setup()
    jti = str(uuid.uuid4())
    request = send(w, assertion(jti, signer=generate_client_key("p256")))  # not the registered key
    await held.next()
    held.release()
    result = await request
    assert (result.status, result.body) == (401, {
        "error": "invalid_client", "error_description": "client authentication failed (invalid_client)"})
    assert w.sink.last.detail == "bad_signature_or_alg"
    assert used(w) == set() and held.works == []  # nothing consumed, nothing signed


class OneIssuer:
    """`IssuerKeys.keys` for one issuer with one P-256 key (the fetching has its own tests)."""

    def __init__(self, key: Any) -> None:
        self.entry = JwkEntry(key=key.public_key(), algorithms=frozenset({"ES256"}))

    async def keys(self, issuer: str, kid: str | None) -> VerificationKeys:
        return {"k1": self.entry}


async def test_a_federated_assertions_signature_is_checked_through_the_deferral_before_its_claims() -> None:
    issuer, now = "https://issuer.example.test", 1_800_000_000
    credential = FederatedCredential(id="c1", tenant_id="t", owner_type="application", owner_id="app", name="ci",
                                     issuer=issuer, subject="repo:acme/api", audience="api://KeylessTokenExchange")
    key, other = generate_client_key("p256"), generate_client_key("p256")
    claims = {"iss": issuer, "sub": "repo:acme/api", "aud": "api://KeylessTokenExchange", "iat": now, "exp": now + 300}
    header = {"alg": "ES256", "kid": "k1", "typ": "JWT"}
    keys = cast(IssuerKeys, OneIssuer(key))
    for signer, failed in ((key, None), (other, "signature")):
        held = Held()
        token = sign_with_headers(claims, signer, alg="ES256", headers={"kid": "k1", "typ": "JWT"})
        examined = asyncio.ensure_future(federated.examine(token, header, claims, [credential], keys,
                                                           FrozenClock(now), held))
        await held.next()
        assert not examined.done()  # the claims wait for the signature's verdict
        held.release()
        found = await examined
        assert found.failed == failed
        assert (found.matched is credential) is (failed is None)
