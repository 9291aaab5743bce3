"""Unmodified azure-identity credentials against a real Keyless server (compat §0, §2.1, §3.2).

Only configuration changes: `authority` (or AZURE_AUTHORITY_HOST), `disable_instance_discovery=True`
and the private CA through `connection_verify`.
"""

from __future__ import annotations

import time

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientSecretCredential, EnvironmentCredential
from azure.identity.aio import ClientSecretCredential as AsyncClientSecretCredential

from keyless.verify import TokenValidator
from tests.support.server import Admin, RunningServer

ROLE = "Data.Read"



def _assert_valid(server: RunningServer, token: str, audience: str, client_id: str) -> None:
    validator = TokenValidator(issuer=server.issuer, audience=audience, algorithms=["RS256"], ca=server.ca)
    try:
        claims = validator.validate(token).claims
    finally:
        validator._http.close()
    assert claims["aud"] == audience
    assert ROLE in claims["roles"]
    assert claims["appid"] == claims["azp"] == claims["client_id"] == client_id
    assert claims["tid"] == server.tenant_id
    assert claims["idtyp"] == "app"


def _wrong(secret: str) -> str:
    return secret[:-4] + ("AAAA" if not secret.endswith("AAAA") else "BBBB")


def _credential(server: RunningServer, client_id: str, secret: str) -> ClientSecretCredential:
    return ClientSecretCredential(
        server.tenant_id, client_id, secret, authority=server.url, disable_instance_discovery=True,
        connection_verify=server.ca,
    )


def test_client_secret_credential_sync(server: RunningServer, admin: Admin, resource_uri: str) -> None:
    client, secret = admin.client_with_role(resource_uri, ROLE)
    with _credential(server, client["client_id"], secret) as cred:
        before = time.time()
        token = cred.get_token(f"{resource_uri}/.default")
        _assert_valid(server, token.token, resource_uri, client["client_id"])
        # expires_in (3600) is mandatory for azure-identity and drives expires_on.
        assert before + 3500 <= token.expires_on <= time.time() + 3700
        # Served from MSAL's cache the second time.
        assert cred.get_token(f"{resource_uri}/.default").token == token.token


async def test_client_secret_credential_async(server: RunningServer, admin: Admin, resource_uri: str) -> None:
    client, secret = admin.client_with_role(resource_uri, ROLE)
    async with AsyncClientSecretCredential(
        server.tenant_id, client["client_id"], secret, authority=server.url, disable_instance_discovery=True,
        connection_verify=server.ca,
    ) as cred:
        token = await cred.get_token(f"{resource_uri}/.default")
        again = await cred.get_token(f"{resource_uri}/.default")
    _assert_valid(server, token.token, resource_uri, client["client_id"])
    assert again.token == token.token
    assert token.expires_on > time.time() + 3500


def test_wrong_secret_sync_raises_client_authentication_error(
    sqlite_server: RunningServer, resource_uri: str
) -> None:
    admin = Admin(sqlite_server)
    try:
        client, secret = admin.client_with_role(resource_uri, ROLE)
    finally:
        admin.api.http.close()
    wrong = _wrong(secret)
    with _credential(sqlite_server, client["client_id"], wrong) as cred, \
            pytest.raises(ClientAuthenticationError) as caught:
        cred.get_token(f"{resource_uri}/.default")
    message = str(caught.value)
    assert "client authentication failed (invalid_client)" in message
    assert wrong not in message and secret not in message


def test_wrong_secret_sync_message_mentions_invalid_client(sqlite_server: RunningServer, resource_uri: str) -> None:
    admin = Admin(sqlite_server)
    try:
        client, secret = admin.client_with_role(resource_uri, ROLE)
    finally:
        admin.api.http.close()
    with _credential(sqlite_server, client["client_id"], _wrong(secret)) as cred, \
            pytest.raises(ClientAuthenticationError) as caught:
        cred.get_token(f"{resource_uri}/.default")
    assert "invalid_client" in str(caught.value)


async def test_wrong_secret_async_raises_client_authentication_error(
    sqlite_server: RunningServer, resource_uri: str
) -> None:
    admin = Admin(sqlite_server)
    try:
        client, secret = admin.client_with_role(resource_uri, ROLE)
    finally:
        admin.api.http.close()
    wrong = _wrong(secret)
    async with AsyncClientSecretCredential(
        sqlite_server.tenant_id, client["client_id"], wrong, authority=sqlite_server.url,
        disable_instance_discovery=True, connection_verify=sqlite_server.ca,
    ) as cred:
        with pytest.raises(ClientAuthenticationError) as caught:
            await cred.get_token(f"{resource_uri}/.default")
    message = str(caught.value)
    assert "invalid_client" in message
    assert wrong not in message and secret not in message


def test_environment_credential(
    server: RunningServer, admin: Admin, resource_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, secret = admin.client_with_role(resource_uri, ROLE)
    monkeypatch.setenv("AZURE_TENANT_ID", server.tenant_id)
    monkeypatch.setenv("AZURE_CLIENT_ID", client["client_id"])
    monkeypatch.setenv("AZURE_CLIENT_SECRET", secret)
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", server.url)
    with EnvironmentCredential(disable_instance_discovery=True, connection_verify=server.ca) as cred:
        token = cred.get_token(f"{resource_uri}/.default")
    _assert_valid(server, token.token, resource_uri, client["client_id"])


def test_environment_credential_by_tenant_name(
    sqlite_server: RunningServer, resource_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = Admin(sqlite_server)
    try:
        client, secret = admin.client_with_role(resource_uri, ROLE)
    finally:
        admin.api.http.close()
    monkeypatch.setenv("AZURE_TENANT_ID", "default")
    monkeypatch.setenv("AZURE_CLIENT_ID", client["client_id"])
    monkeypatch.setenv("AZURE_CLIENT_SECRET", secret)
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", sqlite_server.url)
    with EnvironmentCredential(disable_instance_discovery=True, connection_verify=sqlite_server.ca) as cred:
        token = cred.get_token(f"{resource_uri}/.default")
    _assert_valid(sqlite_server, token.token, resource_uri, client["client_id"])
