"""Unmodified azure-identity workload identity against a real Keyless server and a real external issuer
(compat §2.3, §3.4): `WorkloadIdentityCredential` from environment variables alone (plus a CA bundle),
the same through `ManagedIdentityCredential` and `DefaultAzureCredential`, and `ClientAssertionCredential`
with a callback. The token file holds a Kubernetes-shaped service-account token from the loopback issuer.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import (
    ClientAssertionCredential,
    DefaultAzureCredential,
    ManagedIdentityCredential,
    WorkloadIdentityCredential,
)
from azure.identity.aio import WorkloadIdentityCredential as AsyncWorkloadIdentityCredential

from keyless.verify import TokenValidator
from tests.support.issuer import ExternalIssuer, FederatedApp, federated_app
from tests.support.server import Admin, RunningServer

SUBJECT = "system:serviceaccount:prod:orders"


@pytest.fixture
def world(fed_server: RunningServer, issuer: ExternalIssuer) -> FederatedApp:
    with Admin(fed_server) as admin:
        return federated_app(admin, issuer.issuer, SUBJECT, audiences=["api://AzureADTokenExchange"])


@pytest.fixture
def token_file(tmp_path: Path, issuer: ExternalIssuer) -> Path:
    path = tmp_path / "azure-identity-token"
    path.write_text(issuer.token(SUBJECT, aud=["api://AzureADTokenExchange"]))
    return path


@pytest.fixture
def workload_env(monkeypatch: pytest.MonkeyPatch, fed_server: RunningServer, world: FederatedApp,
                 token_file: Path) -> None:
    """What the AKS workload-identity webhook injects, pointed at Keyless, plus the CA bundle."""
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AZURE_CLIENT_ID", world.client_id)
    monkeypatch.setenv("AZURE_TENANT_ID", fed_server.tenant_id)
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", fed_server.url)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", fed_server.ca)
    monkeypatch.setenv("SSL_CERT_FILE", fed_server.ca)


def _assert_token(server: RunningServer, world: FederatedApp, token: str) -> None:
    validator = TokenValidator(issuer=server.issuer, audience=world.resource, algorithms=["RS256"], ca=server.ca)
    try:
        claims = validator.validate(token).claims
    finally:
        validator.close()
    assert claims["sub"] == world.object_id
    assert claims["appid"] == world.client_id
    assert claims["azpacr"] == "2"
    assert claims["roles"] == ["Data.Read"]


@pytest.mark.usefixtures("workload_env")
def test_workload_identity_credential_from_environment_only(fed_server: RunningServer, world: FederatedApp) -> None:
    cred = WorkloadIdentityCredential()
    try:
        first = cred.get_token(world.scope)
    finally:
        cred.close()
    _assert_token(fed_server, world, first.token)


@pytest.mark.usefixtures("workload_env")
def test_the_same_token_file_serves_several_credentials(fed_server: RunningServer, world: FederatedApp) -> None:
    """The default replay rule lets the one projected token be exchanged again (Kubernetes hands a pod
    one token for many exchanges); each credential below has its own cache, so each one exchanges."""
    for make in (WorkloadIdentityCredential, ManagedIdentityCredential, DefaultAzureCredential):
        cred = make()
        try:
            _assert_token(fed_server, world, cred.get_token(world.scope).token)
        finally:
            cred.close()


@pytest.mark.usefixtures("workload_env")
async def test_async_workload_identity_credential(fed_server: RunningServer, world: FederatedApp) -> None:
    # aiohttp reads SSL_CERT_FILE once per process, and each backend's server has its own CA: name it.
    async with AsyncWorkloadIdentityCredential(connection_verify=fed_server.ca) as cred:
        token = await cred.get_token(world.scope)
    _assert_token(fed_server, world, token.token)


def test_client_assertion_credential_calls_back_for_each_token(fed_server: RunningServer, world: FederatedApp,
                                                               issuer: ExternalIssuer) -> None:
    calls: list[str] = []

    def assertion() -> str:
        calls.append("called")
        return issuer.token(SUBJECT, aud="api://AzureADTokenExchange")

    cred = ClientAssertionCredential(fed_server.tenant_id, world.client_id, assertion, authority=fed_server.url,
                                     connection_verify=fed_server.ca)
    try:
        token = cred.get_token(world.scope)
    finally:
        cred.close()
    _assert_token(fed_server, world, token.token)
    assert calls == ["called"]


def test_subject_mismatch_reaches_the_user_with_its_reason(fed_server: RunningServer, world: FederatedApp,
                                                           issuer: ExternalIssuer) -> None:
    def assertion() -> str:
        return issuer.token("system:serviceaccount:prod:billing", aud="api://AzureADTokenExchange")

    # `Connection: close`: pytest keeps the logged error (and with it the HTTP response) until the
    # test ends; a kept-alive connection would make the shared server's graceful shutdown wait for it.
    cred = ClientAssertionCredential(fed_server.tenant_id, world.client_id, assertion, authority=fed_server.url,
                                     connection_verify=fed_server.ca, headers={"Connection": "close"})
    try:
        with pytest.raises(ClientAuthenticationError) as info:
            cred.get_token(world.scope)
    finally:
        cred.close()
    message = str(info.value)
    assert "the token's subject matches no federated credential for its issuer" in message
