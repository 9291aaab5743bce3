"""ManagedIdentityCredential's configuration and its behaviour with no agent (the real agent is in
tests/integration/client/test_managed_identity_live.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from keyless.client import CredentialUnavailableError, ManagedIdentityCredential
from keyless.client.aio import ManagedIdentityCredential as AsyncManagedIdentityCredential
from keyless.client.managed import IdentitySelector, managed_identity_request, scope_to_resource
from tests.support.server import free_port


@pytest.mark.parametrize("endpoint", ["http://169.254.169.254", "http://10.0.0.1:50342", "ftp://127.0.0.1:1",
                                      "http://127.0.0.1.evil.example:80", "http://localhost.example"])
def test_only_a_loopback_agent_is_asked(endpoint: str) -> None:
    with pytest.raises(ValueError, match="must be the local agent"):
        ManagedIdentityCredential(endpoint=endpoint)


def test_the_request_azure_clients_send() -> None:
    request = managed_identity_request("http://127.0.0.1:50342", scope_to_resource(["api://orders/.default"]),
                                       IdentitySelector(client_id="c-1"))
    assert request.method == "GET" and request.headers["Metadata"] == "true"
    assert request.url == ("http://127.0.0.1:50342/metadata/identity/oauth2/token?api-version=2018-02-01"
                           "&resource=api%3A%2F%2Forders&client_id=c-1")
    with pytest.raises(ValueError):
        IdentitySelector(client_id="a", object_id="b")
    with pytest.raises(ValueError):
        scope_to_resource(["a/.default", "b/.default"])


def test_no_agent_is_unavailable_at_once_and_never_remembered(tmp_path: Path) -> None:
    cred = ManagedIdentityCredential(socket_path=tmp_path / "none.sock", endpoint=f"http://127.0.0.1:{free_port()}")
    with cred:
        for _ in range(2):  # asked again each time: "unavailable" is not cached
            started = time.monotonic()
            with pytest.raises(CredentialUnavailableError, match="no managed identity endpoint"):
                cred.get_token("api://orders/.default")
            assert time.monotonic() - started < 2


async def test_no_agent_async(tmp_path: Path) -> None:
    async with AsyncManagedIdentityCredential(socket_path=tmp_path / "none.sock",
                                              endpoint=f"http://127.0.0.1:{free_port()}") as cred:
        with pytest.raises(CredentialUnavailableError):
            await cred.get_token("api://orders/.default")
