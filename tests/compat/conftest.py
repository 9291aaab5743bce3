"""Fixtures for running Microsoft's unmodified client libraries against a real Keyless server.

Every compat test runs with name resolution limited to loopback (names under `.localhost` resolve to
127.0.0.1, as RFC 6761 says they must): if a client tried to reach
login.microsoftonline.com (instance discovery, alias lookup after an error), the lookup fails loudly
and the host is recorded, so "works offline against Keyless" is asserted, not assumed.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

LOOPBACK = {"127.0.0.1", "localhost", "::1"}

# Settings from the surrounding environment that would change what the clients do. requests lets
# REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a session's `verify` (so MSAL's `verify=` would be
# ignored); the others pick a region, a managed identity or another authority.
AMBIENT = (
    "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "MSAL_FORCE_REGION", "AZURE_REGIONAL_AUTHORITY_NAME",
    "AZURE_AUTHORITY_HOST", "AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_CLIENT_CERTIFICATE_PASSWORD", "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_USERNAME", "AZURE_PASSWORD", "AZURE_TOKEN_CREDENTIALS", "IDENTITY_ENDPOINT", "IDENTITY_HEADER",
    "MSI_ENDPOINT", "MSI_SECRET", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY",
    "all_proxy",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in AMBIENT:
        monkeypatch.delenv(name, raising=False)


class ForeignLookups(list[str]):
    """Hosts outside loopback that some client tried to resolve during the test."""


@pytest.fixture(autouse=True)
def foreign_lookups(monkeypatch: pytest.MonkeyPatch) -> Iterator[ForeignLookups]:
    seen = ForeignLookups()
    real = socket.getaddrinfo

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name.endswith(".localhost"):
            # RFC 6761 §6.3: every name under .localhost is loopback (systemd-resolved answers so; the
            # libc resolver here does not). Vaults are addressed as {vault}.vault.localhost.
            return real("127.0.0.1", *args, **kwargs)
        if name not in LOOPBACK:
            seen.append(name)
            raise socket.gaierror(socket.EAI_NONAME, f"compat tests may not leave loopback ({name})")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
    yield seen
    assert not seen, f"a client tried to reach {seen}"


@pytest.fixture
def resource_uri() -> str:
    return f"api://compat-{uuid.uuid4().hex[:10]}"
