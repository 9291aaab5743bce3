"""`private_key_jwt` in process with a frozen clock: time boundaries, audience modes, certificate
validity, replay and what the sign-in log records (catalog B01, B03, B07, B10, B11)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import pytest

from keyless.crypto.client_keys import generate_client_key, self_signed_certificate
from keyless.crypto.keys import PrivateKey
from keyless.domain.model import Certificate
from keyless.jose.jws import sign_with_headers
from keyless.oauth.client_auth import ASSERTION_TYPE
from keyless.oauth.service import TokenResult
from tests.unit.oauth.fakes import BASE_URL, World, http_request, make_world

AUTH_FAILED = {"error": "invalid_client", "error_description": "client authentication failed (invalid_client)"}


class CertWorld:
    def __init__(self) -> None:
        self.w: World = make_world()
        self.key: PrivateKey = generate_client_key("p256")
        pem = self_signed_certificate(self.key, "worker", now=self.w.clock.now(), days=30)
        self.cert: Certificate = self.w.directory.add_certificate(self.w.client, pem)

    @property
    def token_endpoint(self) -> str:
        return f"{BASE_URL}/{self.w.tenant.id}/oauth2/v2.0/token"

    def assertion(self, **claims: Any) -> str:
        cid = self.w.client.client_id
        now = self.w.clock.now()
        body: dict[str, Any] = {"iss": cid, "sub": cid, "aud": self.w.issuer(), "iat": now, "exp": now + 300,
                                "jti": str(uuid.uuid4())}
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        return sign_with_headers(body, self.key, alg="ES256", headers={"typ": "JWT", "x5t#S256": self.cert.x5t_s256})

    async def send(self, assertion: str, **form: str) -> TokenResult:
        params = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
                  "client_assertion": assertion, "scope": f"{World.RESOURCE_URI}/.default", **form}
        return await self.w.service.handle(self.w.tenant.id, http_request(params))


@pytest.fixture
def c() -> CertWorld:
    return CertWorld()


async def refused(c: CertWorld, assertion: str, detail: str) -> None:
    result = await c.send(assertion)
    assert (result.status, result.body) == (401, AUTH_FAILED)
    assert c.w.sink.last.detail == detail


async def test_success_records_certificate_and_method(c: CertWorld) -> None:
    result = await c.send(c.assertion())
    assert result.status == 200, result.body
    event = c.w.sink.last
    assert (event.credential_type, event.credential_id, event.auth_method) == (
        "certificate", c.cert.id, "private_key_jwt")


async def test_b07_replay_refused(c: CertWorld) -> None:
    once = c.assertion()
    assert (await c.send(once)).status == 200
    await refused(c, once, "assertion_replayed")


async def test_b10_expiry_boundaries(c: CertWorld) -> None:
    now = c.w.clock.now()
    assert (await c.send(c.assertion(exp=now - 29, iat=now - 300))).status == 200  # within the 30 s leeway
    await refused(c, c.assertion(exp=now - 30, iat=now - 300), "assertion_expired")
    await refused(c, c.assertion(exp=now - 300, iat=now - 600), "assertion_expired")  # 5 minutes past
    await refused(c, c.assertion(exp=now + 365 * 86400, iat=None), "assertion_lifetime_too_long")
    await refused(c, c.assertion(exp=None), "exp_missing")


async def test_b10_lifetime_cap_by_tenant_mode(c: CertWorld) -> None:
    """Entra-compatible tenants accept the 30-minute assertions async azure-identity signs (nbf, no
    iat); strict tenants cap assertions at 10 minutes."""
    now = c.w.clock.now()
    assert (await c.send(c.assertion(iat=None, nbf=now, exp=now + 1800))).status == 200
    await refused(c, c.assertion(iat=None, nbf=now, exp=now + 1861), "assertion_lifetime_too_long")
    await refused(c, c.assertion(exp=now + 300, iat=now - 1501), "assertion_lifetime_too_long")  # exp - iat > 1800
    strict = replace(c.w.tenant, assertion_audience="strict")
    c.w.directory.tenants[strict.id] = strict
    aud = c.w.issuer()
    assert (await c.send(c.assertion(aud=aud, exp=now + 600))).status == 200
    await refused(c, c.assertion(aud=aud, iat=None, nbf=now, exp=now + 1800), "assertion_lifetime_too_long")
    await refused(c, c.assertion(aud=aud, exp=now + 300, iat=now - 301), "assertion_lifetime_too_long")


async def test_b11_future_iat_and_nbf(c: CertWorld) -> None:
    now = c.w.clock.now()
    assert (await c.send(c.assertion(iat=now + 8, nbf=now + 8, exp=now + 300))).status == 200
    assert (await c.send(c.assertion(iat=now + 60, exp=now + 300))).status == 200
    await refused(c, c.assertion(iat=now + 61, exp=now + 300), "iat_in_future")
    await refused(c, c.assertion(nbf=now + 61, exp=now + 300), "nbf_in_future")


async def test_float_numeric_dates_accepted(c: CertWorld) -> None:
    now = c.w.clock.now()
    assert (await c.send(c.assertion(iat=now + 0.25, exp=now + 300.75))).status == 200


async def test_b01_b03_audience_modes(c: CertWorld) -> None:
    assert (await c.send(c.assertion(aud=c.token_endpoint))).status == 200  # Entra-compatible default
    assert (await c.send(c.assertion(aud=[c.w.issuer()]))).status == 200
    await refused(c, c.assertion(aud=[c.w.issuer(), "https://other-as"]), "audience_not_single")
    await refused(c, c.assertion(aud=f"{c.token_endpoint}/"), "audience_mismatch")
    strict = replace(c.w.tenant, assertion_audience="strict")
    c.w.directory.tenants[strict.id] = strict
    await refused(c, c.assertion(aud=c.token_endpoint), "audience_mismatch")
    await refused(c, c.assertion(aud=[c.w.issuer()]), "audience_not_a_string")
    assert (await c.send(c.assertion(aud=c.w.issuer()))).status == 200


async def test_certificate_validity_window(c: CertWorld) -> None:
    c.w.clock.advance(31 * 86400)  # the 30-day certificate has expired
    await refused(c, c.assertion(), "certificate_not_valid_now")


async def test_body_client_id_must_match(c: CertWorld) -> None:
    result = await c.send(c.assertion(), client_id=str(uuid.uuid4()))
    assert (result.status, result.body) == (
        400, {"error": "invalid_request", "error_description": "client_id does not match the client assertion"})


async def test_jti_not_burned_by_a_failed_assertion(c: CertWorld) -> None:
    """The jti is consumed only after the signature and every claim check passed."""
    jti = str(uuid.uuid4())
    await refused(c, c.assertion(jti=jti, aud="https://elsewhere"), "audience_mismatch")
    assert (await c.send(c.assertion(jti=jti))).status == 200
