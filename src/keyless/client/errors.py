"""Every error the client SDK raises, in one module (one exception family, rooted at `KeylessError`).

`ClientAuthenticationError` is what azure-core's `get_token` protocol callers catch; the SDK adapters
(`keyless.client.adapters`) translate it for Azure SDK clients where they expect azure-core's own.
"""

from __future__ import annotations

from keyless.errors import KeylessError


class ClientAuthenticationError(KeylessError):
    """No token could be obtained. Never carries a secret, an assertion or a token."""


class OAuthError(ClientAuthenticationError):
    """The token endpoint refused the request (RFC 6749 §5.2): `error`, `error_description`, HTTP status."""

    def __init__(self, error: str, description: str | None, status: int) -> None:
        self.error = error
        self.error_description = description
        self.status = status
        text = f"{error}: {description}" if description else error
        super().__init__(f"token request refused: {text} (HTTP {status})")

    def __repr__(self) -> str:
        return f"OAuthError(error={self.error!r}, error_description={self.error_description!r}, status={self.status})"


class TokenRequestError(ClientAuthenticationError):
    """The server could not be reached, kept failing after the retries, or answered something unreadable."""


class CredentialUnavailableError(ClientAuthenticationError):
    """This kind of credential is not set up here (no agent, no token file, no variables): a chain such
    as `DefaultCredential` moves on to its next link."""
