"""Client-side helpers for applications that authenticate to Keyless (the SDK starts here).

Nothing in this package touches the server, its store or the CLI: an application installs it to get
tokens with a client secret or with a certificate credential whose private key never leaves its host.

- `ClientSecretCredential`, `CertificateCredential`: synchronous credentials that also satisfy azure-core's
  `TokenCredential` protocol; `keyless.client.aio` has the asynchronous ones.
- `keyless.client.core`: the sans-IO core both share (requests, responses, refresh times, retries).
- `build_client_assertion` and friends: RFC 7523 client assertions.

The names are loaded when first used (PEP 562 `__getattr__`): `import keyless.client` alone costs
nothing, so a caller that needs only the errors (the CLI with a cached token) does not load the
certificate and JOSE code behind the credentials.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from keyless.client.errors import (
        ClientAuthenticationError,
        CredentialUnavailableError,
        OAuthError,
        TokenRequestError,
    )
    from keyless.client.tokens import AccessToken, AccessTokenInfo

# Where each public name lives; `__getattr__` imports the module on first use.
_HOME = {
    "CLIENT_ASSERTION_TYPE": "assertions", "CredentialError": "assertions", "build_client_assertion": "assertions",
    "default_algorithm": "assertions", "load_certificate_credential": "assertions",
    "load_certificate_files": "assertions",
    "RetryPolicy": "core",
    "CertificateCredential": "credentials", "ClientSecretCredential": "credentials",
    "ManagedIdentityCredential": "credentials", "WorkloadIdentityCredential": "credentials",
    "AsyncDefaultCredential": "default", "DefaultCredential": "default",
    "ClientAuthenticationError": "errors", "CredentialUnavailableError": "errors", "OAuthError": "errors",
    "TokenRequestError": "errors",
    "AccessToken": "tokens", "AccessTokenInfo": "tokens",
}

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


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
