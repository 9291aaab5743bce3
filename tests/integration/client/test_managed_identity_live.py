"""keyless.client's ManagedIdentityCredential against a real agent enrolled on a real server: over the
agent's TCP endpoint and its Unix socket, sync and async — and the managed-identity story end to end:
an unmodified Key Vault client reads a secret with nothing but the host's identity."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.keyvault.secrets import SecretClient

from keyless.client import ManagedIdentityCredential, OAuthError
from keyless.client.aio import ManagedIdentityCredential as AsyncManagedIdentityCredential
from keyless.verify import TokenValidator
from tests.support.agent import RunningAgent, host_with_resource, start_agent, stop_agent
from tests.support.server import Admin, RunningServer
from tests.support.vault import grant, new_vault, resolve_localhost_names


@pytest.fixture(scope="module")
def enrolled(sqlite_server: RunningServer, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[tuple[RunningAgent, str]]:
    host, uri = host_with_resource(sqlite_server)
    agent = start_agent(sqlite_server, tmp_path_factory.mktemp("mi-agent"), join_token=host["join_token"], host=host)
    try:
        yield agent, uri
    finally:
        stop_agent(agent)


def _check(server: RunningServer, token: str, uri: str, agent: RunningAgent) -> None:
    validator = TokenValidator(issuer=server.issuer, audience=uri, algorithms=["RS256"], ca=server.ca)
    try:
        claims = validator.validate(token).claims
    finally:
        validator.close()
    identity = agent.host["system_identity"]
    assert claims["appid"] == identity["client_id"] and claims["xms_mirid"] == identity["resource_id"]


def test_over_the_agents_tcp_endpoint(sqlite_server: RunningServer, enrolled: tuple[RunningAgent, str],
                                      tmp_path: Path) -> None:
    agent, uri = enrolled
    with ManagedIdentityCredential(socket_path=tmp_path / "absent.sock", endpoint=agent.url) as cred:
        token = cred.get_token(f"{uri}/.default")
        assert cred.get_token(f"{uri}/.default").token == token.token  # cached
    _check(sqlite_server, token.token, uri, agent)


def test_over_the_agents_socket(sqlite_server: RunningServer, enrolled: tuple[RunningAgent, str]) -> None:
    agent, uri = enrolled
    # The endpoint points nowhere: only the socket can answer.
    with ManagedIdentityCredential(socket_path=agent.socket, endpoint="http://127.0.0.1:9") as cred:
        _check(sqlite_server, cred.get_token(f"{uri}/.default").token, uri, agent)


async def test_async(sqlite_server: RunningServer, enrolled: tuple[RunningAgent, str]) -> None:
    agent, uri = enrolled
    async with AsyncManagedIdentityCredential(socket_path=agent.socket) as cred:
        token = await cred.get_token(f"{uri}/.default")
    _check(sqlite_server, token.token, uri, agent)


def test_an_identity_the_host_does_not_have_is_refused(enrolled: tuple[RunningAgent, str], tmp_path: Path) -> None:
    agent, uri = enrolled
    with ManagedIdentityCredential(client_id=str(uuid.uuid4()), socket_path=tmp_path / "absent.sock",
                                   endpoint=agent.url) as cred, pytest.raises(OAuthError) as caught:
        cred.get_token(f"{uri}/.default")
    assert caught.value.error == "invalid_request"


def test_a_vault_secret_read_with_nothing_but_the_hosts_identity(
        sqlite_server: RunningServer, enrolled: tuple[RunningAgent, str], monkeypatch: pytest.MonkeyPatch) -> None:
    resolve_localhost_names(monkeypatch)
    agent, _ = enrolled
    identity = agent.host["system_identity"]
    with Admin(sqlite_server) as admin:
        vault = new_vault(admin)
        admin.api.call("PUT", f"/vaults/{vault}/secrets/db-password", json_body={"value": "from-the-vault"})
        grant(admin, vault, identity["client_id"], ("Secrets.Get",), secret="db-password")
    with ManagedIdentityCredential(socket_path=agent.socket) as cred, \
            SecretClient(f"https://{vault}.vault.localhost:{sqlite_server.vault_port}", cred,
                         connection_verify=sqlite_server.ca) as client:
        assert client.get_secret("db-password").value == "from-the-vault"
