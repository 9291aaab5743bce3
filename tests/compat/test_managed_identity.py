"""Unmodified azure-identity and msal managed-identity clients against a real Keyless agent
(compat §4): IMDS style (`AZURE_POD_IDENTITY_AUTHORITY_HOST`), App Service style
(`IDENTITY_ENDPOINT` + `IDENTITY_HEADER`), sync and async, `DefaultAzureCredential` from the
environment alone, and `msal.ManagedIdentityClient`. Only environment variables change."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msal
import pytest
import requests
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential
from azure.identity.aio import DefaultAzureCredential as AsyncDefaultAzureCredential
from azure.identity.aio import ManagedIdentityCredential as AsyncManagedIdentityCredential

from keyless.verify import TokenValidator
from tests.support.agent import RunningAgent, assigned_identity, host_with_resource, start_agent, stop_agent
from tests.support.server import Admin, RunningServer


@pytest.fixture(scope="module")
def mi(sqlite_server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """An enrolled agent; its system identity and an (unbound) user-assigned identity may read the resource."""
    host, uri = host_with_resource(sqlite_server)
    with Admin(sqlite_server) as admin:
        user = assigned_identity(admin, host, uri, prefix="compat")
        bound = assigned_identity(admin, host, uri, prefix="bound")
        admin.api.call("POST", f"/identities/{bound['client_id']}/bindings",
                       json_body={"host": host["id"], "uid": os.getuid()})
    agent = start_agent(sqlite_server, tmp_path_factory.mktemp("compat-agent"), join_token=host["join_token"],
                        host=host)
    try:
        yield {"agent": agent, "uri": uri, "system": host["system_identity"], "user": user, "bound": bound}
    finally:
        stop_agent(agent)


def _check(server: RunningServer, token: str, uri: str, identity: dict[str, Any]) -> None:
    validator = TokenValidator(issuer=server.issuer, audience=uri, algorithms=["RS256"], ca=server.ca)
    try:
        claims = validator.validate(token).claims
    finally:
        validator._http.close()
    assert claims["oid"] == identity["object_id"]
    assert claims["xms_mirid"] == identity["resource_id"]
    assert claims["azpacr"] == "2"
    assert claims["roles"] == ["Orders.Read"]


def _imds_env(monkeypatch: pytest.MonkeyPatch, agent: RunningAgent) -> None:
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", agent.url)


def _app_service_env(monkeypatch: pytest.MonkeyPatch, agent: RunningAgent) -> None:
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"{agent.url}/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", agent.identity_header())


def test_sync_imds_system_assigned(mi: dict[str, Any], sqlite_server: RunningServer,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _imds_env(monkeypatch, mi["agent"])
    cred = ManagedIdentityCredential()
    token = cred.get_token(f"{mi['uri']}/.default")
    _check(sqlite_server, token.token, mi["uri"], mi["system"])
    assert token.expires_on > 3000


def test_sync_imds_user_assigned_by_client_id(mi: dict[str, Any], sqlite_server: RunningServer,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    _imds_env(monkeypatch, mi["agent"])
    token = ManagedIdentityCredential(client_id=mi["user"]["client_id"]).get_token(f"{mi['uri']}/.default")
    _check(sqlite_server, token.token, mi["uri"], mi["user"])


def test_sync_imds_user_assigned_by_resource_id(mi: dict[str, Any], sqlite_server: RunningServer,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _imds_env(monkeypatch, mi["agent"])
    cred = ManagedIdentityCredential(identity_config={"resource_id": mi["user"]["resource_id"]})
    _check(sqlite_server, cred.get_token(f"{mi['uri']}/.default").token, mi["uri"], mi["user"])


async def test_async_imds(mi: dict[str, Any], sqlite_server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    _imds_env(monkeypatch, mi["agent"])
    async with AsyncManagedIdentityCredential() as cred:
        token = await cred.get_token(f"{mi['uri']}/.default")
    _check(sqlite_server, token.token, mi["uri"], mi["system"])
    async with AsyncManagedIdentityCredential(identity_config={"resource_id": mi["user"]["resource_id"]}) as cred:
        token = await cred.get_token(f"{mi['uri']}/.default")
    _check(sqlite_server, token.token, mi["uri"], mi["user"])


def test_sync_app_service(mi: dict[str, Any], sqlite_server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    _app_service_env(monkeypatch, mi["agent"])
    token = ManagedIdentityCredential().get_token(f"{mi['uri']}/.default")
    _check(sqlite_server, token.token, mi["uri"], mi["system"])
    cred = ManagedIdentityCredential(identity_config={"resource_id": mi["user"]["resource_id"]})
    _check(sqlite_server, cred.get_token(f"{mi['uri']}/.default").token, mi["uri"], mi["user"])


async def test_async_app_service(mi: dict[str, Any], sqlite_server: RunningServer,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    _app_service_env(monkeypatch, mi["agent"])
    async with AsyncManagedIdentityCredential(client_id=mi["user"]["client_id"]) as cred:
        token = await cred.get_token(f"{mi['uri']}/.default")
    _check(sqlite_server, token.token, mi["uri"], mi["user"])


def test_identity_bound_to_this_user_over_tcp(mi: dict[str, Any], sqlite_server: RunningServer,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A uid binding holds on TCP: the agent reads the client socket's owner from the kernel."""
    _imds_env(monkeypatch, mi["agent"])
    token = ManagedIdentityCredential(client_id=mi["bound"]["client_id"]).get_token(f"{mi['uri']}/.default")
    _check(sqlite_server, token.token, mi["uri"], mi["bound"])


