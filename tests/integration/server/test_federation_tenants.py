"""Keyless as an issuer others federate with: tenant A gives an application an identity token, and a
second Keyless deployment (tenant B, its own server) trusts tenant A through a federated credential.
Both sides use unmodified azure-identity: `ClientSecretCredential` on A asks for the identity token,
`ClientAssertionCredential` on B hands it over as the client assertion."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from azure.identity import ClientAssertionCredential, ClientSecretCredential

from keyless.verify import TokenValidator
from keyless.verify.claims import InvalidToken
from tests.conftest import SHARED_ENV
from tests.security.support import jwt_claims, jwt_header
from tests.support.issuer import exchange, federated_app
from tests.support.server import Admin, RunningServer, start_server, stop_server

EXCHANGE = "api://KeylessTokenExchange"


@pytest.fixture(scope="module")
def tenant_a(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    srv = start_server(tmp_path_factory.mktemp("tenant-a"), env=SHARED_ENV)
    try:
        yield srv
    finally:
        stop_server(srv)


@pytest.fixture(scope="module")
def tenant_b(tmp_path_factory: pytest.TempPathFactory, tenant_a: RunningServer) -> Iterator[RunningServer]:
    """Another deployment that trusts A's TLS CA for issuer fetches (A runs on loopback)."""
    env = {**SHARED_ENV, "KEYLESS_FEDERATION_CA_BUNDLE": tenant_a.ca,
           "KEYLESS_ALLOW_PRIVATE_ISSUERS": '["127.0.0.1"]'}
    srv = start_server(tmp_path_factory.mktemp("tenant-b"), env=env, signing_alg="ES256")
    try:
        yield srv
    finally:
        stop_server(srv)


@pytest.fixture(scope="module")
def workload(tenant_a: RunningServer) -> dict[str, Any]:
    """An application of tenant A allowed identity tokens for the exchange audience, with a secret."""
    with Admin(tenant_a) as admin:
        app = admin.app(f"workload-{uuid.uuid4().hex[:6]}")
        secret = admin.secret(app["client_id"])["secret"]
        admin.api.call("POST", f"/applications/{app['client_id']}/identity-token-audiences",
                       json_body={"audience": EXCHANGE})
    return {**app, "secret": secret}


def _credential_a(tenant_a: RunningServer, workload: dict[str, Any]) -> ClientSecretCredential:
    return ClientSecretCredential(tenant_a.tenant_id, workload["client_id"], workload["secret"],
                                  authority=tenant_a.url, disable_instance_discovery=True,
                                  connection_verify=tenant_a.ca)


def test_identity_token_shape(tenant_a: RunningServer, workload: dict[str, Any]) -> None:
    with _credential_a(tenant_a, workload) as cred:
        token = cred.get_token(f"{EXCHANGE}/.default").token
    header, claims = jwt_header(token), jwt_claims(token)
    assert header["typ"] == "JWT"
    assert claims["iss"] == tenant_a.issuer
    assert claims["sub"] == claims["oid"] == workload["object_id"]
    assert claims["aud"] == EXCHANGE
    assert claims["exp"] - claims["iat"] == 600
    assert "roles" not in claims
    # Not an access token: a Keyless resource server refuses it whatever its audience.
    validator = TokenValidator(issuer=tenant_a.issuer, audience=EXCHANGE, algorithms=["RS256"], ca=tenant_a.ca)
    try:
        with pytest.raises(InvalidToken):
            validator.validate(token)
    finally:
        validator.close()


def test_audience_not_on_the_allowlist_is_refused(tenant_a: RunningServer, workload: dict[str, Any]) -> None:
    with tenant_a.http() as http:
        resp = http.post(tenant_a.token_endpoint, data={
            "grant_type": "client_credentials", "client_id": workload["client_id"], "client_secret": workload["secret"],
            "scope": "api://AzureADTokenExchange/.default"})
    assert resp.status_code == 400
    assert resp.json() == {"error": "invalid_scope",
                           "error_description": "the requested resource is not registered in this tenant"}


def test_a_second_keyless_tenant_trusts_the_first(tenant_a: RunningServer, tenant_b: RunningServer,
                                                  workload: dict[str, Any]) -> None:
    with Admin(tenant_b) as admin_b:
        target = federated_app(admin_b, tenant_a.issuer, workload["object_id"])
    cred_a = _credential_a(tenant_a, workload)
    cred_b = ClientAssertionCredential(
        tenant_b.tenant_id, target.client_id, lambda: cred_a.get_token(f"{EXCHANGE}/.default").token,
        authority=tenant_b.url, connection_verify=tenant_b.ca)
    try:
        token = cred_b.get_token(target.scope).token
    finally:
        cred_b.close()
        cred_a.close()
    validator = TokenValidator(issuer=tenant_b.issuer, audience=target.resource, algorithms=["ES256"],
                               ca=tenant_b.ca)
    try:
        claims = validator.validate(token).claims
    finally:
        validator.close()
    assert claims["sub"] == target.object_id
    assert claims["azpacr"] == "2"
    assert claims["roles"] == ["Data.Read"]


def test_another_application_of_tenant_a_is_not_trusted(tenant_a: RunningServer, tenant_b: RunningServer,
                                                        workload: dict[str, Any]) -> None:
    with Admin(tenant_a) as admin_a:
        other = admin_a.app(f"other-{uuid.uuid4().hex[:6]}")
        other_secret = admin_a.secret(other["client_id"])["secret"]
        admin_a.api.call("POST", f"/applications/{other['client_id']}/identity-token-audiences",
                         json_body={"audience": EXCHANGE})
    with Admin(tenant_b) as admin_b:
        target = federated_app(admin_b, tenant_a.issuer, workload["object_id"])
    with tenant_a.http() as http:
        resp = http.post(tenant_a.token_endpoint, data={
            "grant_type": "client_credentials", "client_id": other["client_id"], "client_secret": other_secret,
            "scope": f"{EXCHANGE}/.default"})
    assert resp.status_code == 200
    refused = exchange(tenant_b, target.client_id, resp.json()["access_token"], target.scope)
    assert refused.status_code == 401
    assert refused.json()["error_description"] == "the token's subject matches no federated credential for its issuer"
