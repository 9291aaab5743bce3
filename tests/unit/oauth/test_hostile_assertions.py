"""Client assertions and federated tokens, validly signed, with hostile numbers and claims of the
wrong type (issue 11 items 1 and 2): the token endpoint's ordinary `401 invalid_client`, never an
exception (a 500), never acceptance of a time out of range."""

from __future__ import annotations

import json
import uuid
from typing import Any

import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyless.clock import FrozenClock
from keyless.crypto.keys import generate, public_of
from keyless.domain.federation import FederatedCredential
from keyless.jose.jwk import public_jwk
from keyless.oauth.client_auth import federated, private_key_jwt
from keyless.oauth.errors import OAuthErrorResponse
from keyless.oauth.federation.issuers import IssuerKeys
from tests.support.hostile import json_number_texts, numeric_date_value, with_claim
from tests.unit.oauth.fakes import START
from tests.unit.oauth.test_issuer_keys import Documents
from tests.unit.oauth.test_private_key_jwt import AUTH_FAILED, CertWorld

ISSUER = "https://issuer.example.test"
SUBJECT = "system:serviceaccount:prod:orders"


def raw_assertion(c: CertWorld, payload: bytes) -> str:
    return jwt.PyJWS().encode(payload, c.key, algorithm="ES256", headers={"typ": "JWT", "x5t#S256": c.cert.x5t_s256})


def assertion_claims(c: CertWorld) -> dict[str, Any]:
    cid = c.w.client.client_id
    now = int(c.w.clock.now())
    return {"iss": cid, "sub": cid, "aud": c.w.issuer(), "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}


@pytest.fixture(scope="module")
def cw() -> CertWorld:
    return CertWorld()


async def test_assertion_exp_of_10_to_the_400_is_invalid_client_not_overflow(cw: CertWorld) -> None:
    result = await cw.send(raw_assertion(cw, with_claim(assertion_claims(cw), "exp", "1" + "0" * 400)))
    assert (result.status, result.body) == (401, AUTH_FAILED)
    assert cw.w.sink.last.detail == "number_out_of_range"


async def test_assertion_exp_as_a_string_is_invalid_client_naming_the_claim(cw: CertWorld) -> None:
    result = await cw.send(raw_assertion(cw, with_claim(assertion_claims(cw), "exp", '"1800000300"')))
    assert (result.status, result.body) == (401, AUTH_FAILED)
    assert cw.w.sink.last.detail == "claim_invalid:exp"
    assert cw.w.sink.last.client_id == cw.w.client.client_id  # still attributed in the sign-in log


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=json_number_texts, name=st.sampled_from(["exp", "nbf", "iat"]))
async def test_assertions_over_the_json_number_space_get_a_token_only_for_in_range_dates(
        cw: CertWorld, text: str, name: str) -> None:
    expected = numeric_date_value(text)
    result = await cw.send(raw_assertion(cw, with_claim(assertion_claims(cw), name, text)))
    assert result.status in (200, 401), result.body
    if result.status == 401:
        assert result.body == AUTH_FAILED
        return
    assert expected is not None, text
    assert (expected <= START + 300 + 60) if name == "exp" else (expected <= START + 60)


# -- federated tokens: the same parse, then `federated.examine` ----------------------------------------


class Federation:
    def __init__(self) -> None:
        self.key = generate("ES256")
        jwk = public_jwk(public_of(self.key), "ES256")
        self.kid = jwk["kid"]
        docs = Documents()
        docs.issuer(ISSUER, jwk)
        self.clock = FrozenClock(START)
        self.keys = IssuerKeys(docs, self.clock)
        self.credential = FederatedCredential(
            id="fc", tenant_id="t", owner_type="application", owner_id="app", name="k8s", issuer=ISSUER,
            subject=SUBJECT, audience="api://KeylessTokenExchange", algorithms=("ES256",))

    def claims(self) -> dict[str, Any]:
        now = int(START)
        return {"iss": ISSUER, "sub": SUBJECT, "aud": "api://KeylessTokenExchange", "iat": now, "nbf": now,
                "exp": now + 3600, "jti": str(uuid.uuid4())}

    def token(self, payload: bytes) -> str:
        return jwt.PyJWS().encode(payload, self.key, algorithm="ES256", headers={"kid": self.kid, "typ": "JWT"})

    async def examine(self, token: str) -> federated.Examination:
        header, claims = private_key_jwt.parse(token)
        return await federated.examine(token, header, claims, [self.credential], self.keys, self.clock)


@pytest.fixture(scope="module")
def fed() -> Federation:
    return Federation()


async def test_federated_default_credential_caps_lifetime_at_one_hour(fed: Federation) -> None:
    assert fed.credential.max_token_lifetime == 3600
    assert (await fed.examine(fed.token(json.dumps(fed.claims()).encode()))).failed is None
    long = {**fed.claims(), "exp": int(START) + 3601}
    assert (await fed.examine(fed.token(json.dumps(long).encode()))).failed == "lifetime"
    no_iat = {k: v for k, v in {**fed.claims(), "exp": int(START) + 3601}.items() if k not in ("iat", "nbf")}
    assert (await fed.examine(fed.token(json.dumps(no_iat).encode()))).failed == "lifetime"  # exp - now


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=json_number_texts, name=st.sampled_from(["exp", "nbf", "iat"]))
async def test_federated_tokens_over_the_json_number_space_match_only_with_in_range_dates(
        fed: Federation, text: str, name: str) -> None:
    expected = numeric_date_value(text)
    token = fed.token(with_claim(fed.claims(), name, text))
    try:
        found = await fed.examine(token)
    except OAuthErrorResponse as exc:  # refused by the shared parse: the ordinary invalid_client
        assert expected is None, text
        assert (exc.status, exc.error) == (401, "invalid_client")
        return
    if found.failed is None:
        assert expected is not None, text
        assert found.exp is not None and found.exp < 2**53
