"""The bearer check of the management API and the vault (`keyless.server.bearer`) on tokens signed
with the tenant's own key but carrying hostile numbers or claims of the wrong type (issue 11 items
1 and 2): `BearerInvalid` (a 401), never another exception, never "no roles"."""

from __future__ import annotations

import json
from typing import Any

import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyless.oauth.metadata import issuer
from keyless.server.bearer import BearerInvalid, BearerVerifier
from tests.support.hostile import json_number_texts, numeric_date_value, with_claim
from tests.unit.oauth.fakes import BASE_URL, START, World, make_world

AUDIENCE = "api://keyless-management"


class Signer:
    def __init__(self) -> None:
        self.w: World = make_world()
        self.verifier = BearerVerifier(self.w.keyring, self.w.clock, BASE_URL)

    def claims(self, **over: Any) -> dict[str, Any]:
        now = int(START)
        return {"iss": issuer(BASE_URL, self.w.tenant), "aud": AUDIENCE, "exp": now + 600, "iat": now, "nbf": now,
                "sub": "s", "client_id": "c", "jti": "j", "roles": ["Keyless.Admin"], **over}

    async def token(self, payload: bytes) -> str:
        key = await self.w.keyring.signer(self.w.tenant.id)
        return jwt.PyJWS().encode(payload, key.private, algorithm=key.alg, headers={"kid": key.kid, "typ": "at+jwt"})

    async def check(self, payload: bytes) -> Any:
        return await self.verifier.verify(self.w.tenant, "Bearer " + await self.token(payload), AUDIENCE)


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer()


async def test_bearer_with_well_typed_claims_is_accepted(signer: Signer) -> None:
    token = await signer.check(json.dumps(signer.claims()).encode())
    assert token.roles == frozenset({"Keyless.Admin"})


@pytest.mark.parametrize("text", ["1" + "0" * 400, "1e400", "NaN", "Infinity", "true", '"9999999999"', "-5"])
async def test_bearer_with_hostile_exp_is_refused_not_500(signer: Signer, text: str) -> None:
    with pytest.raises(BearerInvalid):
        await signer.check(with_claim(signer.claims(), "exp", text))


@pytest.mark.parametrize("over", [{"roles": "Keyless.Admin"}, {"roles": ["Keyless.Admin", 1]}, {"scp": ["x"]},
                                  {"aud": [AUDIENCE, 7]}, {"sub": 1}, {"tid": 1}, {"iss": None}])
async def test_bearer_with_a_claim_of_the_wrong_type_is_refused(signer: Signer, over: dict[str, Any]) -> None:
    with pytest.raises(BearerInvalid):
        await signer.check(json.dumps(signer.claims(**over)).encode())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=json_number_texts, name=st.sampled_from(["exp", "nbf", "iat"]))
async def test_bearer_over_the_json_number_space_accepts_only_in_range_dates(
        signer: Signer, text: str, name: str) -> None:
    expected = numeric_date_value(text)
    try:
        token = await signer.check(with_claim(signer.claims(), name, text))
    except BearerInvalid:
        if expected is not None:
            assert (expected + 30 <= START) if name == "exp" else (expected > START + 30)
        return
    assert expected is not None, text
    assert token.claims[name] == expected
