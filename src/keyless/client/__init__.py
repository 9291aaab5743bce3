"""Client-side helpers for applications that authenticate to Keyless (the SDK starts here).

Nothing in this package touches the server, its store or the CLI: an application installs it to
prove who it is with a certificate credential whose private key never leaves its host.
"""

from keyless.client.assertions import (
    CLIENT_ASSERTION_TYPE,
    CredentialError,
    build_client_assertion,
    default_algorithm,
    load_certificate_credential,
)

__all__ = [
    "CLIENT_ASSERTION_TYPE",
    "CredentialError",
    "build_client_assertion",
    "default_algorithm",
    "load_certificate_credential",
]