def test_app_service_wrong_header_is_refused(mi: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from azure.core.exceptions import ClientAuthenticationError

    _app_service_env(monkeypatch, mi["agent"])
    monkeypatch.setenv("IDENTITY_HEADER", "not-the-secret-" + "x" * 30)
    with pytest.raises(ClientAuthenticationError):
        ManagedIdentityCredential().get_token(f"{mi['uri']}/.default")


@pytest.mark.parametrize("style", ["imds", "app_service"])
def test_default_azure_credential_from_environment_only(style: str, mi: dict[str, Any], sqlite_server: RunningServer,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    (_imds_env if style == "imds" else _app_service_env)(monkeypatch, mi["agent"])
    token = DefaultAzureCredential().get_token(f"{mi['uri']}/.default")
    _check(sqlite_server, token.token, mi["uri"], mi["system"])


async def test_async_default_azure_credential(mi: dict[str, Any], sqlite_server: RunningServer,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    _imds_env(monkeypatch, mi["agent"])
    monkeypatch.setenv("AZURE_CLIENT_ID", mi["user"]["client_id"])  # DAC's managed identity client id
    async with AsyncDefaultAzureCredential() as cred:
        token = await cred.get_token(f"{mi['uri']}/.default")
    _check(sqlite_server, token.token, mi["uri"], mi["user"])


@pytest.mark.parametrize("style", ["imds", "app_service"])
def test_msal_managed_identity_client(style: str, mi: dict[str, Any], sqlite_server: RunningServer,
                                      monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (_imds_env if style == "imds" else _app_service_env)(monkeypatch, mi["agent"])
    with requests.Session() as http:
        client = msal.ManagedIdentityClient(msal.SystemAssignedManagedIdentity(), http_client=http)
        result = client.acquire_token_for_client(resource=mi["uri"])
        assert "access_token" in result, result
        _check(sqlite_server, result["access_token"], mi["uri"], mi["system"])
        assert client.acquire_token_for_client(resource=mi["uri"])["token_source"] == "cache"
        user = msal.ManagedIdentityClient(msal.UserAssignedManagedIdentity(resource_id=mi["user"]["resource_id"]),
                                          http_client=http)
        result = user.acquire_token_for_client(resource=mi["uri"])
        assert "access_token" in result, result
        _check(sqlite_server, result["access_token"], mi["uri"], mi["user"])
