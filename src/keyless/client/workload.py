"""`WorkloadIdentityCredential`: tokens for a workload that holds a token from another issuer (a
Kubernetes projected service-account token, a CI job's OIDC token, another Keyless tenant's identity
token) and an application in Keyless that trusts it through a federated credential.

The token file is read again for every token request, because platforms rotate it in place (a
kubelet rewrites a projected token well before it expires); nothing of it is cached or logged here.
Configuration follows azure-identity's names so one deployment serves both: `AZURE_FEDERATED_TOKEN_FILE`,
`AZURE_CLIENT_ID`, `AZURE_TENANT_ID`, `AZURE_AUTHORITY_HOST` (arguments win over the environment).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import httpx

from keyless.client._base import PathLike
from keyless.client.aio import _AsyncCredential
from keyless.client.assertions import CredentialError
from keyless.client.core import AssertionAuth, RetryPolicy
from keyless.client.credentials import _SyncCredential

MAX_TOKEN_FILE = 16 * 1024


def read_token_file(path: Path) -> str:
    try:
        data = path.read_bytes()[: MAX_TOKEN_FILE + 1]
    except OSError as exc:
        raise CredentialError(f"cannot read the federated token file {path}: "
                              f"{exc.strerror or type(exc).__name__}") from None
    token = data.decode("ascii", "replace").strip()
    if not token or len(data) > MAX_TOKEN_FILE or token.count(".") != 2:
        raise CredentialError(f"the federated token file {path} does not hold a compact JWT")
    return token


def _setting(value: str | None, name: str) -> str:
    found = value or os.environ.get(name)
    if not found:
        raise ValueError(f"{name} is not set and no value was given")
    return found


@dataclass(frozen=True)
class _Settings:
    tenant_id: str
    authority: str
    auth: AssertionAuth
    token_file: Path


def _settings(tenant_id: str | None, client_id: str | None, token_file: PathLike | None,
              authority: str | None) -> _Settings:
    path = Path(_setting(os.fspath(token_file) if token_file is not None else None, "AZURE_FEDERATED_TOKEN_FILE"))
    authority = _setting(authority, "AZURE_AUTHORITY_HOST")
    if "://" not in authority:
        authority = "https://" + authority  # as azure-identity does for a bare host:port
    auth = AssertionAuth(_setting(client_id, "AZURE_CLIENT_ID"), lambda _audience: read_token_file(path))
    return _Settings(_setting(tenant_id, "AZURE_TENANT_ID"), authority, auth, path)


class WorkloadIdentityCredential(_SyncCredential):
    """Every token request sends the current contents of the token file as the client assertion."""

    def __init__(self, tenant_id: str | None = None, client_id: str | None = None, *,
                 token_file: PathLike | None = None, authority: str | None = None, ca: PathLike | None = None,
                 http_client: httpx.Client | None = None, retry_policy: RetryPolicy | None = None) -> None:
        found = _settings(tenant_id, client_id, token_file, authority)
        super().__init__(found.tenant_id, found.auth, authority=found.authority, ca=ca, http_client=http_client,
                         retry_policy=retry_policy)
        self.token_file = found.token_file


class AsyncWorkloadIdentityCredential(_AsyncCredential):
    """`WorkloadIdentityCredential` for asyncio (`await credential.get_token(...)`)."""

    def __init__(self, tenant_id: str | None = None, client_id: str | None = None, *,
                 token_file: PathLike | None = None, authority: str | None = None, ca: PathLike | None = None,
                 http_client: httpx.AsyncClient | None = None, retry_policy: RetryPolicy | None = None) -> None:
        found = _settings(tenant_id, client_id, token_file, authority)
        super().__init__(found.tenant_id, found.auth, authority=found.authority, ca=ca, http_client=http_client,
                         retry_policy=retry_policy)
        self.token_file = found.token_file
