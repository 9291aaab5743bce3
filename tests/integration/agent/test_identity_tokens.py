"""Outbound identity tokens through the host agent: a real agent hands a local workload a token signed
by its tenant (A) for an audience on the identity's allowlist, and a second Keyless deployment (B)
accepts it through a federated credential. The agent applies the same identity checks as for access
tokens (entitlement, workload bindings) and never relays an access token as an identity token."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.identity import ClientAssertionCredential, ManagedIdentityCredential

from tests.conftest import SHARED_ENV
from tests.integration.agent.conftest import claims_of
from tests.security.support import jwt_header
from tests.support.agent import RunningAgent, host_with_resource, start_agent, stop_agent
from tests.support.issuer import exchange, federated_app
from tests.support.server import Admin, RunningServer, start_server, stop_server

EXCHANGE = "api://KeylessTokenExchange"
PATH = "/metadata/identity/oauth2/identitytoken"


@pytest.fixture(scope="module")
def tenant_b(tmp_path_factory: pytest.TempPathFactory, sqlite_server: RunningServer) -> Iterator[RunningServer]:
    """Another deployment that trusts tenant A's TLS CA for issuer fetches (A runs on loopback)."""
    env = {**SHARED_ENV, "KEYLESS_FEDERATION_CA_BUNDLE": sqlite_server.ca,
           "KEYLESS_ALLOW_PRIVATE_ISSUERS": '["127.0.0.1"]'}
    srv = start_server(tmp_path_factory.mktemp("tenant-b"), env=env)
    try:
        yield srv
    finally:
        stop_server(srv)


@pytest.fixture(scope="module")
def setup(sqlite_server: RunningServer, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[RunningAgent, dict[str, Any], str]]:
    """(agent, its user-assigned identity, a resource URI of tenant A the system identity may use).
    The system identity and the user-assigned one may get identity tokens for the exchange audience."""
    host, uri = host_with_resource(sqlite_server)
    with Admin(sqlite_server) as admin:
        identity = dict(admin.api.call("POST", "/identities", json_body={"name": f"out-{uuid.uuid4().hex[:6]}"}))
        admin.api.call("PUT", f"/identities/{identity['client_id']}/hosts/{host['id']}")
        for client_id in (identity["client_id"], host["system_identity"]["client_id"]):
            admin.api.call("POST", f"/identities/{client_id}/identity-token-audiences",
                           json_body={"audience": EXCHANGE})
    agent = start_agent(sqlite_server, tmp_path_factory.mktemp("agent-out"), join_token=host["join_token"],
                        host=host)
    try:
        yield agent, identity, uri
    finally:
        stop_agent(agent)


def _ask(agent: RunningAgent, audience: str, *, metadata: bool = True, **params: str) -> httpx.Response:
    return httpx.get(f"{agent.url}{PATH}", params={"api-version": "2018-02-01", "audience": audience, **params},
                     headers={"Metadata": "true"} if metadata else {}, timeout=10)


def test_identity_token_for_the_system_and_a_user_assigned_identity(
        setup: tuple[RunningAgent, dict[str, Any], str], sqlite_server: RunningServer) -> None:
    agent, identity, _ = setup
    system = agent.host["system_identity"]
    resp = _ask(agent, EXCHANGE)
    assert resp.status_code == 200, resp.text
    assert resp.headers["cache-control"] == "no-store"
    body = resp.json()
    assert set(body) == {"token", "audience", "client_id", "expires_in", "expires_on", "issued_token_type"}
    assert (body["audience"], body["client_id"]) == (EXCHANGE, system["client_id"])
    assert body["issued_token_type"] == "urn:ietf:params:oauth:token-type:id_token"
    assert 0 < body["expires_in"] <= 600
    header, claims = jwt_header(body["token"]), claims_of(body["token"])
    assert header["typ"] == "JWT"
    assert claims["iss"] == sqlite_server.issuer
    assert claims["sub"] == claims["oid"] == system["object_id"]
    assert claims["aud"] == EXCHANGE
    assert claims["xms_mirid"] == system["resource_id"]
    assert claims["exp"] - claims["iat"] == 600
    assert _ask(agent, EXCHANGE).json()["token"] == body["token"]  # cached per (identity, audience)
    user = _ask(agent, EXCHANGE, client_id=identity["client_id"])
    assert user.status_code == 200, user.text
    user_claims = claims_of(user.json()["token"])
    assert user_claims["sub"] == identity["object_id"]
    assert user_claims["xms_mirid"] == identity["resource_id"]
    assert agent.status()["cached_identity_tokens"] >= 2
    # Unmodified IMDS clients asking for the exchange audience as a resource get the same kind of token
    # (as Entra's managed identities do for api://AzureADTokenExchange).
    imds = agent.get(EXCHANGE)
    assert imds.status_code == 200, imds.text
    assert jwt_header(imds.json()["access_token"])["typ"] == "JWT"
    assert claims_of(imds.json()["access_token"])["sub"] == system["object_id"]


