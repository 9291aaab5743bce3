"""Federated credentials end to end: a real external issuer on loopback (own CA, discovery, JWKS,
rotation) and a real `keyless serve`, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.security.support import jwt_claims
from tests.support.issuer import (
    REFRESH_INTERVAL,
    ExternalIssuer,
    add_credential,
    exchange,
    explain,
    federated_app,
)
from tests.support.server import Admin, RunningServer

K8S_SUBJECT = "system:serviceaccount:prod:orders"


@pytest.fixture
def admin(fed_server: RunningServer) -> Any:
    with Admin(fed_server) as a:
        yield a


def _failure(resp: Any) -> dict[str, Any]:
    assert resp.status_code == 401, resp.text
    assert resp.headers["cache-control"] == "no-store"
    body = dict(resp.json())
    assert body["error"] == "invalid_client"
    return body


def test_kubernetes_token_gets_an_access_token(fed_server: RunningServer, admin: Admin,
                                               issuer: ExternalIssuer) -> None:
    app = federated_app(admin, issuer.issuer, K8S_SUBJECT)
    resp = exchange(fed_server, app.client_id, issuer.token(K8S_SUBJECT, aud=["api://KeylessTokenExchange"]),
                    app.scope)
    assert resp.status_code == 200, resp.text
    claims = jwt_claims(resp.json()["access_token"])
    assert claims["sub"] == app.object_id
    assert claims["appid"] == app.client_id
    assert claims["aud"] == app.resource
    assert claims["azpacr"] == "2"
    assert claims["roles"] == ["Data.Read"]
    events = admin.api.call("GET", "/logs/signins", params={"client_id": app.client_id, "result": "success"})
    assert events[0]["credential_type"] == "federated"
    assert events[0]["credential_id"] == app.credential["id"]


def test_default_allows_one_token_to_be_exchanged_several_times(fed_server: RunningServer, admin: Admin,
                                                                issuer: ExternalIssuer) -> None:
    """Kubernetes hands a pod one projected token for many exchanges; unmodified clients re-send it."""
    app = federated_app(admin, issuer.issuer, K8S_SUBJECT)
    token = issuer.token(K8S_SUBJECT)
    for _ in range(3):
        assert exchange(fed_server, app.client_id, token, app.scope).status_code == 200


@pytest.mark.parametrize("mode", ["jti", "token"])
def test_single_use_credential_refuses_the_second_exchange(fed_server: RunningServer, admin: Admin,
                                                           issuer: ExternalIssuer, mode: str) -> None:
    app = federated_app(admin, issuer.issuer, K8S_SUBJECT, replay=mode)
    token = issuer.token(K8S_SUBJECT)
    assert exchange(fed_server, app.client_id, token, app.scope).status_code == 200
    body = _failure(exchange(fed_server, app.client_id, token, app.scope))
    assert body["error_description"] == (
        "this federated credential accepts each token once and this one was already used")
    assert exchange(fed_server, app.client_id, issuer.token(K8S_SUBJECT), app.scope).status_code == 200


def test_jti_mode_requires_a_jti(fed_server: RunningServer, admin: Admin, issuer: ExternalIssuer) -> None:
    app = federated_app(admin, issuer.issuer, K8S_SUBJECT, replay="jti")
    body = _failure(exchange(fed_server, app.client_id, issuer.token(K8S_SUBJECT, jti=None), app.scope))
    assert body["error_description"] == "this federated credential accepts each token once and the token has no jti"


def test_key_rotation_is_picked_up_on_an_unknown_kid(fed_server: RunningServer, admin: Admin,
                                                     issuer: ExternalIssuer) -> None:
    app = federated_app(admin, issuer.issuer, K8S_SUBJECT)
    assert exchange(fed_server, app.client_id, issuer.token(K8S_SUBJECT), app.scope).status_code == 200
    old = issuer.current
    issuer.rotate()
    issuer.unpublish(old)
    time.sleep(REFRESH_INTERVAL + 0.2)  # one refresh per issuer per interval (E06)
    assert exchange(fed_server, app.client_id, issuer.token(K8S_SUBJECT), app.scope).status_code == 200
    assert issuer.jwks_fetches() == 2


def test_subject_mismatch_is_explained_without_echoing_the_token(fed_server: RunningServer, admin: Admin,
                                                                 issuer: ExternalIssuer) -> None:
    app = federated_app(admin, issuer.issuer, K8S_SUBJECT)
    token = issuer.token("system:serviceaccount:prod:billing")
    body = _failure(exchange(fed_server, app.client_id, token, app.scope))
    assert body == {"error": "invalid_client",
                    "error_description": "the token's subject matches no federated credential for its issuer"}
    failure = admin.api.call("GET", "/logs/signins", params={"client_id": app.client_id, "result": "failure"})[0]
    assert (failure["auth_method"], failure["detail"]) == ("federated_credential", "federated:subject")
    report = explain(admin, app.client_id, token)
    assert report["result"] == "no_match"
    assert report["failed_check"] == "subject"
    assert report["token"]["sub"] == "system:serviceaccount:prod:billing"
    assert report["credentials"][0]["passed"] == ["audience"]


def test_unknown_client_and_untrusted_issuer_look_the_same(fed_server: RunningServer, admin: Admin,
                                                           issuer: ExternalIssuer) -> None:
    app = federated_app(admin, "https://issuer.example.test", K8S_SUBJECT)
    token = issuer.token(K8S_SUBJECT)
    untrusted = _failure(exchange(fed_server, app.client_id, token, app.scope))
    unknown = _failure(exchange(fed_server, "00000000-0000-4000-8000-000000000000", token, app.scope))
    assert untrusted == unknown
    assert untrusted["error_description"] == (
        "the token's issuer is not trusted by any federated credential of this client")
    assert issuer.fetches == {}  # an issuer no credential of the client names is never fetched


def test_expired_and_overlong_tokens(fed_server: RunningServer, admin: Admin, issuer: ExternalIssuer) -> None:
    app = federated_app(admin, issuer.issuer, K8S_SUBJECT, max_token_lifetime=3600)
    now = int(time.time())
    expired = issuer.token(K8S_SUBJECT, iat=now - 7200, nbf=now - 7200, exp=now - 3600)
    assert _failure(exchange(fed_server, app.client_id, expired, app.scope))["error_description"] == (
        "the federated token has expired")
    long = issuer.token(K8S_SUBJECT, exp=now + 7200)
    assert _failure(exchange(fed_server, app.client_id, long, app.scope))["error_description"] == (
        "the token's lifetime is longer than the credential accepts")
    no_exp = issuer.token(K8S_SUBJECT, exp=None)
    assert _failure(exchange(fed_server, app.client_id, no_exp, app.scope))["error_description"] == (
        "the federated token has no exp claim")


def test_claim_conditions_are_exact(fed_server: RunningServer, admin: Admin, issuer: ExternalIssuer) -> None:
    subject = "repo:acme/api:environment:prod"
    app = federated_app(admin, issuer.issuer, subject, claims={"repository_owner": "acme"})
    good = issuer.token(subject, repository_owner="acme")
    bad = issuer.token(subject, repository_owner="acme-evil")
    assert exchange(fed_server, app.client_id, good, app.scope).status_code == 200
    assert _failure(exchange(fed_server, app.client_id, bad, app.scope))["error_description"] == (
        "the token does not satisfy the credential's claim conditions")


def test_disabled_application_cannot_federate(fed_server: RunningServer, admin: Admin,
                                              issuer: ExternalIssuer) -> None:
    app = federated_app(admin, issuer.issuer, K8S_SUBJECT)
    admin.api.call("PATCH", f"/applications/{app.client_id}", json_body={"enabled": False})
    body = _failure(exchange(fed_server, app.client_id, issuer.token(K8S_SUBJECT), app.scope))
    assert body["error_description"] == "the client is disabled"


def test_removed_credential_stops_working(fed_server: RunningServer, admin: Admin, issuer: ExternalIssuer) -> None:
    app = federated_app(admin, issuer.issuer, K8S_SUBJECT)
    token = issuer.token(K8S_SUBJECT)
    assert exchange(fed_server, app.client_id, token, app.scope).status_code == 200
    admin.api.call("DELETE", f"/applications/{app.client_id}/federated-credentials/{app.credential['name']}")
    _failure(exchange(fed_server, app.client_id, token, app.scope))
    assert admin.api.call("GET", f"/applications/{app.client_id}/federated-credentials") == []


def test_certificate_and_secret_paths_are_untouched_by_federation(fed_server: RunningServer, admin: Admin) -> None:
    client, secret = admin.client_with_role("api://fed-plain-res")
    with fed_server.http() as http:
        resp = http.post(fed_server.token_endpoint, data={
            "grant_type": "client_credentials", "client_id": client["client_id"], "client_secret": secret,
            "scope": "api://fed-plain-res/.default"})
    assert resp.status_code == 200
    assert jwt_claims(resp.json()["access_token"])["azpacr"] == "1"


def test_at_most_twenty_credentials_and_unique_names(fed_server: RunningServer, admin: Admin) -> None:
    app = admin.app("fed-many")
    for i in range(20):
        add_credential(admin, app["client_id"], "https://issuer.example.test", f"sub-{i}", name=f"n{i}")
    from tests.support.certs import manage

    resp = manage(fed_server, admin, "POST", f"/applications/{app['client_id']}/federated-credentials",
                  json={"name": "n20", "issuer": "https://issuer.example.test", "subject": "sub-20"})
    assert resp.status_code == 409
    assert resp.json()["code"] == "too_many_federated_credentials"
    other = admin.app("fed-dup")
    add_credential(admin, other["client_id"], "https://issuer.example.test", "a", name="same")
    resp = manage(fed_server, admin, "POST", f"/applications/{other['client_id']}/federated-credentials",
                  json={"name": "same", "issuer": "https://issuer.example.test", "subject": "b"})
    assert resp.status_code == 409
    assert resp.json()["code"] == "federated_credential_exists"


def test_federation_test_reports_fetch_errors_and_refuses_non_jwts(fed_server: RunningServer, admin: Admin,
                                                                   issuer: ExternalIssuer) -> None:
    from tests.support.certs import manage

    app = federated_app(admin, issuer.issuer, K8S_SUBJECT)
    issuer.metadata_issuer = "https://elsewhere.example.test"
    report = explain(admin, app.client_id, issuer.token(K8S_SUBJECT))
    assert (report["result"], report["failed_check"], report["issuer_fetch_error"]) == (
        "no_match", "keys_unavailable", "metadata_issuer_mismatch")
    assert report["credentials"][0]["result"].startswith("not evaluated: the signing keys")
    resp = manage(fed_server, admin, "POST", f"/applications/{app.client_id}/federated-credentials/test",
                  json={"token": "not-a-jwt"})
    assert resp.status_code == 400
    assert resp.json()["code"] == "not_a_jwt"
    resp = manage(fed_server, admin, "POST", "/applications/00000000-0000-4000-8000-000000000000/"
                  "federated-credentials/test", json={"token": issuer.token(K8S_SUBJECT)})
    assert resp.status_code == 404


def test_reader_cannot_change_or_test_credentials(fed_server: RunningServer, admin: Admin) -> None:
    """Writes and `test` (which makes the server fetch) need Keyless.Admin; Keyless.Reader may list and lint."""
    from tests.support.certs import http_for

    app = admin.app("fed-authz")
    reader = admin.app("fed-reader")
    secret = admin.secret(reader["client_id"])["secret"]
    admin.grant(reader["client_id"], "urn:keyless:management", "Keyless.Reader")
    with http_for(fed_server) as http:
        token = http.post(fed_server.token_endpoint, data={
            "grant_type": "client_credentials", "client_id": reader["client_id"], "client_secret": secret,
            "scope": "urn:keyless:management/.default"}).json()["access_token"]
        base = f"{fed_server.url}/{fed_server.tenant_id}/manage/v1"
        for method, path, body, status in (
            ("POST", f"/applications/{app['client_id']}/federated-credentials",
             {"name": "x", "issuer": "https://issuer.example.test", "subject": "s"}, 403),
            ("POST", f"/applications/{app['client_id']}/federated-credentials/test", {"token": "a.b.c"}, 403),
            ("POST", f"/applications/{app['client_id']}/identity-token-audiences", {"audience": "api://x"}, 403),
            ("GET", f"/applications/{app['client_id']}/federated-credentials", None, 200),
            ("GET", "/federated-credentials/lint", None, 200),
        ):
            resp = http.request(method, base + path, json=body, headers={"Authorization": f"Bearer {token}"})
            assert resp.status_code == status, (method, path, resp.text)
            anonymous = http.request(method, base + path, json=body)
            assert anonymous.status_code == 401, (method, path)
