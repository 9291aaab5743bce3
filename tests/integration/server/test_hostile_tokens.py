"""Hostile numbers, wrong claim types and re-encoded tokens against a real `keyless serve` over TLS
(issue 11 items 1, 2 and 6): every one is the token endpoint's ordinary refusal, never a 5xx, and a
single-use token stays single-use however it is re-encoded."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from keyless.crypto.keys import PrivateKey
from tests.support.certs import (
    AUTH_FAILED,
    BAD_FORMAT,
    ClientCert,
    assertion_form,
    b64u,
    claims_for,
    new_cert,
    register,
)
from tests.support.issuer import ExternalIssuer, exchange, federated_app
from tests.support.server import Admin, RunningServer

K8S_SUBJECT = "system:serviceaccount:prod:orders"
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
B64U = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def sign_raw(payload: bytes, key: PrivateKey, alg: str, headers: dict[str, Any]) -> str:
    """A validly signed JWS over exactly these payload bytes (numbers no `json.dumps` writes)."""
    return jwt.PyJWS().encode(payload, key, algorithm=alg, headers=headers)


def with_exp(claims: dict[str, Any], exp_text: str) -> bytes:
    """The claims as JSON, with `exp` replaced by this literal JSON text."""
    body = json.dumps({**claims, "exp": 0}, separators=(",", ":"))
    return body.replace('"exp":0', f'"exp":{exp_text}').encode()


HOSTILE_EXP = ["1" + "0" * 400, "1e400", "-1e400", "NaN", "Infinity", "-Infinity", "true", '"1893456000"',
               "null", "-1", "9007199254740992", "1e300", "[1893456000]"]


@pytest.fixture
def cert_client(server: RunningServer, admin: Admin) -> tuple[str, ClientCert, str]:
    resource = f"api://hostile-{uuid.uuid4().hex[:8]}"
    admin.app(f"hostile-res-{uuid.uuid4().hex[:6]}", identifier_uri=resource, roles=("Data.Read",))
    client_id = admin.app(f"hostile-client-{uuid.uuid4().hex[:6]}")["client_id"]
    admin.grant(client_id, resource, "Data.Read")
    cert = new_cert("p256")
    register(server, admin, client_id, cert)
    return client_id, cert, f"{resource}/.default"


def test_assertion_with_exp_of_400_digits_is_invalid_client_not_500(
        server: RunningServer, cert_client: tuple[str, ClientCert, str]) -> None:
    client_id, cert, scope = cert_client
    assertion = cert.sign(claims_for(client_id, server.issuer, exp=10**400), alg="ES256")
    with server.http() as http:
        resp = http.post(server.token_endpoint, data=assertion_form(assertion, scope))
    assert (resp.status_code, resp.json()) == (401, AUTH_FAILED)
    assert resp.headers["cache-control"] == "no-store"


def test_assertion_hostile_numeric_dates_are_all_invalid_client(
        server: RunningServer, cert_client: tuple[str, ClientCert, str]) -> None:
    client_id, cert, scope = cert_client
    headers = {"typ": "JWT", "x5t#S256": cert.info.x5t_s256}
    with server.http() as http:
        for text in HOSTILE_EXP:
            payload = with_exp(claims_for(client_id, server.issuer), text)
            resp = http.post(server.token_endpoint,
                             data=assertion_form(sign_raw(payload, cert.key, "ES256", headers), scope))
            assert (resp.status_code, resp.json()) == (401, AUTH_FAILED), text
        good = cert.sign(claims_for(client_id, server.issuer), alg="ES256")
        assert http.post(server.token_endpoint, data=assertion_form(good, scope)).status_code == 200


@pytest.mark.parametrize("claim", [{"iss": 7}, {"sub": ["x"]}, {"jti": 12}, {"aud": [3]}, {"iat": "now"}])
def test_assertion_claim_of_the_wrong_type_is_invalid_client(
        server: RunningServer, cert_client: tuple[str, ClientCert, str], claim: dict[str, Any]) -> None:
    client_id, cert, scope = cert_client
    payload = json.dumps({**claims_for(client_id, server.issuer), **claim}).encode()
    assertion = sign_raw(payload, cert.key, "ES256", {"typ": "JWT", "x5t#S256": cert.info.x5t_s256})
    with server.http() as http:
        resp = http.post(server.token_endpoint, data=assertion_form(assertion, scope))
    assert (resp.status_code, resp.json()) == (401, AUTH_FAILED)


def _spare_bit_variants(segment: str) -> list[str]:
    """Every other text whose base64url decoding equals `segment`'s (spare bits of the last character)."""
    spare = {2: 0x0F, 3: 0x03}.get(len(segment) % 4, 0)
    base = B64U.index(segment[-1]) & ~spare
    return [segment[:-1] + B64U[base | bits] for bits in range(1, spare + 1)]


def test_assertion_with_spare_bits_set_in_its_signature_is_refused(
        server: RunningServer, cert_client: tuple[str, ClientCert, str]) -> None:
    client_id, cert, scope = cert_client
    assertion = cert.sign(claims_for(client_id, server.issuer), alg="ES256")
    head, payload, sig = assertion.split(".")
    variants = _spare_bit_variants(sig)
    assert variants  # an ES256 signature is 64 bytes: 86 characters, 4 spare bits
    with server.http() as http:
        for variant in variants:
            resp = http.post(server.token_endpoint, data=assertion_form(f"{head}.{payload}.{variant}", scope))
            assert (resp.status_code, resp.json()) == (400, BAD_FORMAT)
        assert http.post(server.token_endpoint, data=assertion_form(assertion, scope)).status_code == 200


