"""Client-side helpers for applications that authenticate to Keyless (the SDK starts here).

Nothing in this package touches the server, its store or the CLI: an application installs it to get
tokens with a client secret or with a certificate credential whose private key never leaves its host.

- `ClientSecretCredential`, `CertificateCredential`: synchronous credentials that also satisfy azure-core's
  `TokenCredential` protocol; `keyless.client.aio` has the asynchronous ones.
- `keyless.client.core`: the sans-IO core both share (requests, responses, refresh times, retries).
- `build_client_assertion` and friends: RFC 7523 client assertions.
"""

from keyless.client.assertions import (
    CLIENT_ASSERTION_TYPE,
    CredentialError,
    build_client_assertion,
    default_algorithm,
    load_certificate_credential,
    load_certificate_files,
)
from keyless.client.core import RetryPolicy
from keyless.client.credentials import (
    CertificateCredential,
    ClientSecretCredential,
    ManagedIdentityCredential,
    WorkloadIdentityCredential,
)
from keyless.client.default import AsyncDefaultCredential, DefaultCredential
from keyless.client.errors import ClientAuthenticationError, CredentialUnavailableError, OAuthError, TokenRequestError
from keyless.client.tokens import AccessToken, AccessTokenInfo

__all__ = [
    "CLIENT_ASSERTION_TYPE",
    "AccessToken",
    "AccessTokenInfo",
    "AsyncDefaultCredential",
    "CertificateCredential",
    "ClientAuthenticationError",
    "ClientSecretCredential",
    "CredentialError",
    "CredentialUnavailableError",
    "DefaultCredential",
    "ManagedIdentityCredential",
    "OAuthError",
    "RetryPolicy",
    "TokenRequestError",
    "WorkloadIdentityCredential",
    "build_client_assertion",
    "default_algorithm",
    "load_certificate_credential",
    "load_certificate_files",
]
