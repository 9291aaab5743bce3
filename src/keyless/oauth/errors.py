"""OAuth error responses (RFC 6749 §5.2), one class per wire code.

`description` goes on the wire and must never echo raw input (requirements §1.1); `detail` is the
internal reason, recorded in the sign-in log for admins and asserted by tests. Both pass the one
sanitiser (keyless.text) here, where every error is built, so no surface can forget: the description
is held to RFC 6749 §5.2's character set, the detail to what is safe to store and show.
"""

from __future__ import annotations

from keyless import text
from keyless.errors import KeylessError

DETAIL_LIMIT = 256


class OAuthErrorResponse(KeylessError):
    error: str = "server_error"
    status: int = 400
    default_description: str = ""

    def __init__(self, description: str | None = None, *, detail: str | None = None) -> None:
        self.description = text.description(description if description is not None else self.default_description)
        self.detail = text.stored(detail, DETAIL_LIMIT) or self.error
        super().__init__(f"{self.error}: {self.detail}")

    def body(self) -> dict[str, str]:
        body = {"error": self.error}
        if self.description:
            body["error_description"] = self.description
        return body


class InvalidRequest(OAuthErrorResponse):
    error = "invalid_request"
    status = 400


class InvalidClient(OAuthErrorResponse):
    """Every failed client authentication, whatever the reason: one body, one status (§1.1)."""

    error = "invalid_client"
    status = 401
    # Names the code too: some clients (sync azure-identity) show only the description.
    default_description = "client authentication failed (invalid_client)"

    def __init__(self, *, detail: str, basic: bool = False, description: str | None = None,
                 auth_method: str | None = None) -> None:
        # A description of the failed check is given only for federated tokens, whose users most
        # need to know which check failed (AADSTS70021-style clarity, issue 5).
        super().__init__(description or self.default_description, detail=detail)
        self.basic = basic  # the Authorization header was used: answer with WWW-Authenticate: Basic
        self.auth_method = auth_method  # for the sign-in log, when known better than from the request


class UnauthorizedClient(OAuthErrorResponse):
    error = "unauthorized_client"
    status = 400


class UnsupportedGrantType(OAuthErrorResponse):
    error = "unsupported_grant_type"
    status = 400
    default_description = "only grant_type=client_credentials is supported"


class InvalidScope(OAuthErrorResponse):
    error = "invalid_scope"
    status = 400


class InvalidTarget(OAuthErrorResponse):
    error = "invalid_target"
    status = 400


class RateLimited(OAuthErrorResponse):
    """Too many failed attempts: 429 with Retry-After (OAuth has no code for this; §1.1 picks this one)."""

    error = "invalid_request"
    status = 429
    default_description = "rate limited"

    def __init__(self, retry_after: int, *, detail: str) -> None:
        super().__init__(self.default_description, detail=detail)
        self.retry_after = retry_after


class MethodNotAllowed(OAuthErrorResponse):
    error = "invalid_request"
    status = 405
    default_description = "the token endpoint accepts POST only"


class ServerError(OAuthErrorResponse):
    error = "server_error"
    status = 500
    default_description = "internal error"
