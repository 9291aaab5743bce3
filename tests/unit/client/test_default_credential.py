"""DefaultCredential's chain when nothing is set up, and what it says about each link."""

from __future__ import annotations

from pathlib import Path

import pytest

from keyless.client import AsyncDefaultCredential, CredentialUnavailableError, DefaultCredential
from tests.support.server import free_port

AZURE = ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_AUTHORITY_HOST", "AZURE_CLIENT_SECRET",
         "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_POD_IDENTITY_AUTHORITY_HOST",
         "KEYLESS_CA", "KEYLESS_AGENT_ENDPOINT", "KEYLESS_AGENT_SOCKET")


@pytest.fixture(autouse=True)
def no_agent(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in AZURE:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KEYLESS_AGENT_SOCKET", str(tmp_path / "no-agent.sock"))
    monkeypatch.setenv("KEYLESS_AGENT_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("KEYLESS_DEVELOPER_PROFILE", str(tmp_path / "no-profile" / "developer.json"))


def test_nothing_set_up_names_every_link() -> None:
    with DefaultCredential() as cred, pytest.raises(CredentialUnavailableError) as caught:
        cred.get_token("api://orders/.default")
    message = str(caught.value)
    assert message.startswith("DefaultCredential found no usable credential: ")
    assert "environment: AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH is not set" in message
    assert "workload identity: AZURE_FEDERATED_TOKEN_FILE is not set" in message
    assert "managed identity: no managed identity endpoint at http://127.0.0.1:" in message
    assert "developer login: no developer profile at " in message and "(keyless login APP makes one)" in message


def test_a_broken_developer_profile_is_reported(tmp_path: Path) -> None:
    import os

    Path(os.environ["KEYLESS_DEVELOPER_PROFILE"]).parent.mkdir()
    Path(os.environ["KEYLESS_DEVELOPER_PROFILE"]).write_text("{not json")
    with DefaultCredential() as cred, pytest.raises(CredentialUnavailableError, match="developer login: set up but "
                                                                                       "unusable: "):
        cred.get_token("api://orders/.default")


def test_half_configured_environment_says_what_is_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "kls_not_used")
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(tmp_path / "token"))
    with DefaultCredential() as cred, pytest.raises(CredentialUnavailableError) as caught:
        cred.get_token("api://orders/.default")
    message = str(caught.value)
    assert "environment: needs AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_AUTHORITY_HOST" in message
    assert "workload identity: set up but unusable: workload identity needs tenant_id" in message
    assert "kls_not_used" not in message and "kls_not_used" not in repr(cred)


async def test_async_chain_reports_the_same() -> None:
    async with AsyncDefaultCredential() as cred:
        with pytest.raises(CredentialUnavailableError, match="managed identity: no managed identity endpoint"):
            await cred.get_token("api://orders/.default")