def test_refusals(setup: tuple[RunningAgent, dict[str, Any], str]) -> None:
    agent, _, uri = setup
    no_header = _ask(agent, EXCHANGE, metadata=False)
    assert (no_header.status_code, no_header.json()["error_description"]) == (
        400, "Required metadata header not specified")
    not_allowed = _ask(agent, "api://AzureADTokenExchange")
    assert not_allowed.status_code == 400
    assert not_allowed.json() == {"error": "invalid_audience",
                                  "error_description": "the audience is not on this identity's identity-token "
                                                       "allowlist"}
    # a resource of the tenant gets an access token from the server: the agent never relays it as an identity token
    resource = _ask(agent, uri)
    assert (resource.status_code, resource.json()["error"]) == (400, "invalid_audience")
    unknown = _ask(agent, EXCHANGE, client_id=str(uuid.uuid4()))
    assert unknown.json() == {"error": "invalid_request", "error_description": "Identity not found"}
    assert _ask(agent, "not a uri").json()["error"] == "invalid_audience"
    # the endpoint-wide defences hold here too (catalog F02, F06, F11 and the browser check)
    url = f"{agent.url}{PATH}?api-version=2018-02-01&audience={EXCHANGE}"
    assert httpx.post(url, headers={"Metadata": "true"}, timeout=10).status_code == 405
    assert httpx.get(url, headers={"Metadata": "true", "Origin": "http://evil.example"}, timeout=10).status_code == 403
    assert httpx.get(url, headers={"Metadata": "true", "X-Forwarded-For": "10.0.0.1"}, timeout=10).status_code == 400
    repeated = httpx.get(f"{url}&audience={EXCHANGE}", headers={"Metadata": "true"}, timeout=10)
    assert (repeated.status_code, repeated.json()["error_description"]) == (400, "the parameter audience is repeated")


def _holds(status: dict[str, Any], client_id: str, bindings: int) -> bool:
    return client_id in {i["client_id"] for i in status["identities"]} and status["bindings"] >= bindings


def test_workload_bindings_apply(setup: tuple[RunningAgent, dict[str, Any], str],
                                 sqlite_server: RunningServer) -> None:
    agent, _, _ = setup
    bindings_before = agent.status()["bindings"]
    with Admin(sqlite_server) as admin:
        bound = dict(admin.api.call("POST", "/identities", json_body={"name": f"bound-{uuid.uuid4().hex[:6]}"}))
        admin.api.call("PUT", f"/identities/{bound['client_id']}/hosts/{agent.host['id']}")
        admin.api.call("POST", f"/identities/{bound['client_id']}/identity-token-audiences",
                       json_body={"audience": EXCHANGE})
        admin.api.call("POST", f"/identities/{bound['client_id']}/bindings",
                       json_body={"host": agent.host["id"], "uid": os.getuid() + 1})
    # The identity reaches the host before its binding does: a poll may fall between the two calls above,
    # so wait until the agent holds both.
    deadline = time.monotonic() + 10
    while not _holds(agent.status(), bound["client_id"], bindings_before + 1):
        assert time.monotonic() < deadline, "the agent never saw the new identity and its binding"
        time.sleep(0.2)
    refused = _ask(agent, EXCHANGE, client_id=bound["client_id"])
    assert refused.json() == {"error": "invalid_request", "error_description": "Identity not found"}
    with Admin(sqlite_server) as admin:
        admin.api.call("POST", f"/identities/{bound['client_id']}/bindings",
                       json_body={"host": agent.host["id"], "uid": os.getuid()})
    deadline = time.monotonic() + 10
    while (allowed := _ask(agent, EXCHANGE, client_id=bound["client_id"])).status_code != 200:
        assert time.monotonic() < deadline, allowed.text
        time.sleep(0.2)
    assert claims_of(allowed.json()["token"])["sub"] == bound["object_id"]


def test_a_second_keyless_tenant_trusts_the_agents_token(
        setup: tuple[RunningAgent, dict[str, Any], str], sqlite_server: RunningServer,
        tenant_b: RunningServer, tmp_path: Path) -> None:
    agent, identity, _ = setup
    with Admin(tenant_b) as admin_b:
        target = federated_app(admin_b, sqlite_server.issuer, identity["object_id"])
    token = _ask(agent, EXCHANGE, client_id=identity["client_id"]).json()["token"]
    resp = exchange(tenant_b, target.client_id, token, target.scope)
    assert resp.status_code == 200, resp.text
    claims = claims_of(resp.json()["access_token"])
    assert claims["iss"] == tenant_b.issuer
    assert claims["sub"] == target.object_id
    assert claims["azpacr"] == "2"
    # the host's other identity is another subject: tenant B does not take it for this one
    system_token = _ask(agent, EXCHANGE).json()["token"]
    refused = exchange(tenant_b, target.client_id, system_token, target.scope)
    assert refused.status_code == 401
    assert refused.json()["error_description"] == "the token's subject matches no federated credential for its issuer"


def test_unmodified_azure_identity_chains_the_agent_to_tenant_b(
        setup: tuple[RunningAgent, dict[str, Any], str], sqlite_server: RunningServer,
        tenant_b: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Entra's managed-identity-as-federated-credential pattern with unmodified clients: a
    `ManagedIdentityCredential` on the host asks the agent for the exchange audience, and a
    `ClientAssertionCredential` on tenant B hands that token over as its client assertion."""
    agent, identity, _ = setup
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", agent.url)
    with Admin(tenant_b) as admin_b:
        target = federated_app(admin_b, sqlite_server.issuer, identity["object_id"])
    mi = ManagedIdentityCredential(client_id=identity["client_id"])
    cred_b = ClientAssertionCredential(tenant_b.tenant_id, target.client_id,
                                       lambda: mi.get_token(f"{EXCHANGE}/.default").token,
                                       authority=tenant_b.url, connection_verify=tenant_b.ca)
    try:
        token = cred_b.get_token(target.scope).token
    finally:
        cred_b.close()
        mi.close()
    claims = claims_of(token)
    assert (claims["iss"], claims["sub"], claims["roles"]) == (tenant_b.issuer, target.object_id, ["Data.Read"])