# -- federated tokens -----------------------------------------------------------------------------------


@pytest.fixture
def es_issuer(tmp_path: Any, issuer_ca: Any) -> Any:
    from tests.support import issuer as support_issuer

    with support_issuer.running_issuer(tmp_path / "es-issuer", issuer_ca[0], alg="ES256") as running:
        yield running


def test_federated_token_with_hostile_exp_is_invalid_client_not_500(
        fed_server: RunningServer, issuer: ExternalIssuer) -> None:
    with Admin(fed_server) as admin:
        app = federated_app(admin, issuer.issuer, K8S_SUBJECT)
    key = issuer.keys[issuer.current]
    for text in HOSTILE_EXP:
        payload = with_exp(issuer.claims(K8S_SUBJECT), text)
        token = sign_raw(payload, key, issuer.alg, {"kid": issuer.current})
        resp = exchange(fed_server, app.client_id, token, app.scope)
        assert resp.status_code == 401, (text, resp.text)
        assert resp.json()["error"] == "invalid_client"
    assert exchange(fed_server, app.client_id, issuer.token(K8S_SUBJECT), app.scope).status_code == 200


def test_token_mode_refuses_a_token_replayed_with_its_signature_re_encoded(
        fed_server: RunningServer, es_issuer: ExternalIssuer) -> None:
    """`--replay token` once accepted one token 16 times by re-encoding its signature's last character;
    and ECDSA's (r, n - s) is a second valid signature over the same claims."""
    with Admin(fed_server) as admin:
        app = federated_app(admin, es_issuer.issuer, K8S_SUBJECT, replay="token")
    token = es_issuer.token(K8S_SUBJECT)
    head, payload, sig = token.split(".")
    assert exchange(fed_server, app.client_id, token, app.scope).status_code == 200
    for variant in _spare_bit_variants(sig):
        resp = exchange(fed_server, app.client_id, f"{head}.{payload}.{variant}", app.scope)
        assert (resp.status_code, resp.json()) == (400, BAD_FORMAT)
    raw = jwt.utils.base64url_decode(sig)
    r, s = raw[:32], int.from_bytes(raw[32:], "big")
    mirrored = b64u(r + (P256_ORDER - s).to_bytes(32, "big"))
    assert isinstance(es_issuer.keys[es_issuer.current], ec.EllipticCurvePrivateKey)
    resp = exchange(fed_server, app.client_id, f"{head}.{payload}.{mirrored}", app.scope)
    assert (resp.status_code, resp.json()) == (401, {
        "error": "invalid_client",
        "error_description": "this federated credential accepts each token once and this one was already used"})


def test_federated_token_over_one_hour_is_refused_by_default(fed_server: RunningServer, admin_fed: Admin,
                                                             issuer: ExternalIssuer) -> None:
    app = federated_app(admin_fed, issuer.issuer, K8S_SUBJECT)
    assert app.credential["max_token_lifetime"] == 3600
    now = int(time.time())
    assert exchange(fed_server, app.client_id, issuer.token(K8S_SUBJECT, lifetime=3600), app.scope).status_code == 200
    for overlong in (issuer.token(K8S_SUBJECT, lifetime=3601 + 60),  # exp - iat over the cap
                     issuer.token(K8S_SUBJECT, iat=None, nbf=None, exp=now + 3600 + 120)):  # no iat: exp - now
        resp = exchange(fed_server, app.client_id, overlong, app.scope)
        assert (resp.status_code, resp.json()) == (401, {
            "error": "invalid_client",
            "error_description": "the token's lifetime is longer than the credential accepts"})
    no_exp = exchange(fed_server, app.client_id, issuer.token(K8S_SUBJECT, exp=None), app.scope)
    assert (no_exp.status_code, no_exp.json()) == (401, {
        "error": "invalid_client", "error_description": "the federated token has no exp claim"})


def test_longer_token_lifetime_is_allowed_up_to_a_day_with_a_lint_warning(fed_server: RunningServer, admin_fed: Admin,
                                                                          issuer: ExternalIssuer) -> None:
    app = federated_app(admin_fed, issuer.issuer, K8S_SUBJECT, max_token_lifetime=86400)
    token = issuer.token(K8S_SUBJECT, lifetime=86400)
    assert exchange(fed_server, app.client_id, token, app.scope).status_code == 200
    findings = admin_fed.api.call("GET", "/federated-credentials/lint", params={"client_id": app.client_id})
    assert [f["code"] for f in findings] == ["long_token_lifetime"]
    day_and_more = exchange(fed_server, app.client_id, issuer.token(K8S_SUBJECT, lifetime=86400 + 61), app.scope)
    assert day_and_more.status_code == 401
    from tests.support.certs import manage

    resp = manage(fed_server, admin_fed, "POST", f"/applications/{app.client_id}/federated-credentials",
                  json={"name": "too-long", "issuer": issuer.issuer, "subject": "other", "max_token_lifetime": 86401})
    assert resp.status_code == 400
    assert resp.json()["code"] == "invalid_token_lifetime"


@pytest.fixture
def admin_fed(fed_server: RunningServer) -> Any:
    with Admin(fed_server) as a:
        yield a
