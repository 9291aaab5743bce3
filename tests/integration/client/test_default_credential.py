"""DefaultCredential against a real server: configured by Azure's environment variables only; a
configured link that is refused stops the chain with that error."""

from __future__ import annotations

from pathlib import Path

import pytest

from keyless.client import DefaultCredential, OAuthError
from keyless.verify import TokenValidator
from tests.integration.client.conftest import secret_app
from tests.support.server import RunningServer, free_port

AZURE = ("AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_POD_IDENTITY_AUTHORITY_HOST")


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sqlite_server: RunningServer) -> pytest.MonkeyPatch:
    for name in AZURE:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KEYLESS_AGENT_SOCKET", str(tmp_path / "no-agent.sock"))
    monkeypatch.setenv("KEYLESS_AGENT_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AZURE_TENANT_ID", sqlite_server.tenant_id)
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", sqlite_server.url)
    monkeypatch.setenv("KEYLESS_CA", sqlite_server.ca)
    return monkeypatch


def test_environment_link(env: pytest.MonkeyPatch, sqlite_server: RunningServer) -> None:
    app = secret_app(sqlite_server)
    env.setenv("AZURE_CLIENT_ID", app.client_id)
    env.setenv("AZURE_CLIENT_SECRET", app.secret or "")
    with DefaultCredential() as cred:
        token = cred.get_token(app.scope).token
    validator = TokenValidator(issuer=sqlite_server.issuer, audience=app.resource, algorithms=["RS256"],
                               ca=sqlite_server.ca)
    try:
        assert validator.validate(token).claims["appid"] == app.client_id
    finally:
        validator.close()


def test_a_refused_configured_link_ends_the_chain(env: pytest.MonkeyPatch, sqlite_server: RunningServer) -> None:
    app = secret_app(sqlite_server)
    env.setenv("AZURE_CLIENT_ID", app.client_id)
    env.setenv("AZURE_CLIENT_SECRET", "kls_wrong")
    with DefaultCredential() as cred, pytest.raises(OAuthError) as caught:
        cred.get_token(app.scope)
    assert caught.value.error == "invalid_client"
